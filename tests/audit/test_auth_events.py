"""Sign-ins, failed sign-ins and sign-outs land in the audit log."""

from __future__ import annotations

import pytest

from portal.audit.models import AuditEvent
from portal.audit.verify import ChainReport, verify_chain
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

EVENT_FIELDS = ("action", "actor_id", "actor_email", "ip", "target_type", "target_id", "details")


def events() -> list[tuple[object, ...]]:
    return list(AuditEvent.objects.order_by("id").values_list(*EVENT_FIELDS))


def test_login_recorded(client, applicant):
    response = client.post(
        "/accounts/login/", {"login": "applicant@example.co.jp", "password": TEST_PASSWORD}
    )

    assert response.status_code == 302
    assert events() == [
        (
            "accounts.login",
            applicant.pk,
            "applicant@example.co.jp",
            "127.0.0.1",
            "accounts.user",
            str(applicant.pk),
            {},
        ),
    ]
    assert len(AuditEvent.objects.get().request_id) == 32
    assert verify_chain() == ChainReport(checked=1, ok=True)


def test_login_failed_recorded_with_attempted_email(client, applicant):
    response = client.post(
        "/accounts/login/", {"login": "Applicant@Example.co.jp", "password": "wrong password 1"}
    )

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert events() == [
        (
            "accounts.login_failed",
            None,
            "applicant@example.co.jp",
            "127.0.0.1",
            "",
            "",
            {"locked_out": False},
        ),
    ]


def test_login_failed_unknown_email_recorded(client, db):
    client.post("/accounts/login/", {"login": "nobody@example.jp", "password": "wrong password 1"})

    assert events() == [
        (
            "accounts.login_failed",
            None,
            "nobody@example.jp",
            "127.0.0.1",
            "",
            "",
            {"locked_out": False},
        ),
    ]


def test_logout_recorded(client, applicant):
    client.post("/accounts/login/", {"login": "applicant@example.co.jp", "password": TEST_PASSWORD})

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert [event[:3] for event in events()] == [
        ("accounts.login", applicant.pk, "applicant@example.co.jp"),
        ("accounts.logout", applicant.pk, "applicant@example.co.jp"),
    ]
    assert verify_chain() == ChainReport(checked=2, ok=True)
