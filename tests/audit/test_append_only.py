"""Audit events cannot be changed or removed: the ORM refuses, and on PostgreSQL so does the database."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.forms.models import model_to_dict

from portal.audit.models import AuditChainHead, AuditEvent, AuditLogIsAppendOnly
from portal.audit.services import audit_record
from portal.audit.verify import ChainReport, verify_chain
from tests.support.ci import require

pytestmark = pytest.mark.django_db

NEEDS_POSTGRES = "needs PostgreSQL (set DATABASE_URL)"


@pytest.fixture
def events() -> list[AuditEvent]:
    return [
        audit_record(action="tests.recorded", actor=None, actor_email=f"p{n}@example.jp")
        for n in range(3)
    ]


def stored() -> list[dict[str, object]]:
    return [model_to_dict(event) for event in AuditEvent.objects.order_by("id")]


def test_audit_event_save_existing_refused(events):
    before = stored()
    event = AuditEvent.objects.get(pk=2)
    event.actor_email = "changed@example.jp"

    with pytest.raises(AuditLogIsAppendOnly, match="cannot be updated"):
        event.save()

    assert stored() == before
    assert verify_chain() == ChainReport(checked=3, ok=True)


def test_audit_event_delete_refused(events):
    before = stored()

    with pytest.raises(AuditLogIsAppendOnly, match="cannot be deleted"):
        AuditEvent.objects.get(pk=2).delete()

    assert stored() == before


def test_audit_queryset_update_refused(events):
    before = stored()

    with pytest.raises(AuditLogIsAppendOnly, match="cannot be updated"):
        AuditEvent.objects.update(actor_email="changed@example.jp")
    with pytest.raises(AuditLogIsAppendOnly, match="cannot be updated"):
        AuditEvent.objects.filter(pk=1).update(details={"changed": True})

    assert stored() == before


def test_audit_queryset_delete_refused(events):
    before = stored()

    with pytest.raises(AuditLogIsAppendOnly, match="cannot be deleted"):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditLogIsAppendOnly, match="cannot be deleted"):
        AuditEvent.objects.filter(pk=3).delete()

    assert stored() == before
    assert AuditChainHead.objects.get().event_count == 3


def test_audit_queryset_bulk_update_refused(events):
    before = stored()
    changed = list(AuditEvent.objects.all())
    for event in changed:
        event.action = "tests.changed"

    with pytest.raises(AuditLogIsAppendOnly, match="cannot be updated"):
        AuditEvent.objects.bulk_update(changed, ["action"])

    assert stored() == before


def test_database_refuses_raw_update_on_postgresql(events):
    require(connection.vendor == "postgresql", NEEDS_POSTGRES)
    before = stored()

    with (
        pytest.raises(DatabaseError, match="append-only: UPDATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_auditevent SET actor_email = 'x@example.jp' WHERE id = 2")

    assert stored() == before


def test_database_refuses_raw_delete_on_postgresql(events):
    require(connection.vendor == "postgresql", NEEDS_POSTGRES)
    before = stored()

    with (
        pytest.raises(DatabaseError, match="append-only: DELETE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditevent WHERE id = 3")

    assert stored() == before


def test_database_refuses_truncate_without_setting_on_postgresql(events):
    require(connection.vendor == "postgresql", NEEDS_POSTGRES)
    before = stored()

    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # The test suite allows TRUNCATE on every connection; take that back for this statement.
        cursor.execute("SET LOCAL portal.allow_audit_truncate = 'off'")
        cursor.execute("TRUNCATE audit_auditevent")

    assert stored() == before
    with connection.cursor() as cursor:
        cursor.execute("SHOW portal.allow_audit_truncate")
        assert cursor.fetchone() == ("on",)


def test_database_allows_insert_on_postgresql(events):
    require(connection.vendor == "postgresql", NEEDS_POSTGRES)

    audit_record(action="tests.recorded", actor=None)

    assert AuditEvent.objects.count() == 4
    assert verify_chain() == ChainReport(checked=4, ok=True)
