"""The chain finds every kind of tampering, and names the first bad event.

Tampering goes through raw SQL, as someone with direct database access would; on PostgreSQL the
cursor first switches to the replica role, which (like a database superuser) skips the append-only
trigger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from portal.audit.chain import event_hash
from portal.audit.models import AuditChainHead, AuditEvent
from portal.audit.services import audit_record
from portal.audit.verify import ChainReport, verify_chain

pytestmark = pytest.mark.django_db


@contextmanager
def superuser_cursor() -> Iterator[Any]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")


def record_events(count: int) -> list[AuditEvent]:
    return [
        audit_record(
            action="tests.something_happened",
            actor=None,
            actor_email=f"person{n}@example.jp",
            details={"n": n, "note": "記録"},
        )
        for n in range(1, count + 1)
    ]


def rehash(event: AuditEvent, **changes: Any) -> str:
    values = {
        "prev_hash": event.prev_hash,
        "event_id": event.id,
        "created_at": event.created_at,
        "actor_id": event.actor_id,
        "actor_email": event.actor_email,
        "ip": event.ip,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "details": event.details,
        "request_id": event.request_id,
    }
    values.update(changes)
    return event_hash(**values)


def insert_raw(cursor: Any, **row: Any) -> None:
    row = {**row, "details": json.dumps(row["details"])}
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    cursor.execute(
        f"INSERT INTO audit_auditevent ({columns}) VALUES ({placeholders})", list(row.values())
    )


def command_error() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", stdout=StringIO(), stderr=StringIO())
    return str(caught.value)


def test_verify_chain_intact_reports_every_event():
    record_events(5)

    assert verify_chain() == ChainReport(checked=5, ok=True)


def test_verify_chain_empty_log_is_intact():
    assert verify_chain() == ChainReport(checked=0, ok=True)


def test_audit_verify_command_intact_prints_count():
    record_events(3)
    out, err = StringIO(), StringIO()

    call_command("audit_verify", stdout=out, stderr=err)

    assert out.getvalue().strip() == "OK: 3 events checked, chain intact."
    assert err.getvalue() == ""


def test_audit_verify_command_verbose_shows_progress_per_chunk():
    record_events(5)
    out, err = StringIO(), StringIO()

    call_command("audit_verify", chunk_size=2, verbosity=2, stdout=out, stderr=err)

    progress = [line.split(" (")[0] for line in err.getvalue().splitlines()]
    assert progress == ["… 2 events checked", "… 4 events checked", "… 5 events checked"]
    assert out.getvalue().strip() == "OK: 5 events checked, chain intact."


def test_verify_chain_changed_details_names_that_event():
    record_events(5)
    with superuser_cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET details = %s WHERE id = 3", [json.dumps({"n": 999})]
        )

    report = verify_chain()

    assert report == ChainReport(
        checked=2,
        ok=False,
        bad_event_id=3,
        problem="its content does not match its hash (it was changed)",
    )
    assert command_error() == (
        "Audit chain broken at event #3: its content does not match its hash (it was changed). "
        "2 events before it are intact."
    )


def test_verify_chain_changed_actor_names_that_event():
    record_events(5)
    with superuser_cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET actor_email = %s WHERE id = 4", ["someone@else.jp"]
        )

    report = verify_chain()

    assert (report.ok, report.bad_event_id, report.checked) == (False, 4, 3)
    assert command_error().startswith("Audit chain broken at event #4: its content does not match")


def test_verify_chain_changed_event_with_recomputed_hash_caught_at_next_event():
    events = record_events(5)
    forged_hash = rehash(events[2], actor_email="someone@else.jp")
    with superuser_cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET actor_email = %s, hash = %s WHERE id = 3",
            ["someone@else.jp", forged_hash],
        )

    report = verify_chain()

    assert report == ChainReport(
        checked=3,
        ok=False,
        bad_event_id=4,
        problem="its previous-hash does not match the event before it "
        "(an event was removed, inserted or rewritten before it)",
    )
    assert command_error().startswith("Audit chain broken at event #4: its previous-hash")


def test_verify_chain_changed_last_event_with_recomputed_hash_caught_by_head():
    events = record_events(3)
    forged_hash = rehash(events[2], details={"n": 0})
    with superuser_cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET details = %s, hash = %s WHERE id = 3",
            [json.dumps({"n": 0}), forged_hash],
        )

    report = verify_chain()

    assert (report.ok, report.bad_event_id, report.checked) == (False, 3, 3)
    assert report.problem.startswith("the chain head records 3 events ending at #3")
    assert command_error().startswith("Audit chain broken at event #3: the chain head records")


def test_verify_chain_deleted_middle_event_caught_at_next_event():
    record_events(5)
    with superuser_cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = 2")

    report = verify_chain()

    assert report == ChainReport(
        checked=1,
        ok=False,
        bad_event_id=3,
        problem="event #2 is missing: the next stored event is #3",
    )
    assert command_error() == (
        "Audit chain broken at event #3: event #2 is missing: the next stored event is #3. "
        "1 events before it are intact."
    )


def test_verify_chain_deleted_first_event_caught_at_next_event():
    record_events(3)
    with superuser_cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = 1")

    report = verify_chain()

    assert (report.ok, report.bad_event_id, report.checked) == (False, 2, 0)
    assert report.problem == "event #1 is missing: the next stored event is #2"


def test_verify_chain_deleted_last_event_caught_by_head():
    record_events(5)
    with superuser_cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = 5")

    report = verify_chain()

    assert report == ChainReport(
        checked=4,
        ok=False,
        bad_event_id=5,
        problem="the chain head records 5 events ending at #5, but 4 events were found "
        "(events were removed from or added at the end, or the head was changed)",
    )
    assert command_error().startswith(
        "Audit chain broken at event #5: the chain head records 5 events ending at #5, but 4"
    )


def test_verify_chain_forged_event_appended_without_head_names_it():
    events = record_events(3)
    created_at = timezone.now()
    forged = {
        "id": 4,
        "created_at": created_at,
        "actor_id": None,
        "actor_email": "forger@example.jp",
        "ip": None,
        "action": "tests.something_happened",
        "target_type": "",
        "target_id": "",
        "target_repr": "",
        "details": {"n": 4},
        "request_id": "",
        "prev_hash": events[2].hash,
    }
    forged["hash"] = rehash(AuditEvent(**forged))
    with superuser_cursor() as cursor:
        insert_raw(cursor, **forged)

    report = verify_chain()

    assert (report.ok, report.bad_event_id, report.checked) == (False, 4, 4)
    assert report.problem.startswith("the chain head records 3 events ending at #3, but 4")
    assert command_error().startswith("Audit chain broken at event #4: the chain head records 3")


def test_verify_chain_forged_event_with_gap_id_names_it():
    events = record_events(3)
    forged = {
        "id": 9,
        "created_at": timezone.now(),
        "actor_id": None,
        "actor_email": "",
        "ip": None,
        "action": "tests.something_happened",
        "target_type": "",
        "target_id": "",
        "target_repr": "",
        "details": {},
        "request_id": "",
        "prev_hash": events[2].hash,
    }
    forged["hash"] = rehash(AuditEvent(**forged))
    with superuser_cursor() as cursor:
        insert_raw(cursor, **forged)

    report = verify_chain()

    assert report == ChainReport(
        checked=3,
        ok=False,
        bad_event_id=9,
        problem="event #4 is missing: the next stored event is #9",
    )
    assert command_error().startswith("Audit chain broken at event #9: event #4 is missing")


def test_verify_chain_forged_event_before_the_first_names_it():
    record_events(2)
    forged = {
        "id": 0,
        "created_at": timezone.now(),
        "actor_id": None,
        "actor_email": "",
        "ip": None,
        "action": "tests.something_happened",
        "target_type": "",
        "target_id": "",
        "target_repr": "",
        "details": {},
        "request_id": "",
        "prev_hash": "0" * 64,
    }
    forged["hash"] = rehash(AuditEvent(**forged))
    with superuser_cursor() as cursor:
        insert_raw(cursor, **forged)

    report = verify_chain()

    assert report == ChainReport(
        checked=0,
        ok=False,
        bad_event_id=0,
        problem="event #1 is out of order: the next stored event is #0",
    )


def test_verify_chain_swapped_events_names_the_first_of_them():
    record_events(5)
    with superuser_cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET id = -2 WHERE id = 2")
        cursor.execute("UPDATE audit_auditevent SET id = 2 WHERE id = 3")
        cursor.execute("UPDATE audit_auditevent SET id = 3 WHERE id = -2")

    report = verify_chain()

    assert (report.ok, report.bad_event_id, report.checked) == (False, 2, 1)
    assert command_error().startswith("Audit chain broken at event #2:")


def test_verify_chain_missing_head_is_reported():
    record_events(2)
    with superuser_cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditchainhead")

    report = verify_chain()

    assert (report.ok, report.bad_event_id, report.checked) == (False, 1, 2)
    assert report.problem.startswith("the chain head records 0 events ending at #None, but 2")
    assert AuditChainHead.objects.count() == 0
