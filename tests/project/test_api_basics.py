"""The API's front door: authentication, deny-by-default, errors and the schema."""

from __future__ import annotations

import pytest
from django.urls import get_resolver
from knox.models import AuthToken

from portal.audit.models import AuditEvent


def _token(user) -> str:  # type: ignore[no-untyped-def]
    return AuthToken.objects.create(user)[1]


def test_api_me_with_token_returns_roles(client, applicant):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {_token(applicant)}")

    assert response.status_code == 200
    assert response.json() == {
        "email": "applicant@example.co.jp",
        "full_name": "申請 太郎",
        "full_name_kana": "",
        "roles": ["applicant"],
        "mfa_enabled": False,
    }


def test_api_me_with_session_works(client, auditor):
    client.force_login(auditor)

    response = client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["roles"] == ["applicant", "auditor"]
    assert response.json()["mfa_enabled"] is True


def test_api_unknown_token_is_refused_with_clear_error(client, db):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Token not-a-real-token-0000")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response.json()["detail"]


def test_api_unknown_token_error_in_english_when_asked(client, db):
    response = client.get(
        "/api/v1/me/", HTTP_AUTHORIZATION="Token not-a-real-token-0000", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.json()["detail"] == "Invalid token."


def test_api_expired_token_is_refused(client, applicant):
    from datetime import timedelta

    _instance, raw = AuthToken.objects.create(applicant, expiry=timedelta(seconds=-1))

    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}")

    assert response.status_code == 401


def test_api_anonymous_is_denied_by_default(client, db):
    response = client.get("/api/v1/me/")

    assert response.status_code in {401, 403}
    assert response.json()["code"] == "not_authenticated"


def test_api_every_endpoint_denies_anonymous_unless_declared_public(client, db):
    """Deny by default: only endpoints that say so answer an anonymous caller."""
    from django.urls import reverse
    from django.urls.converters import IntConverter

    # The public catalogue, statistics and opt-out notices: what the public pages show.
    public = {
        "api-society-list", "api-society-detail", "api-dataset-list", "api-dataset-detail",
        "api-dataset-release-list", "api-statistics", "api-optout-notice-list",
        "api-optout-notice-detail", "api-optout-statistics",
        # The hosted AI models' list and cards, as on the public models pages.
        "api-ai-model-list", "api-ai-model-detail", "api-ai-version-detail",
    }
    resolver = get_resolver()
    names = {
        name
        for name, _patterns in resolver.reverse_dict.items()
        if isinstance(name, str) and name.startswith("api-") and name not in {"api-schema", "api-docs"}
    }
    assert names, "no API endpoints found"
    assert public <= names

    def url_of(name: str) -> str:
        possibilities, _pattern, _defaults, converters = resolver.reverse_dict.getlist(name)[0]
        ((_format, parameters),) = possibilities
        kwargs = {p: 1 if isinstance(converters.get(p), IntConverter) else "x" for p in parameters}
        return reverse(name, kwargs=kwargs)

    for name in sorted(names - public):
        assert client.get(url_of(name)).status_code in {401, 403}, name
    for name in ("api-society-list", "api-dataset-list", "api-statistics", "api-optout-notice-list",
                 "api-optout-statistics", "api-ai-model-list"):
        assert client.get(url_of(name)).status_code == 200, name


def test_api_malformed_json_is_rejected_and_nothing_changes(client, applicant):
    token = _token(applicant)
    before = AuditEvent.objects.count()

    response = client.patch(
        "/api/v1/me/",
        data='{"full_name": "壊れた',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    applicant.refresh_from_db()
    assert applicant.full_name == "申請 太郎"
    assert AuditEvent.objects.count() == before


def test_api_patch_me_changes_name_and_audits(client, applicant):
    response = client.patch(
        "/api/v1/me/",
        data={"full_name": "申請 花子"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {_token(applicant)}",
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "申請 花子"
    event = AuditEvent.objects.get(action="accounts.profile_updated")
    assert event.details == {"fields": ["full_name"]}
    assert event.actor_id == applicant.pk


def test_api_patch_me_too_long_name_is_field_error(client, applicant):
    response = client.patch(
        "/api/v1/me/",
        data={"full_name": "長" * 151},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {_token(applicant)}",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "full_name" in response.json()["errors"]
    applicant.refresh_from_db()
    assert applicant.full_name == "申請 太郎"


def test_api_schema_is_openapi3(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/me/" in schema["paths"]
    assert "/api/v1/societies/" in schema["paths"]


def test_api_docs_page_served_locally(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    body = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    assert "cdn" not in body.lower()


@pytest.mark.parametrize("count", [1, 3])
def test_api_societies_list_is_public_and_query_count_fixed(
    client, db, count, django_assert_num_queries
):
    from tests.factories import SocietyFactory

    SocietyFactory.create_batch(count)

    with django_assert_num_queries(1):
        response = client.get("/api/v1/societies/")

    assert response.status_code == 200
    assert len(response.json()) == count
