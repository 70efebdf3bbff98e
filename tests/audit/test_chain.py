"""The event hash: canonical, and sensitive to every field and to the previous hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from portal.audit.chain import event_hash, normalise_details

BASE = {
    "prev_hash": "0" * 64,
    "event_id": 1,
    "created_at": datetime(2026, 4, 1, 0, 0, tzinfo=UTC),
    "actor_id": 7,
    "actor_email": "a@example.jp",
    "ip": "192.0.2.1",
    "action": "accounts.login",
    "target_type": "accounts.user",
    "target_id": "7",
    "target_repr": "監査 担当",
    "details": {"b": 1, "a": [1, 2]},
    "request_id": "f" * 32,
}


def test_event_hash_same_content_same_hash():
    assert event_hash(**BASE) == event_hash(**BASE)
    assert len(event_hash(**BASE)) == 64


def test_event_hash_ignores_zone_and_key_order():
    tokyo = timezone(timedelta(hours=9))
    same = {
        **BASE,
        "created_at": datetime(2026, 4, 1, 9, 0, tzinfo=tokyo),
        "details": {"a": [1, 2], "b": 1},
    }

    assert event_hash(**same) == event_hash(**BASE)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prev_hash", "1" * 64),
        ("event_id", 2),
        ("created_at", datetime(2026, 4, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ("actor_id", None),
        ("actor_email", "b@example.jp"),
        ("ip", None),
        ("action", "accounts.logout"),
        ("target_type", "accounts.organization"),
        ("target_id", "8"),
        ("target_repr", "監査 担当 "),
        ("details", {"b": 1, "a": [2, 1]}),
        ("request_id", ""),
    ],
)
def test_event_hash_changes_with_every_field(field, value):
    assert event_hash(**{**BASE, field: value}) != event_hash(**BASE)


def test_normalise_details_reads_back_like_the_json_column():
    assert normalise_details({"when": datetime(2026, 4, 1, tzinfo=UTC), "n": (1, 2)}) == {
        "when": "2026-04-01T00:00:00Z",
        "n": [1, 2],
    }
    assert normalise_details(None) == {}
