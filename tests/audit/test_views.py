"""The auditor's page: who may see it, its filters, keyset pages, errors and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import parse_qs

import pytest
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.audit.selectors import AuditEventFilters, audit_event_export_rows
from portal.audit.services import audit_record
from portal.audit.verify import ChainReport, verify_chain
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    give_totp,
)

pytestmark = pytest.mark.django_db

LIST_URL = "/audit/"
EXPORT_URL = "/audit/export.csv"


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp")
    OrganizationMembershipFactory(
        user=user, organization=OrganizationFactory(kind="operator"), role="operator"
    )
    give_totp(user)
    return user


@pytest.fixture
def auditor_client(client, auditor):  # type: ignore[no-untyped-def]
    client.force_login(auditor)  # records accounts.login as event #1
    return client


def record_at(when: datetime, **kwargs: object) -> AuditEvent:
    with mock.patch("django.utils.timezone.now", return_value=when):
        return audit_record(**{"action": "tests.recorded", "actor": None, **kwargs})  # type: ignore[arg-type]


def shown_ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    return [event.id for event, _details in response.context["rows"]]


def link_query(response, rel: str) -> dict[str, list[str]] | None:  # type: ignore[no-untyped-def]
    query = response.context[f"{rel}_query"]
    return parse_qs(query) if query else None


def csv_rows(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    content = b"".join(response.streaming_content)
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


# --- who may see it -----------------------------------------------------------------------------


def test_audit_page_anonymous_redirected_to_login(client):
    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/audit/"


@pytest.mark.parametrize("persona", ["applicant", "outsider", "steward", "committee_member"])
def test_audit_page_without_role_forbidden(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    events_before = AuditEvent.objects.count()

    response = client.get(LIST_URL)

    assert response.status_code == 403
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize("persona", ["auditor", "operator"])
def test_audit_page_auditor_or_operator_allowed(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(user)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert shown_ids(response) == [1]
    assert f"<td>{user.email}</td>" in response.content.decode()


def test_audit_page_auditor_without_second_factor_sent_to_set_up(client, auditor):
    auditor.authenticator_set.all().delete()
    client.force_login(auditor)

    response = client.get(LIST_URL)

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_audit_page_viewing_is_not_audited(auditor_client):
    auditor_client.get(LIST_URL)
    auditor_client.get(LIST_URL, {"action": "accounts.login"})

    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["accounts.login"]


# --- what it shows ------------------------------------------------------------------------------


def test_audit_page_shows_event_in_japan_time_with_compact_details(auditor_client, applicant):
    record_at(
        datetime(2026, 4, 1, 0, 30, 15, tzinfo=UTC),
        action="accounts.membership_added",
        actor=applicant,
        target=applicant,
        ip="192.0.2.10",
        details={"role": "監査", "n": 1},
    )

    response = auditor_client.get(LIST_URL)

    body = response.content.decode()
    assert shown_ids(response) == [2, 1]
    assert '<time datetime="2026-04-01T09:30:15+09:00">2026-04-01 09:30:15</time>' in body
    assert "<td>applicant@example.co.jp</td>" in body
    assert "<td>192.0.2.10</td>" in body
    assert "<code>accounts.membership_added</code>" in body
    assert f"<code>accounts.user#{applicant.pk}</code> 申請 太郎" in body
    assert "<code>{&quot;n&quot;:1,&quot;role&quot;:&quot;監査&quot;}</code>" in body


def test_audit_page_renders_in_japanese_by_default(auditor_client):
    body = auditor_client.get(LIST_URL).content.decode()

    assert '<html lang="ja">' in body
    assert "<h1>監査ログ</h1>" in body


def test_audit_page_renders_in_english_when_chosen(auditor_client):
    auditor_client.cookies["django_language"] = "en"

    body = auditor_client.get(LIST_URL).content.decode()

    assert '<html lang="en">' in body
    assert "<h1>Audit log</h1>" in body
    assert '<label for="id_actor">Actor</label>' in body
    assert "Export CSV" in body


# --- filters --------------------------------------------------------------------------------------


@pytest.fixture
def mixed_events(auditor_client, applicant, steward):  # type: ignore[no-untyped-def]
    """#1 the auditor's login, then #2..#7 as below."""
    base = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
    record_at(base, action="accounts.login", actor=applicant, target=applicant)  # 2
    record_at(base.replace(hour=1), action="access.granted", actor=steward, target=applicant)  # 3
    record_at(base.replace(hour=2), action="access.revoked", actor=steward, target=steward)  # 4
    record_at(
        base.replace(hour=3), action="accounts.login_failed", actor_email="applicant@example.co.jpx"
    )  # 5
    record_at(base.replace(hour=4), action="accounts.login", actor=steward, target=steward)  # 6
    record_at(base.replace(hour=5), action="access.granted", actor=applicant, target=steward)  # 7
    return {"applicant": applicant, "steward": steward}


def test_audit_page_filter_actor_exact(auditor_client, mixed_events):
    response = auditor_client.get(LIST_URL, {"actor": "Applicant@Example.co.jp"})

    assert shown_ids(response) == [7, 2]


def test_audit_page_filter_actor_prefix(auditor_client, mixed_events):
    response = auditor_client.get(LIST_URL, {"actor": "applicant@*"})

    assert shown_ids(response) == [7, 5, 2]


def test_audit_page_filter_actor_domain_prefix(auditor_client, mixed_events):
    response = auditor_client.get(LIST_URL, {"actor": "steward@jsp.*"})

    assert shown_ids(response) == [6, 4, 3]


def test_audit_page_filter_action(auditor_client, mixed_events):
    response = auditor_client.get(LIST_URL, {"action": "access.granted"})

    assert shown_ids(response) == [7, 3]
    assert '<option value="access.granted">' in response.content.decode()


def test_audit_page_filter_target_type_and_id(auditor_client, mixed_events):
    steward = mixed_events["steward"]

    by_type = auditor_client.get(LIST_URL, {"target_type": "accounts.user"})
    by_target = auditor_client.get(
        LIST_URL, {"target_type": "accounts.user", "target_id": str(steward.pk)}
    )
    by_id_only = auditor_client.get(LIST_URL, {"target_id": str(steward.pk)})

    assert shown_ids(by_type) == [7, 6, 4, 3, 2, 1]
    assert shown_ids(by_target) == [7, 6, 4]
    assert shown_ids(by_id_only) == [7, 6, 4]


def test_audit_page_filter_time_range_in_japan_time(auditor_client, mixed_events):
    # 10:00-12:00 Tokyo is 01:00-03:00 UTC: events #3 (01:00) and #4 (02:00); #5 at 03:00 is out.
    response = auditor_client.get(
        LIST_URL, {"since": "2026-04-01T10:00", "until": "2026-04-01T12:00"}
    )

    assert shown_ids(response) == [4, 3]
    assert 'value="2026-04-01T10:00"' in response.content.decode()


def test_audit_page_filter_since_only(auditor_client, mixed_events):
    response = auditor_client.get(
        LIST_URL, {"since": "2026-04-01T13:00", "until": "2026-04-01T23:59"}
    )

    assert shown_ids(response) == [7, 6]


def test_audit_page_filters_combine(auditor_client, mixed_events):
    response = auditor_client.get(
        LIST_URL, {"actor": "steward@*", "action": "access.granted", "target_type": "accounts.user"}
    )

    assert shown_ids(response) == [3]


def test_audit_page_filter_matching_nothing_says_so(auditor_client, mixed_events):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(LIST_URL, {"action": "access.nothing"})

    assert shown_ids(response) == []
    assert "No events match these filters." in response.content.decode()


# --- invalid input --------------------------------------------------------------------------------


def test_audit_page_invalid_date_shows_error_next_to_field(auditor_client):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(LIST_URL, {"since": "yesterday"})

    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["page"] is None
    assert response.context["form"].errors == {"since": ["Enter a valid date/time."]}
    assert (
        '<input type="datetime-local" name="since" value="yesterday" aria-invalid="true" '
        'aria-describedby="id_since_helptext id_since_error" id="id_since">'
    ) in body
    assert (
        '<div class="field__error" id="id_since_error" role="alert"><p>Enter a valid date/time.</p></div>'
        in body
    )
    assert 'data-testid="audit-events"' not in body


def test_audit_page_until_before_since_shows_error(auditor_client):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(
        LIST_URL, {"since": "2026-04-02T00:00", "until": "2026-04-01T00:00"}
    )

    assert response.context["form"].errors == {"until": ["Until must be later than From."]}
    assert response.context["page"] is None


@pytest.mark.parametrize(
    ("actor", "error"),
    [("*", "Enter at least one character before the *."), ("a*b", "A * may only come at the end.")],
)
def test_audit_page_bad_actor_pattern_shows_error(auditor_client, actor, error):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(LIST_URL, {"actor": actor})

    assert response.context["form"].errors == {"actor": [error]}
    assert f'<div class="field__error" id="id_actor_error" role="alert"><p>{error}</p></div>' in (
        response.content.decode()
    )


def test_audit_page_bad_cursor_shows_error(auditor_client):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(LIST_URL, {"before": "abc"})

    assert response.context["form"].errors == {"before": ["Enter a whole number."]}
    assert "<p>Page: Enter a whole number.</p>" in response.content.decode()


def test_audit_page_both_cursors_shows_error(auditor_client):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(LIST_URL, {"before": "5", "after": "2"})

    assert response.context["form"].errors == {
        "__all__": ["A page is either before or after an event, not both."]
    }


# --- keyset pages ---------------------------------------------------------------------------------


@pytest.fixture
def many_events(auditor_client):  # type: ignore[no-untyped-def]
    """#1 the auditor's login, then #2..#121: 'tests.even' on even ids, 'tests.odd' on odd ones."""
    for n in range(2, 122):
        audit_record(action="tests.even" if n % 2 == 0 else "tests.odd", actor=None)
    return 121


def test_audit_page_keyset_walks_older_and_back(auditor_client, many_events):
    first = auditor_client.get(LIST_URL)
    assert shown_ids(first) == list(range(121, 71, -1))
    assert link_query(first, "previous") is None
    assert link_query(first, "next") == {"before": ["72"]}

    second = auditor_client.get(LIST_URL, {"before": "72"})
    assert shown_ids(second) == list(range(71, 21, -1))
    assert link_query(second, "previous") == {"after": ["71"]}
    assert link_query(second, "next") == {"before": ["22"]}

    last = auditor_client.get(LIST_URL, {"before": "22"})
    assert shown_ids(last) == list(range(21, 0, -1))
    assert link_query(last, "previous") == {"after": ["21"]}
    assert link_query(last, "next") is None

    back = auditor_client.get(LIST_URL, {"after": "71"})
    assert shown_ids(back) == list(range(121, 71, -1))
    assert link_query(back, "previous") is None
    assert link_query(back, "next") == {"before": ["72"]}


def test_audit_page_links_keep_filters(auditor_client, many_events):
    auditor_client.cookies["django_language"] = "en"

    first = auditor_client.get(LIST_URL, {"action": "tests.even", "actor": ""})
    assert shown_ids(first) == list(range(120, 20, -2))
    assert link_query(first, "next") == {"action": ["tests.even"], "before": ["22"]}
    assert 'href="?action=tests.even&amp;before=22"' in first.content.decode()

    second = auditor_client.get(LIST_URL, {"action": "tests.even", "before": "22"})
    assert shown_ids(second) == list(range(20, 1, -2))
    assert link_query(second, "previous") == {"action": ["tests.even"], "after": ["20"]}
    assert link_query(second, "next") is None


def test_audit_page_cursor_past_the_end_links_back(auditor_client, many_events):
    response = auditor_client.get(LIST_URL, {"after": "121"})

    assert shown_ids(response) == []
    assert link_query(response, "previous") is None
    assert link_query(response, "next") == {"before": ["122"]}


@pytest.fixture
def timed_events(auditor_client):  # type: ignore[no-untyped-def]
    """#1 the auditor's login (now), then #2..#121 a minute apart from 2026-04-01 09:00 Tokyo."""
    base = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    for n in range(2, 122):
        record_at(base + timedelta(minutes=n - 2))
    return 121


def test_audit_page_keyset_with_time_filter_walks_older_and_back(auditor_client, timed_events):
    window = {"since": "2026-04-01T09:00", "until": "2026-04-01T12:00"}  # #2..#121

    first = auditor_client.get(LIST_URL, window)
    second = auditor_client.get(LIST_URL, {**window, "before": "72"})
    last = auditor_client.get(LIST_URL, {**window, "before": "22"})
    back = auditor_client.get(LIST_URL, {**window, "after": "71"})

    assert shown_ids(first) == list(range(121, 71, -1))
    assert link_query(first, "next") == {**{k: [v] for k, v in window.items()}, "before": ["72"]}
    assert link_query(first, "previous") is None
    assert shown_ids(second) == list(range(71, 21, -1))
    assert link_query(second, "previous") == {
        **{k: [v] for k, v in window.items()},
        "after": ["71"],
    }
    assert shown_ids(last) == list(range(21, 1, -1))
    assert link_query(last, "next") is None
    assert shown_ids(back) == list(range(121, 71, -1))
    assert link_query(back, "previous") is None


def test_audit_page_time_filter_orders_by_time_then_id(auditor_client, timed_events):
    # An event whose clock ran behind (another host): shown where its time puts it.
    record_at(datetime(2026, 4, 1, 0, 30, 30, tzinfo=UTC), action="tests.late_clock")  # #122

    response = auditor_client.get(
        LIST_URL, {"since": "2026-04-01T09:29", "until": "2026-04-01T09:33"}
    )

    assert shown_ids(response) == [34, 33, 122, 32, 31]


def test_audit_page_time_filter_unknown_cursor_shows_empty_page(auditor_client, timed_events):
    response = auditor_client.get(LIST_URL, {"since": "2026-04-01T09:00", "before": "5000"})

    assert response.status_code == 200
    assert shown_ids(response) == []
    assert (link_query(response, "next"), link_query(response, "previous")) == (None, None)


def test_audit_page_time_filter_query_count(
    auditor_client, timed_events, django_assert_num_queries
):
    # As the plain page, plus the cursor event's time.
    with django_assert_num_queries(10):
        response = auditor_client.get(LIST_URL, {"since": "2026-04-01T09:00", "before": "72"})

    assert shown_ids(response) == list(range(71, 21, -1))


def test_audit_page_list_query_count_does_not_grow(
    auditor_client, many_events, django_assert_num_queries
):
    # session, user, MFA check (authenticator), roles (organisation, society and committee
    # memberships), the page (51 rows), whether newer events exist, the recent actions.
    with django_assert_num_queries(9):
        response = auditor_client.get(LIST_URL, {"before": "72", "action": "tests.odd"})

    assert shown_ids(response) == list(range(71, 2, -2))


# --- CSV export -----------------------------------------------------------------------------------


def test_audit_export_streams_csv_with_bom_and_records_itself(
    auditor_client, auditor, mixed_events
):
    applicant = mixed_events["applicant"]

    response = auditor_client.get(EXPORT_URL, {"actor": "applicant@*"})

    assert response.status_code == 200
    assert response.streaming is True
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    rows = csv_rows(response)
    events = {event.id: event for event in AuditEvent.objects.filter(id__in=[2, 5, 7])}
    assert rows == [
        [
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
        ],
        [
            "2",
            "2026-04-01T09:00:00+09:00",
            str(applicant.pk),
            "applicant@example.co.jp",
            "",
            "accounts.login",
            "accounts.user",
            str(applicant.pk),
            "申請 太郎",
            "{}",
            "",
            events[2].prev_hash,
            events[2].hash,
        ],
        [
            "5",
            "2026-04-01T12:00:00+09:00",
            "",
            "applicant@example.co.jpx",
            "",
            "accounts.login_failed",
            "",
            "",
            "",
            "{}",
            "",
            events[5].prev_hash,
            events[5].hash,
        ],
        [
            "7",
            "2026-04-01T14:00:00+09:00",
            str(applicant.pk),
            "applicant@example.co.jp",
            "",
            "access.granted",
            "accounts.user",
            str(mixed_events["steward"].pk),
            "情報 管理者",
            "{}",
            "",
            events[7].prev_hash,
            events[7].hash,
        ],
    ]
    export = AuditEvent.objects.get(id=8)
    assert (export.action, export.actor_id, export.actor_email, export.details) == (
        "audit.exported",
        auditor.pk,
        "auditor@nii.example.ac.jp",
        {"filters": {"actor": "applicant@*"}},
    )
    assert export.ip == "127.0.0.1"
    assert verify_chain() == ChainReport(checked=8, ok=True)


def test_audit_export_records_all_filters(auditor_client, mixed_events):
    auditor_client.get(
        EXPORT_URL,
        {
            "action": "access.granted",
            "target_type": "accounts.user",
            "target_id": "9",
            "since": "2026-04-01T10:00",
            "until": "2026-04-02T10:00",
        },
    )

    export = AuditEvent.objects.get(action="audit.exported")
    assert export.details == {
        "filters": {
            "action": "access.granted",
            "target_type": "accounts.user",
            "target_id": "9",
            "since": "2026-04-01T10:00:00+09:00",
            "until": "2026-04-02T10:00:00+09:00",
        }
    }


def test_audit_export_excludes_itself_and_later_events(auditor_client):
    response = auditor_client.get(EXPORT_URL)
    audit_record(action="tests.after_export", actor=None)  # written while the file streams

    rows = csv_rows(response)

    assert [row[0] for row in rows[1:]] == ["1"]
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "accounts.login",
        "audit.exported",
        "tests.after_export",
    ]


def test_audit_export_rows_read_in_id_chunks(many_events, django_assert_num_queries):
    rows = audit_event_export_rows(
        filters=AuditEventFilters(action="tests.even"), up_to_id=1000, chunk_size=50
    )

    with django_assert_num_queries(2):  # 60 rows: a full chunk of 50, then the last 10
        ids = [event.id for event in rows]

    assert ids == list(range(2, 122, 2))


def test_audit_export_rows_with_time_filter_read_in_time_chunks(
    timed_events, django_assert_num_queries
):
    filters = AuditEventFilters(
        since=datetime(2026, 4, 1, 0, 0, tzinfo=UTC), until=datetime(2026, 4, 1, 1, 0, tzinfo=UTC)
    )
    rows = audit_event_export_rows(filters=filters, up_to_id=1000, chunk_size=25)

    with django_assert_num_queries(3):  # 60 rows: 25, 25, then 10
        ids = [event.id for event in rows]

    assert ids == list(range(2, 62))


def test_audit_export_query_count(auditor_client, many_events, django_assert_num_queries):
    # session, user, roles (3), MFA check; the export event (savepoint, locked head, insert, head
    # update, release); then a single chunk of rows.
    with django_assert_num_queries(12):
        rows = csv_rows(auditor_client.get(EXPORT_URL, {"action": "tests.odd"}))

    assert len(rows) == 61


def test_audit_export_neutralises_spreadsheet_formulas(auditor_client):
    audit_record(
        action="accounts.login_failed",
        actor=None,
        actor_email='=HYPERLINK("http://evil")',
        details={"x": "=1+1"},
    )

    rows = csv_rows(auditor_client.get(EXPORT_URL))

    assert rows[2][3] == '\'=HYPERLINK("http://evil")'
    assert rows[2][9] == '{"x":"=1+1"}'


def test_audit_export_invalid_filters_refused_and_not_recorded(auditor_client):
    auditor_client.cookies["django_language"] = "en"

    response = auditor_client.get(EXPORT_URL, {"since": "soon"})

    assert response.status_code == 400
    assert response.context["form"].errors == {"since": ["Enter a valid date/time."]}
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["accounts.login"]


def test_audit_export_without_role_forbidden_and_not_recorded(client, applicant):
    client.force_login(applicant)

    response = client.get(EXPORT_URL)

    assert response.status_code == 403
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["accounts.login"]


def test_audit_export_anonymous_redirected_and_not_recorded(client):
    response = client.get(EXPORT_URL)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/audit/export.csv"
    assert AuditEvent.objects.count() == 0


def test_audit_page_post_not_allowed(auditor_client):
    response = auditor_client.post(LIST_URL)

    assert response.status_code == 405


@pytest.mark.parametrize("hostile", ["+1", "-2", "@SUM(A1)", "\tX", "\rX", '=HYPERLINK("http://x","y")'])
def test_audit_export_neutralises_every_formula_start(auditor_client, hostile):
    audit_record(action="accounts.login_failed", actor=None, actor_email=hostile, details={})

    rows = csv_rows(auditor_client.get(EXPORT_URL))

    assert rows[2][3] == "'" + hostile
