"""The data migration that gives each ``closed`` protocol the end state it came from (item 20)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.db import connection
from django.utils import timezone

from portal.audit.services import audit_record
from portal.ethics.models import HeadDecision, Protocol, ProtocolVersion
from tests.factories import OrganizationFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory

migration = importlib.import_module("portal.ethics.migrations.0005_end_states_from_closed")


@contextmanager
def _legacy_status_allowed() -> Iterator[None]:
    """Let a row carry a status that is no longer a choice, as rows written before 0005 did; the
    database refuses it since ``protocol_status_valid`` (the test's transaction restores it)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        else:
            cursor.execute("ALTER TABLE ethics_protocol DROP CONSTRAINT protocol_status_valid")
        try:
            yield
        finally:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA ignore_check_constraints = OFF")


def _closed(**audit: dict) -> Protocol:  # type: ignore[type-arg]
    # "closed" is no longer a status; rows written before the change still carry it.
    with _legacy_status_allowed():
        protocol = Protocol.objects.create(
            committee=EthicsCommitteeFactory(), principal_investigator=UserFactory(),
            institution=OrganizationFactory(), status="closed",
        )
    for action, details in audit.items():
        audit_record(action=f"ethics.{action}", actor=None, target=protocol, details=details)
    return protocol


def _migrated(protocol: Protocol) -> Protocol:
    migration.forwards(apps, None)
    return Protocol.objects.get(pk=protocol.pk)


def test_migration_closed_after_withdrawal_becomes_withdrawn(db):
    protocol = _closed(protocol_withdrawn={"from": "draft", "to": "closed"})

    migrated = _migrated(protocol)

    assert (migrated.status, migrated.end_report) == ("withdrawn", "")
    assert migrated.ended_at is not None


def test_migration_closed_from_not_approved_becomes_not_approved(db):
    protocol = _closed(protocol_closed={"from": "not_approved", "to": "closed"})

    assert _migrated(protocol).status == "not_approved"


def test_migration_closed_after_completion_keeps_the_report(db):
    protocol = _closed(completion_reported={"report": "予定通り終了した。", "from": "active", "to": "completed"},
                       protocol_closed={"from": "completed", "to": "closed"})

    migrated = _migrated(protocol)

    assert (migrated.status, migrated.end_report) == ("completed", "予定通り終了した。")


def test_migration_closed_without_audit_and_denied_by_the_head_becomes_denied(db):
    protocol = _closed()
    version = ProtocolVersion.objects.create(protocol=protocol, number=1, submitted_at=timezone.now())
    HeadDecision.objects.create(version=version, permitted=False, reasons="体制不備", decided_by=UserFactory())

    assert _migrated(protocol).status == "denied"


def test_migration_closed_without_audit_and_permitted_becomes_completed_with_a_note(db):
    protocol = _closed()
    version = ProtocolVersion.objects.create(protocol=protocol, number=1, submitted_at=timezone.now())
    HeadDecision.objects.create(version=version, permitted=True, decided_by=UserFactory())

    migrated = _migrated(protocol)

    assert (migrated.status, migrated.end_report) == ("completed", migration.REPORT_NOT_RECORDED)


def test_migration_closed_without_anything_becomes_withdrawn(db):
    assert _migrated(_closed()).status == "withdrawn"
