"""Writing the audit log. ``audit_record`` is the only way an event is written."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.utils import timezone

from portal.audit import context
from portal.audit.chain import event_hash, normalise_details
from portal.audit.models import GENESIS_HASH, AuditChainHead, AuditEvent

if TYPE_CHECKING:
    from portal.accounts.models import User

ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class AuditChainBroken(Exception):
    """The chain head is missing while events exist: appending would start a second chain."""


def _chain_head_for_update() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    if AuditEvent.objects.exists():
        # Another writer may have just committed the first event together with the head, after
        # the lookup above: look once more before declaring the head lost.
        head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
        if head is not None:
            return head
        raise AuditChainBroken(
            "The audit chain head is missing although events exist; run `manage.py audit_verify`."
        )
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
    return head


def audit_record(
    *,
    action: str,
    actor: User | None,
    target: models.Model | None = None,
    details: dict[str, Any] | None = None,
    actor_email: str = "",
    ip: str | None = None,
) -> AuditEvent:
    """Append one event to the chain.

    Call it inside the transaction of the change it records: if that transaction rolls back, the
    event goes with it, and if writing the event fails, so does the change.
    """
    if not ACTION_PATTERN.match(action):
        raise ValueError(f"Audit action {action!r} must look like 'app.verb' in lower case.")
    request = context.current()
    event_ip = ip if ip is not None else request.ip
    if event_ip is not None:
        # Hash the address in the form the database stores it (compressed, lower-case IPv6).
        event_ip = str(ipaddress.ip_address(event_ip))
    with transaction.atomic():
        head = _chain_head_for_update()
        event = AuditEvent(
            id=(head.last_event_id or 0) + 1,
            created_at=timezone.now(),
            actor_id=actor.pk if actor is not None else None,
            actor_email=(actor.email if actor is not None else actor_email)[:254],
            ip=event_ip,
            action=action,
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:255] if target is not None else "",
            details=normalise_details(details),
            request_id=request.request_id or "",
            prev_hash=head.last_hash or GENESIS_HASH,
        )
        event.hash = event_hash(
            prev_hash=event.prev_hash,
            event_id=event.id,
            created_at=event.created_at,
            actor_id=event.actor_id,
            actor_email=event.actor_email,
            ip=event.ip,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            target_repr=event.target_repr,
            details=event.details,
            request_id=event.request_id,
        )
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=1).update(
            last_event_id=event.id,
            last_hash=event.hash,
            event_count=models.F("event_count") + 1,
        )
    return event
