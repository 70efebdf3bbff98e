"""Reading the audit log: filtering, keyset pages and chunked export.

The log grows to millions of events, so nothing here counts rows or skips with OFFSET: pages and
export chunks are found by id ("the 50 events before #1234"), which the primary key answers from
its index whatever the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from portal.audit.models import AuditEvent

PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2000
# The action suggestions come from this many of the newest events: a DISTINCT over the whole table
# would read every row.
RECENT_ACTIONS_WINDOW = 2000


@dataclass(frozen=True)
class AuditEventFilters:
    """What an auditor narrowed the log to; empty values do not filter."""

    actor: str = ""  # an exact e-mail address, or the start of one followed by "*"
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def as_details(self) -> dict[str, str]:
        """The filters as plain strings, for the audit event that records an export."""
        values = {
            "actor": self.actor,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True)
class AuditEventPage:
    events: list[AuditEvent]
    # Cursors for the neighbouring pages, or None where there is nothing more that way.
    next_before: int | None
    previous_after: int | None


def audit_event_list(
    *, filters: AuditEventFilters, events: QuerySet[AuditEvent] | None = None
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all() if events is None else events
    if filters.actor:
        actor = filters.actor.strip().lower()
        if actor.endswith("*"):
            # Case-sensitive prefix on the lower-cased address: PostgreSQL can use the column's
            # pattern index for it, which it could not for UPPER(...) LIKE.
            events = events.filter(actor_email__startswith=actor.rstrip("*"))
        else:
            events = events.filter(actor_email=actor)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.target_type:
        events = events.filter(target_type=filters.target_type)
    if filters.target_id:
        events = events.filter(target_id=filters.target_id)
    if filters.since is not None:
        events = events.filter(created_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(created_at__lt=filters.until)
    return events


def audit_event_page(
    *,
    filters: AuditEventFilters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> AuditEventPage:
    """One page of events, newest first: the first page, or the page before/after an event id."""
    if before is not None and after is not None:
        raise ValueError("Give either before or after, not both.")
    events = audit_event_list(filters=filters)
    if after is not None:
        # Walk towards newer events, then show them newest first like every other page.
        rows = list(events.filter(id__gt=after).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        has_older = events.filter(id__lte=after).exists()
    else:
        if before is not None:
            events_here = events.filter(id__lt=before)
            has_newer = events.filter(id__gte=before).exists()
        else:
            events_here = events
            has_newer = False
        rows = list(events_here.order_by("-id")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
    # The cursors point past the ends of this page; on an empty page, past the cursor it came with.
    newest_shown = rows[0].id if rows else (before - 1 if before is not None else None)
    oldest_shown = rows[-1].id if rows else (after + 1 if after is not None else None)
    return AuditEventPage(
        events=rows,
        next_before=oldest_shown if has_older else None,
        previous_after=newest_shown if has_newer else None,
    )


def audit_event_export_rows(
    *, filters: AuditEventFilters, up_to_id: int, chunk_size: int = EXPORT_CHUNK_SIZE
) -> Iterator[AuditEvent]:
    """Every matching event with an id below ``up_to_id``, oldest first, read in id chunks."""
    events = audit_event_list(filters=filters).filter(id__lt=up_to_id).order_by("id")
    last_id: int | None = None  # no lower bound at first: stray rows with ids below 1 belong too
    while True:
        chunk = list((events if last_id is None else events.filter(id__gt=last_id))[:chunk_size])
        yield from chunk
        if len(chunk) < chunk_size:
            return
        last_id = chunk[-1].id


def audit_action_choices() -> list[str]:
    """The actions seen among the newest events, to suggest in filters."""
    recent = AuditEvent.objects.order_by("-id").values_list("action", flat=True)
    return sorted(set(recent[:RECENT_ACTIONS_WINDOW]))
