"""GET /api/v1/audit/events/: auditors' scripts read the log by cursor, with the page's filters."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from django.utils import timezone
from knox.models import AuthToken

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    give_totp,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/events/"
FIELDS = [
    "id",
    "created_at",
    "actor_id",
    "actor_email",
    "ip",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "details",
    "request_id",
    "prev_hash",
    "hash",
]


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp")
    OrganizationMembershipFactory(
        user=user, organization=OrganizationFactory(kind="operator"), role="operator"
    )
    give_totp(user)
    return user


def record(n: int) -> list[AuditEvent]:
    return [
        audit_record(
            action="tests.even" if i % 2 == 0 else "tests.odd",
            actor=None,
            actor_email=f"user{i}@example.jp",
        )
        for i in range(1, n + 1)
    ]


def token_header(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    _instance, raw = AuthToken.objects.create(user)
    return {"HTTP_AUTHORIZATION": f"Token {raw}"}


def test_audit_api_auditor_gets_events_with_hashes(client, auditor):
    event = audit_record(
        action="accounts.membership_added",
        actor=auditor,
        target=auditor,
        ip="192.0.2.1",
        details={"role": "auditor"},
    )

    response = client.get(URL, **token_header(auditor))

    assert response.status_code == 200
    body = response.json()
    assert (body["next"], body["previous"]) == (None, None)
    assert body["results"] == [
        {
            "id": 1,
            "created_at": timezone.localtime(event.created_at).isoformat(),
            "actor_id": auditor.pk,
            "actor_email": "auditor@nii.example.ac.jp",
            "ip": "192.0.2.1",
            "action": "accounts.membership_added",
            "target_type": "accounts.user",
            "target_id": str(auditor.pk),
            "target_repr": "監査 担当",
            "details": {"role": "auditor"},
            "request_id": "",
            "prev_hash": "0" * 64,
            "hash": event.hash,
        }
    ]
    assert list(body["results"][0]) == FIELDS


def test_audit_api_times_are_japan_time(client, auditor):
    with mock.patch(
        "django.utils.timezone.now", return_value=datetime(2026, 4, 1, 0, 0, 5, tzinfo=UTC)
    ):
        audit_record(action="tests.recorded", actor=None)

    response = client.get(URL, **token_header(auditor))

    assert response.json()["results"][0]["created_at"] == "2026-04-01T09:00:05+09:00"


def test_audit_api_operator_allowed(client, operator):
    record(2)

    response = client.get(URL, **token_header(operator))

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [2, 1]


def test_audit_api_cursor_pages_newest_first(client, auditor):
    record(120)
    headers = token_header(auditor)

    first = client.get(URL, **headers).json()
    second = client.get(first["next"], **headers).json()
    third = client.get(second["next"], **headers).json()
    back = client.get(second["previous"], **headers).json()

    assert [row["id"] for row in first["results"]] == list(range(120, 70, -1))
    assert [row["id"] for row in second["results"]] == list(range(70, 20, -1))
    assert [row["id"] for row in third["results"]] == list(range(20, 0, -1))
    assert third["next"] is None
    assert first["previous"] is None
    assert [row["id"] for row in back["results"]] == list(range(120, 70, -1))
    assert "count" not in first


def test_audit_api_filters(client, auditor):
    record(6)
    headers = token_header(auditor)

    by_action = client.get(URL, {"action": "tests.even"}, **headers).json()
    by_actor = client.get(URL, {"actor": "user3@example.jp"}, **headers).json()
    by_prefix = client.get(URL, {"actor": "user*", "action": "tests.odd"}, **headers).json()

    assert [row["id"] for row in by_action["results"]] == [6, 4, 2]
    assert [row["id"] for row in by_actor["results"]] == [3]
    assert [row["id"] for row in by_prefix["results"]] == [5, 3, 1]


def test_audit_api_filter_time_naive_is_japan_time_and_offsets_are_kept(client, auditor):
    for hour in (0, 1, 2):
        when = datetime(2026, 4, 1, hour, tzinfo=UTC)
        with mock.patch("django.utils.timezone.now", return_value=when):
            audit_record(action="tests.recorded", actor=None)
    headers = token_header(auditor)

    naive = client.get(URL, {"since": "2026-04-01T10:00"}, **headers).json()
    with_offset = client.get(
        URL, {"since": "2026-04-01T00:30:00+00:00", "until": "2026-04-01T02:00:00Z"}, **headers
    ).json()

    assert [row["id"] for row in naive["results"]] == [3, 2]
    assert [row["id"] for row in with_offset["results"]] == [2]


def test_audit_api_bad_filter_answers_400(client, auditor):
    response = client.get(
        URL, {"since": "tomorrow", "actor": "*"}, HTTP_ACCEPT_LANGUAGE="en", **token_header(auditor)
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "invalid",
        "code": "invalid",
        "errors": {
            "actor": ["Enter at least one character before the *."],
            "since": ["Enter a valid date/time."],
        },
    }


def test_audit_api_applicant_forbidden(client, applicant):
    record(1)

    response = client.get(URL, **token_header(applicant))

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert AuditEvent.objects.count() == 1


def test_audit_api_session_applicant_forbidden(client, applicant):
    client.force_login(applicant)

    response = client.get(URL)

    assert response.status_code == 403
    assert AuditEvent.objects.count() == 1  # the sign-in only


def test_audit_api_auditor_without_second_factor_forbidden(client, auditor):
    auditor.authenticator_set.all().delete()

    response = client.get(URL, **token_header(auditor))

    assert response.status_code == 403


def test_audit_api_anonymous_unauthorised(client, db):
    record(1)

    response = client.get(URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert AuditEvent.objects.count() == 1


def test_audit_api_bad_token_unauthorised(client, db):
    response = client.get(URL, HTTP_AUTHORIZATION="Token " + "0" * 64)

    assert response.status_code == 401


def test_audit_api_session_auditor_allowed(client, auditor):
    client.force_login(auditor)

    response = client.get(URL)

    assert response.status_code == 200
    assert [row["action"] for row in response.json()["results"]] == ["accounts.login"]


def test_audit_api_is_read_only(client, auditor):
    headers = token_header(auditor)
    record(1)

    assert client.post(URL, {}, **headers).status_code == 405
    assert client.delete(URL, **headers).status_code == 405
    assert AuditEvent.objects.count() == 1


def test_audit_api_query_count_does_not_grow(client, auditor, django_assert_num_queries):
    record(120)
    headers = token_header(auditor)

    # knox token look-up (2), roles (3), MFA check, then one page of 51 rows: no COUNT.
    with django_assert_num_queries(7):
        response = client.get(URL, {"action": "tests.even"}, **headers)

    assert len(response.json()["results"]) == 50
