"""access 0008 fills the revocation of grants revoked before the fields existed from their audit event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("access", "0007_lapse_warning_training")]
AUDIT = ("audit", "0002_append_only_trigger")
AFTER = [("access", "0008_grant_revocation_status_constraints")]


@pytest.mark.django_db(transaction=True)
def test_revoked_grants_filled_from_their_audit_event():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state([*BEFORE, AUDIT]).apps
    User = apps.get_model("accounts", "User")
    Grant = apps.get_model("access", "Grant")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    steward = User.objects.create(email="steward@society.example.jp")
    expires = timezone.now() + timedelta(days=30)
    ended = timezone.now() - timedelta(days=2)
    audited = Grant.objects.create(reference="G-M-1", status="revoked", expires_at=expires, ended_at=ended)
    unaudited = Grant.objects.create(reference="G-M-2", status="revoked", expires_at=expires, ended_at=ended)
    active = Grant.objects.create(reference="G-M-3", status="active", expires_at=expires)
    revoked_at = timezone.now() - timedelta(days=1)
    AuditEvent.objects.create(
        id=1, created_at=revoked_at, actor_id=steward.pk, actor_email=steward.email, action="access.grant_revoked",
        target_type="access.grant", target_id=str(audited.pk), details={"reason": "目的外利用"},
        prev_hash="0" * 64, hash="1" * 64,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    Grant = executor.loader.project_state(AFTER).apps.get_model("access", "Grant")

    rows = {g.reference: (g.revoked_at, g.revoked_by_id, g.revoke_reason) for g in Grant.objects.all()}
    assert rows == {
        audited.reference: (revoked_at, steward.pk, "目的外利用"),
        unaudited.reference: (ended, None, ""),
        active.reference: (None, None, ""),
    }
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
