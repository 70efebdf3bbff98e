"""Appending to the chain: in the caller's transaction, serialised between writers."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from portal.audit import context
from portal.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent
from portal.audit.services import audit_record
from portal.audit.tasks import verify_chain_task
from portal.audit.verify import ChainReport, verify_chain
from tests.support.ci import require


class Boom(Exception):
    pass


@pytest.mark.django_db
def test_audit_record_first_event_starts_chain(applicant):
    token = context.bind(context.RequestContext(ip="203.0.113.7", request_id="a" * 32))
    try:
        event = audit_record(
            action="accounts.profile_viewed",
            actor=applicant,
            target=applicant,
            details={"fields": ["氏名"]},
        )
    finally:
        context.reset(token)

    stored = AuditEvent.objects.get()
    assert (stored.id, stored.prev_hash, stored.hash) == (1, GENESIS_HASH, event.hash)
    assert (stored.actor_id, stored.actor_email, stored.ip, stored.request_id) == (
        applicant.pk,
        "applicant@example.co.jp",
        "203.0.113.7",
        "a" * 32,
    )
    assert (stored.target_type, stored.target_id, stored.details) == (
        "accounts.user",
        str(applicant.pk),
        {"fields": ["氏名"]},
    )
    head = AuditChainHead.objects.get()
    assert (head.last_event_id, head.last_hash, head.event_count) == (1, event.hash, 1)
    assert verify_chain() == ChainReport(checked=1, ok=True)


@pytest.mark.django_db
def test_audit_record_bad_action_refused_and_nothing_written():
    with pytest.raises(ValueError, match=r"must look like 'app\.verb'"):
        audit_record(action="Login", actor=None)

    assert AuditEvent.objects.count() == 0
    assert AuditChainHead.objects.count() == 0


@pytest.mark.django_db
def test_audit_record_rolled_back_transaction_leaves_no_event_and_head_unchanged():
    first = audit_record(action="tests.kept", actor=None)
    head_before = AuditChainHead.objects.values().get()

    with pytest.raises(Boom), transaction.atomic():
        audit_record(action="tests.rolled_back", actor=None)
        raise Boom

    assert list(AuditEvent.objects.values_list("id", "action")) == [(first.id, "tests.kept")]
    assert AuditChainHead.objects.values().get() == head_before
    after = audit_record(action="tests.kept", actor=None)
    assert (after.id, after.prev_hash) == (2, first.hash)
    assert verify_chain() == ChainReport(checked=2, ok=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [0, 1], ids=["empty_log", "started_log"])
def test_audit_record_concurrent_writers_keep_one_chain_on_postgresql(existing):
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
    for _ in range(existing):
        audit_record(action="tests.before", actor=None)
    threads_count, per_thread = 4, 25
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                with transaction.atomic():
                    audit_record(
                        action="tests.concurrent", actor=None, details={"w": worker, "n": n}
                    )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    total = existing + threads_count * per_thread
    assert (
        AuditEvent.objects.filter(action="tests.concurrent").count() == threads_count * per_thread
    )
    assert list(AuditEvent.objects.order_by("id").values_list("id", flat=True)) == list(
        range(1, total + 1)
    )
    assert AuditChainHead.objects.get().event_count == total
    assert verify_chain() == ChainReport(checked=total, ok=True)


# apply() runs the task in this process (eagerly) whether or not a broker is configured, so the
# task sees this test's uncommitted data and never waits for a worker.


@pytest.mark.django_db
def test_verify_chain_task_eager_returns_ok():
    audit_record(action="tests.recorded", actor=None)
    audit_record(action="tests.recorded", actor=None)

    result = verify_chain_task.apply().get()

    assert result == {"checked": 2, "ok": True, "bad_event_id": None, "problem": ""}


@pytest.mark.django_db
def test_verify_chain_task_eager_reports_broken_chain():
    audit_record(action="tests.recorded", actor=None)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM audit_auditevent WHERE id = 1")
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")

    result = verify_chain_task.apply().get()

    assert (result["ok"], result["bad_event_id"], result["checked"]) == (False, 1, 0)
