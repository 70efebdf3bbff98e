"""Production settings: `check --deploy` is clean, bad values stop the process, the shell is sealed.

The settings module is read once per process, so production variables are tried in a fresh
``manage.py`` process with an environment of our choosing.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

PROJECT_DIR = Path(settings.BASE_DIR)


# The DJANGO_* variables the test run has (pyproject.toml sets plain HTTP and no HSTS for pytest;
# the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE) are not a production environment's: the
# subprocess starts without any of them, and without serving assets from the finders.
def _is_test_only(variable: str) -> bool:
    return variable.startswith("DJANGO_") or variable == "PORTAL_STATIC_FROM_FINDERS"


def _manage(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not _is_test_only(key)}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _production(**extra: str) -> dict[str, str]:
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "portal.example.jp",
        **extra,
    }


def test_check_deploy_passes_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **_production())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_defaults_are_the_safe_ones():
    shown = (
        "from django.conf import settings as s; print(s.DEBUG, s.SECURE_SSL_REDIRECT, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.ALLOWED_HOSTS)"
    )
    result = _manage("shell", "--no-imports", "-c", shown, **_production())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True True True 31536000 ['portal.example.jp']"


def test_without_secret_key_production_refuses_to_start():
    result = _manage("check", DJANGO_DEBUG="0")

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in (
        result.stderr
    )


def test_without_pseudonym_key_production_refuses_to_start():
    result = _manage("check", **(_production() | {"PORTAL_PSEUDONYM_KEY": ""}))

    assert result.returncode != 0
    assert "ImproperlyConfigured: PORTAL_PSEUDONYM_KEY must be set when DJANGO_DEBUG is off" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG must be one of 1/0, true/false, yes/no, on/off"),
        ("DJANGO_SECURE_COOKIES", "sometimes", "DJANGO_SECURE_COOKIES must be one of"),
        ("DJANGO_HSTS_SECONDS", "a year", "DJANGO_HSTS_SECONDS must be a whole number"),
        ("PORTAL_STORAGE", "ftp", "PORTAL_STORAGE must be one of local, s3"),
    ],
)
def test_bad_value_stops_the_process_naming_the_variable(variable, value, message):
    result = _manage("check", **_production(**{variable: value}))

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr
    assert repr(value) in result.stderr


def test_s3_storage_without_bucket_stops_the_process():
    result = _manage("check", **_production(PORTAL_STORAGE="s3", AWS_STORAGE_BUCKET_NAME=""))

    assert result.returncode != 0
    assert "PORTAL_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME" in result.stderr


# --- Every setting is documented -----------------------------------------------------------------

_ENV_READ = re.compile(r"\benv_(?:str|bool|int|list|path|choice)\(\s*\"([A-Z][A-Z0-9_]*)\"")


def _variables_read_by_the_portal() -> set[str]:
    names: set[str] = set()
    for path in (PROJECT_DIR / "portal").rglob("*.py"):
        names.update(_ENV_READ.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_environment_variable_is_in_the_readme_table_and_env_example():
    names = _variables_read_by_the_portal()
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    example = (PROJECT_DIR / ".env.example").read_text(encoding="utf-8")
    example_names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))

    assert "DJANGO_SECRET_KEY" in names  # the pattern finds what it should
    assert sorted(name for name in names if f"| `{name}` |" not in readme) == []
    assert sorted(names - example_names) == []


# --- Content-Security-Policy and no external hosts ----------------------------------------------


class _References(HTMLParser):
    """Collects every URL a page loads or links to."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "action", "srcset", "poster", "data"} and value:
                self.urls.append((tag, name, value))


def _references(html: str) -> list[tuple[str, str, str]]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def test_home_page_csp_allows_only_own_scripts(client, db):
    response = client.get("/")

    policy = response["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/docs/"])
def test_shell_page_references_no_external_host(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    html = response.content.decode()
    external = [
        (tag, attribute, url)
        for tag, attribute, url in _references(html)
        if urlsplit(url.strip()).netloc not in {"", "testserver"}
    ]
    assert external == []
    assert re.findall(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", html) == []


def test_api_docs_load_their_assets_from_static(client, db):
    html = client.get("/api/docs/").content.decode()

    assets = [
        url
        for tag, attribute, url in _references(html)
        if (tag, attribute) in {("script", "src"), ("link", "href")}
    ]
    scripts = [url for url in assets if url.endswith(".js")]
    assert len(scripts) >= 2
    assert [url for url in assets if not url.startswith("/static/") and "?script" not in url] == []
    # The page's own start-up script comes from the portal too, not inline and not from a CDN.
    (own_script,) = [url for url in assets if "?script" in url]
    assert own_script.startswith("/api/docs/")
    script = client.get(own_script).content.decode()
    assert re.findall(r"https?://", script) == []


def test_env_example_is_a_production_configuration_that_passes_check_deploy(tmp_path):
    variables: dict[str, str] = {}
    for line in (PROJECT_DIR / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip().strip('"')
    assert variables["DJANGO_SECRET_KEY"] == ""  # nobody deploys a published key by accident
    variables["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
    assert variables["PORTAL_PSEUDONYM_KEY"] == ""
    variables["PORTAL_PSEUDONYM_KEY"] = secrets.token_urlsafe(32)
    variables["PORTAL_DATA_DIR"] = str(tmp_path)
    variables["DJANGO_STATIC_ROOT"] = str(tmp_path / "static")

    result = _manage("check", "--deploy", "--fail-level", "WARNING", **variables)

    assert result.returncode == 0, result.stdout + result.stderr


def test_stored_files_go_to_this_test_process_data_folder():
    # Under pytest-xdist tests/conftest.py gives each worker PORTAL_DATA_DIR/<worker>: the storage,
    # the settings and the environment that child processes inherit must all name that folder.
    from django.core.files.storage import default_storage

    data_dir = Path(settings.DATA_DIR)
    assert Path(os.environ["PORTAL_DATA_DIR"]).resolve() == data_dir
    assert Path(default_storage.location) == Path(settings.MEDIA_ROOT) == data_dir / "files"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        assert data_dir.name == worker
