"""The append-only, hash-chained audit log.

Each event's ``hash`` is the SHA-256 of its canonical content together with the previous event's
hash, so changing, deleting or inserting any event breaks the chain from that point on;
``AuditChainHead`` remembers the last event so that cutting events off the end is found too.
Events hold no foreign keys: evidence must outlive the users and objects it names.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64

# Every column of an event, in the order the verifier, exports, admin and API show them.
EVENT_FIELDS = (
    "id", "created_at", "actor_id", "actor_email", "ip", "action", "target_type", "target_id",
    "target_repr", "details", "request_id", "prev_hash", "hash",
)


class AuditLogIsAppendOnly(Exception):
    """Raised when code tries to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit events cannot be updated.")

    def delete(self) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit events cannot be updated.")


class AuditEvent(models.Model):
    # Numbered by the service under the chain lock (1, 2, 3, ...), so that the number is part of
    # the hashed content and a gap is as visible as a changed row.
    id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField(_("time"), db_index=True)
    actor_id = models.BigIntegerField(_("actor id"), null=True, blank=True)
    actor_email = models.CharField(_("actor"), max_length=254, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    action = models.CharField(_("action"), max_length=100)
    target_type = models.CharField(_("target type"), max_length=100, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=255, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    request_id = models.CharField(_("request id"), max_length=32, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["action", "-id"], name="audit_action_id"),
            models.Index(fields=["actor_id", "-id"], name="audit_actor_id"),
            models.Index(fields=["target_type", "target_id", "-id"], name="audit_target_id"),
        ]
        # A constraint rather than unique=True: on PostgreSQL the latter adds a second, pattern-ops
        # index for LIKE queries that nothing runs, paid for on every insert.
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_event_hash_unique")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_email or '-'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("Audit events cannot be deleted.")


class AuditChainHead(models.Model):
    """One row: the last event of the chain, updated in the transaction that appends an event.

    Appending locks this row, which serialises writers so that the chain never forks.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_event_id = models.BigIntegerField(null=True)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    event_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")]

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_event_id} ({self.event_count} events)"
