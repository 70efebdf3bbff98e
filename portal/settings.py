"""The portal's one settings module.

Every value is read from the environment through the typed helpers in ``portal.lib.env``; the
README lists each variable with its meaning and default. Without any variable set (and with
``DJANGO_DEBUG=1``) the portal runs on the embedded default: SQLite, local files under the data
folder, Celery tasks executed in-process and e-mail printed to the console. With ``DJANGO_DEBUG=0``
the defaults are the safe production ones (HTTPS redirect, secure cookies, HSTS).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from portal.lib.env import env_bool, env_choice, env_int, env_int_list, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("PORTAL_DATA_DIR", BASE_DIR / "data")

# --- Core -------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (set DJANGO_DEBUG=1 for local use)."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

# The key of the society-common pseudonymous subject ID (portal.lib.pseudonym). Shared with the
# contributing institutions and never with data users; changing it breaks linkage with every
# pseudonym made before.
PORTAL_PSEUDONYM_KEY = env_str("PORTAL_PSEUDONYM_KEY")
if not PORTAL_PSEUDONYM_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PORTAL_PSEUDONYM_KEY must be set when DJANGO_DEBUG is off (set DJANGO_DEBUG=1 for local use)."
        )
    PORTAL_PSEUDONYM_KEY = "local-development-pseudonym-key"  # DEBUG only

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "portal.core.views.csrf_failure"
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "portal.core.admin_apps.PortalAdminConfig",  # django.contrib.admin, every change audited
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "django_htmx",
    "csp",
    "portal.audit",
    "portal.accounts",
    "portal.notifications",
    "portal.societies",
    "portal.ethics",
    "portal.datasets",
    "portal.optout",
    "portal.agreements",
    "portal.access",
    "portal.linkage",
    "portal.deid",
    "portal.ai",
    "portal.core",
    "portal.demo",  # the demo data: the top layer, nothing imports it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.core.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.accounts.middleware.MFARequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # django-axes must come last: it turns a locked-out request into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",
                "portal.core.context_processors.navigation",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'portal.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE transactions take SQLite's write lock when a transaction begins, so that two
    # writers cannot both read the audit chain's head and then both append to it.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------------------------
CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Accounts, login, MFA, lockout -------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
    # ai.run_aimodel for holders of a grant on a dataset of the model's society
    "portal.ai.permissions.ModelAccessBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

ACCOUNT_ADAPTER = "portal.accounts.adapters.PortalAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_PREVENT_ENUMERATION = True
# Repeated failures are handled by django-axes (a lockout with its own page and audit trail);
# allauth's own limiter for failed logins would answer first with a bare 429.
ACCOUNT_RATE_LIMITS = {"login_failed": False}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("PORTAL_MFA_ISSUER", "Clinical Image Portal")
MFA_RECOVERY_CODE_COUNT = 10
MFA_TOTP_PERIOD = 30
# seed_demo creates accounts with a published password: never on a production deployment.
PORTAL_DEMO_ALLOWED = env_bool("PORTAL_DEMO_ALLOWED", DEBUG)

AXES_FAILURE_LIMIT = env_int("PORTAL_LOCKOUT_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PORTAL_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_USERNAME_CALLABLE = "portal.accounts.lockout.attempted_email"
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Lockout counts per account, so rotating addresses does not help an attacker; locking per address
# (what axes.W006 asks for) would lock out everyone behind a hospital's shared NAT address.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_IPWARE_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", 0) or None

ANONYMOUS_USER_NAME = None  # django-guardian: the portal has no anonymous pseudo-user

SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_SECONDS", 4 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Security (safe by default when DEBUG is off) ----------------------------------------------
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers probe /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
PORTAL_TRUSTED_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", 0)

# Every asset is served by the portal itself: no CDN, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "portal" / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env_path("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "files"
# A release upload sends up to 500 files and its manifest in one form (larger sets are imported
# with `manage.py release_import`).
DATA_UPLOAD_MAX_NUMBER_FILES = 501

# Tests and the demo run without `collectstatic`: WhiteNoise then serves from the finders.
WHITENOISE_USE_FINDERS = env_bool("PORTAL_STATIC_FROM_FINDERS", DEBUG)
WHITENOISE_MANIFEST_STRICT = False

PORTAL_STORAGE = env_choice("PORTAL_STORAGE", "local", ("local", "s3"))
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
AWS_DEFAULT_ACL = None
AWS_QUERYSTRING_AUTH = True
AWS_QUERYSTRING_EXPIRE = env_int("PORTAL_SIGNED_URL_SECONDS", 60)
AWS_S3_FILE_OVERWRITE = False
if PORTAL_STORAGE == "s3" and not AWS_STORAGE_BUCKET_NAME:
    raise ImproperlyConfigured("PORTAL_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.")

STORAGES = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage"}
        if PORTAL_STORAGE == "s3"
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": MEDIA_ROOT, "base_url": None},
        }
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if WHITENOISE_USE_FINDERS
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Downloads (portal/access/links.py, downloads.py) ------------------------------------------
PORTAL_LINK_SECONDS = env_int("PORTAL_LINK_SECONDS", 600)
PORTAL_LINK_RATE = env_int("PORTAL_LINK_RATE", 600)
PORTAL_LINK_RATE_SECONDS = env_int("PORTAL_LINK_RATE_SECONDS", 600)
PORTAL_DOWNLOAD_ACCEL_PREFIX = env_str("PORTAL_DOWNLOAD_ACCEL_PREFIX")

# --- Warnings before a grant or what it rests on lapses (portal/access/services/warnings.py) -----
# Days before the lapse at which grant holders and the society's stewards are told, once each.
PORTAL_LAPSE_WARNING_DAYS = sorted(set(env_int_list("PORTAL_LAPSE_WARNING_DAYS", [90, 60, 30], minimum=1)))
# The usual extension: the one-click request asks for the current last day plus this many months.
PORTAL_EXTENSION_MONTHS = env_int("PORTAL_EXTENSION_MONTHS", 12)
# A named user's research-ethics training holds this many days from its date (three years, a common
# institutional renewal period); 0: it never lapses.
PORTAL_ETHICS_TRAINING_VALID_DAYS = env_int("PORTAL_ETHICS_TRAINING_VALID_DAYS", 1095)
if PORTAL_ETHICS_TRAINING_VALID_DAYS < 0:
    raise ImproperlyConfigured("PORTAL_ETHICS_TRAINING_VALID_DAYS must be 0 (never lapses) or more days.")

# --- Anonymisation (portal/deid) -----------------------------------------------------------------
# Server folders that jobs may read from must lie under this root (empty: no server-folder jobs).
PORTAL_DEID_IMPORT_ROOT = env_str("PORTAL_DEID_IMPORT_ROOT")
PORTAL_DEID_QUEUE = env_str("PORTAL_DEID_QUEUE")
PORTAL_DEID_STALL_MINUTES = env_int("PORTAL_DEID_STALL_MINUTES", 30)

# --- Hosted AI models (portal/ai) ----------------------------------------------------------------
PORTAL_AI_MAX_IMAGES = env_int("PORTAL_AI_MAX_IMAGES", 100)  # images in one inference job
PORTAL_AI_MAX_IMAGE_MB = env_int("PORTAL_AI_MAX_IMAGE_MB", 50)  # one uploaded image
PORTAL_AI_MAX_MODEL_MB = env_int("PORTAL_AI_MAX_MODEL_MB", 500)  # one ONNX file
PORTAL_AI_BATCH_SIZE = env_int("PORTAL_AI_BATCH_SIZE", 16)  # images per ONNX Runtime call
PORTAL_AI_QUEUE = env_str("PORTAL_AI_QUEUE")
PORTAL_AI_STALL_MINUTES = env_int("PORTAL_AI_STALL_MINUTES", 30)
# Days an ended job's stored images are kept; 0: until their owner deletes them.
PORTAL_AI_INPUT_RETENTION_DAYS = env_int("PORTAL_AI_INPUT_RETENTION_DAYS", 30)

# --- Overdue usage reports (portal/access/services/reports.py; NBDC rules, REGULATION.md a8) ------
# Days after the due date: a reminder every N days; restricted mode (no new links) and the head of
# the applicant's institution told at 180 days.
PORTAL_USAGE_REPORT_REMINDER_DAYS = env_int("PORTAL_USAGE_REPORT_REMINDER_DAYS", 30)
PORTAL_USAGE_REPORT_RESTRICT_DAYS = env_int("PORTAL_USAGE_REPORT_RESTRICT_DAYS", 180)
PORTAL_USAGE_REPORT_HEAD_DAYS = env_int("PORTAL_USAGE_REPORT_HEAD_DAYS", 180)

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds before a mail server that does not answer counts as down (the message is retried later).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
# Without a broker, tasks run in-process when they are queued (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL) or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT - 60, int(CELERY_TASK_TIME_LIMIT * 0.9))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Every morning in Japan time; the task remembers what it sent, so a rerun sends nothing new.
    "ethics-reminders": {"task": "ethics.send_reminders", "schedule": crontab(hour=7, minute=30)},
    # Overdue usage reports: reminder every 30 days, restricted at 90, institution head told at 180.
    "access-usage-reports": {"task": "access.enforce_usage_reports", "schedule": crontab(hour=7, minute=45)},
    # Grants end on time (also checked live at every use) and pause or resume with what they rest on.
    "access-expire-grants": {"task": "access.expire_grants", "schedule": crontab(minute=5)},
    "access-refresh-grants": {"task": "access.refresh_grants", "schedule": crontab(minute="*/15")},
    # Warnings 90/60/30 days before a grant, its ethics approval or its security re-attestation lapses.
    "access-lapse-warnings": {"task": "access.send_lapse_warnings", "schedule": crontab(hour=7, minute=50)},
    # Anonymisation jobs whose worker died: re-queue the files without a result.
    "deid-resume-stalled": {"task": "deid.resume_stalled", "schedule": 15 * 60},
    # Inference jobs whose worker died or whose message was lost: queue them again.
    "ai-resume-stalled": {"task": "ai.resume_stalled", "schedule": 15 * 60},
    # Uploaded clinical images do not stay: delete the images of jobs ended PORTAL_AI_INPUT_RETENTION_DAYS ago.
    "ai-purge-old-images": {"task": "ai.purge_old_images", "schedule": crontab(minute=35)},
    # E-mails still pending or failed after their task's retries (mail server down): send them again.
    "notifications-redeliver-mail": {"task": "notifications.redeliver_mail", "schedule": 10 * 60},
}
# Task modules beyond each app's tasks.py (which Celery finds by itself).
CELERY_IMPORTS = ("portal.access.report_tasks",)
PORTAL_HEALTH_CHECK_WORKER = env_bool("PORTAL_HEALTH_CHECK_WORKER", False)

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.accounts.permissions.IsAuthenticatedWithMFA"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "portal.core.api.exception_handler",
}
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("PORTAL_API_TOKEN_DAYS", 90)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clinical Image Portal API",
    "DESCRIPTION": (
        "The portal's REST API. Authenticate with `Authorization: Token <token>`; tokens are "
        "created on the API tokens page. Every endpoint is closed unless its permission says otherwise."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Several models have a "status"; each enum gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "AIModelVersionStatusEnum": "portal.ai.models.ModelVersion.Status",
        "AIModelAccessRequestStatusEnum": "portal.ai.models.ModelAccessRequest.Status",
        "InferenceJobStatusEnum": "portal.ai.models.InferenceJob.Status",
        "InferenceItemStatusEnum": "portal.ai.models.InferenceItem.Status",
        "InferenceJobSourceEnum": "portal.ai.models.InferenceJob.Source",
        "AIModelTaskEnum": "portal.ai.models.AIModel.Task",
        "ProvenanceNoticeKindEnum": "portal.ai.models.ProvenanceNotice.Kind",
        "AccessRequestStatusEnum": "portal.access.models.RequestStatus",
        "ProtocolStatusEnum": "portal.ethics.models.ProtocolStatus",
        # The review actions' inputs (item 16): several "kind" fields with their own choices.
        "ProtocolKindEnum": "portal.ethics.models.Protocol.Kind",
        "ProtocolAttachmentKindEnum": "portal.ethics.models.ProtocolAttachment.Kind",
        "EthicsNoticeKindEnum": "portal.ethics.models.EthicsNotice.Kind",
        "AmendmentKindEnum": "portal.ethics.review_api.AMENDMENT_KINDS",
        "ModalityEnum": "portal.core.vocabulary.Modality",
    },
}

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # WeasyPrint and fontTools report every rendering step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
