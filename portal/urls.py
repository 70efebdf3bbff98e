from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# The administration site signs in through allauth, so MFA and lockout apply there as well.
admin.site.login = login_required(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("", include("portal.core.urls")),
    path("accounts/", include("portal.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("societies/", include("portal.societies.urls")),
    path("committees/", include("portal.ethics.public_urls")),
    path("ethics/documents/", include("portal.ethics.document_urls")),
    path("datasets/", include("portal.datasets.catalogue_urls")),
    path("optout/", include("portal.optout.public_urls")),
    path("manage/datasets/", include("portal.datasets.urls")),
    path("manage/optout/", include("portal.optout.urls")),
    path("manage/deid/", include("portal.deid.urls")),
    path("linkage/", include("portal.linkage.urls")),
    path("ai/", include("portal.ai.urls")),
    path("access/", include("portal.access.urls")),
    path("agreements/", include("portal.agreements.urls")),
    path("audit/", include("portal.audit.urls")),
    path("notifications/", include("portal.notifications.urls")),
    path("ethics/", include("portal.ethics.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
]
