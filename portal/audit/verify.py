"""Walking the audit chain to prove that no event was changed, removed or slipped in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from portal.audit.chain import event_hash
from portal.audit.models import EVENT_FIELDS, GENESIS_HASH, AuditChainHead, AuditEvent

_FIELDS = EVENT_FIELDS


@dataclass(frozen=True)
class ChainReport:
    checked: int
    ok: bool
    bad_event_id: int | None = None
    problem: str = ""


def verify_chain(
    *, chunk_size: int = 5000, progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Recompute every hash in id order and compare links; stop at the first bad event."""
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    # No lower bound on the first chunk: a row slipped in with an id of 0 or below must be seen.
    last_id: int | None = None
    while True:
        events = AuditEvent.objects.order_by("id")
        if last_id is not None:
            events = events.filter(id__gt=last_id)
        rows = list(events.values_list(*_FIELDS)[:chunk_size])
        if not rows:
            break
        for row in rows:
            record = dict(zip(_FIELDS, row, strict=True))
            event_id = record["id"]
            if event_id != expected_id:
                missing = "missing" if event_id > expected_id else "out of order"
                return ChainReport(
                    checked, False, event_id,
                    f"event #{expected_id} is {missing}: the next stored event is #{event_id}",
                )
            if record["prev_hash"] != expected_prev:
                return ChainReport(
                    checked, False, event_id,
                    "its previous-hash does not match the event before it "
                    "(an event was removed, inserted or rewritten before it)",
                )
            recomputed = event_hash(
                prev_hash=record["prev_hash"],
                event_id=event_id,
                created_at=record["created_at"],
                actor_id=record["actor_id"],
                actor_email=record["actor_email"],
                ip=record["ip"],
                action=record["action"],
                target_type=record["target_type"],
                target_id=record["target_id"],
                target_repr=record["target_repr"],
                details=record["details"],
                request_id=record["request_id"],
            )
            if recomputed != record["hash"]:
                return ChainReport(
                    checked, False, event_id, "its content does not match its hash (it was changed)"
                )
            expected_prev = record["hash"]
            expected_id += 1
            checked += 1
        last_id = rows[-1][0]
        if progress is not None:
            progress(checked)

    head = AuditChainHead.objects.filter(pk=1).first()
    head_id = head.last_event_id if head else None
    head_hash = head.last_hash if head else GENESIS_HASH
    head_count = head.event_count if head else 0
    if (head_id or 0) != checked or head_hash != expected_prev or head_count != checked:
        # More events than the head knows of: the first one past the head was slipped in.
        surplus = checked > (head_id or 0)
        return ChainReport(
            checked, False, (head_id or 0) + 1 if surplus else (head_id or checked),
            f"the chain head records {head_count} events ending at #{head_id}, "
            f"but {checked} events were found (events were removed from or added at the end, or the head was changed)",
        )
    return ChainReport(checked, True)
