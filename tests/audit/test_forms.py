"""The auditor's filter form: Japan time, actor patterns, cursors."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone, translation

from portal.audit.forms import AuditEventFilterForm
from portal.audit.selectors import AuditEventFilters


def form(**data: str) -> AuditEventFilterForm:
    return AuditEventFilterForm(data)


def test_filter_form_empty_is_valid_and_filters_nothing():
    bound = form()

    assert bound.is_valid()
    assert bound.filters() == AuditEventFilters()
    assert bound.filter_query() == {}


def test_filter_form_datetime_local_read_as_japan_time():
    bound = form(since="2026-04-01T09:00", until="2026-04-01T18:30")

    assert bound.is_valid()
    assert bound.filters().since == datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    assert bound.filters().until == datetime(2026, 4, 1, 9, 30, tzinfo=UTC)


def test_filter_form_datetime_local_japan_time_whatever_the_active_zone():
    with timezone.override("America/New_York"):
        bound = form(since="2026-04-01T09:00")
        assert bound.is_valid()

    assert bound.filters().since == datetime(2026, 4, 1, 0, 0, tzinfo=UTC)


def test_filter_form_explicit_offset_kept():
    bound = form(since="2026-04-01T09:00:00+00:00")

    assert bound.is_valid()
    assert bound.filters().since == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def test_filter_form_actor_lower_cased_and_trimmed():
    bound = form(actor="  Tanaka@Hospital.JP ", action=" accounts.login ", target_id=" 42 ")

    assert bound.is_valid()
    assert bound.filters() == AuditEventFilters(
        actor="tanaka@hospital.jp", action="accounts.login", target_id="42"
    )


def test_filter_form_until_equal_to_since_refused():
    with translation.override("en"):
        bound = form(since="2026-04-01T09:00", until="2026-04-01T09:00")

        assert not bound.is_valid()
        assert bound.errors == {"until": ["Until must be later than From."]}


def test_filter_form_negative_cursor_refused():
    with translation.override("en"):
        bound = form(before="0", after="-1")

        assert not bound.is_valid()
        assert bound.errors == {
            "before": ["Ensure this value is greater than or equal to 1."],
            "after": ["Ensure this value is greater than or equal to 0."],
        }


def test_filter_form_filter_query_keeps_filters_but_not_cursors():
    bound = form(actor="a@*", since="2026-04-01T09:00", before="10", target_type="")

    assert bound.is_valid()
    assert bound.filter_query() == {"actor": "a@*", "since": "2026-04-01T09:00"}


def test_filters_as_details_drops_empty_values():
    filters = AuditEventFilters(
        action="accounts.login", since=datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    )

    assert filters.as_details() == {
        "action": "accounts.login",
        "since": "2026-04-01T00:00:00+00:00",
    }
