from __future__ import annotations

from knox.models import AuthToken

from portal.accounts.services import MAX_ACTIVE_TOKENS
from portal.audit.models import AuditEvent


def test_token_create_shows_token_once_and_it_works(client, applicant):
    client.force_login(applicant)

    response = client.post("/accounts/tokens/new/")

    assert response.status_code == 200
    raw = response.context["new_token"]
    assert raw in response.content.decode()
    assert AuthToken.objects.filter(user=applicant).count() == 1
    assert AuditEvent.objects.filter(action="accounts.api_token_created").count() == 1
    assert raw not in client.get("/accounts/tokens/").content.decode()
    api = client.__class__()
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 200


def test_token_revoke_stops_the_token(client, applicant):
    instance, raw = AuthToken.objects.create(applicant)
    client.force_login(applicant)

    response = client.post(f"/accounts/tokens/{instance.token_key}/revoke/")

    assert response.status_code == 302
    assert not AuthToken.objects.filter(user=applicant).exists()
    assert AuditEvent.objects.filter(action="accounts.api_token_revoked").count() == 1
    api = client.__class__()
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 401


def test_token_revoke_someone_elses_token_refused(client, applicant, outsider):
    instance, _raw = AuthToken.objects.create(outsider)
    client.force_login(applicant)

    client.post(f"/accounts/tokens/{instance.token_key}/revoke/")

    assert AuthToken.objects.filter(user=outsider).count() == 1
    assert not AuditEvent.objects.filter(action="accounts.api_token_revoked").exists()


def test_token_create_over_limit_refused(client, applicant):
    for _ in range(MAX_ACTIVE_TOKENS):
        AuthToken.objects.create(applicant)
    client.force_login(applicant)

    response = client.post("/accounts/tokens/new/", follow=True)

    assert AuthToken.objects.filter(user=applicant).count() == MAX_ACTIVE_TOKENS
    assert "new_token" not in response.context
    assert not AuditEvent.objects.filter(action="accounts.api_token_created").exists()


def test_token_page_requires_login(client, db):
    response = client.get("/accounts/tokens/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_token_create_requires_post(client, applicant):
    client.force_login(applicant)

    assert client.get("/accounts/tokens/new/").status_code == 405
    assert not AuthToken.objects.exists()
