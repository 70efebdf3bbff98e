"""Reading the audit log: filtering, keyset pages and chunked export.

The log grows to millions of events, so nothing here counts rows or skips with OFFSET: pages and
export chunks are found by id ("the 50 events before #1234"), which the primary key answers from
its index whatever the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from portal.accounts.roles import Role, roles_for
from portal.audit.models import AuditEvent

PAGE_SIZE = 50
EXPORT_CHUNK_SIZE = 2000
# The action suggestions come from this many of the newest events: a DISTINCT over the whole table
# would read every row.
RECENT_ACTIONS_WINDOW = 2000


AUDIT_READER_ROLES = frozenset({Role.AUDITOR, Role.OPERATOR})


def audit_log_readable_by(user: object) -> bool:
    """Auditors and platform operators read the whole log; nobody else reads any of it."""
    return bool(roles_for(user) & AUDIT_READER_ROLES)


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


@dataclass(frozen=True)
class _Position:
    """Where an event sits in the page order: by id, or (with a time filter) by time, then id."""

    id: int
    created_at: datetime | None = None


def _ordered_by_time(filters: AuditEventFilters) -> bool:
    # With a time filter the pages follow the time index: ordered by id, PostgreSQL would walk the
    # primary key from the newest event back to the time range, which is slow for old ranges.
    # Times follow ids (both are taken under the chain lock), so the order looks the same.
    return filters.since is not None or filters.until is not None


def _order(by_time: bool, *, newest_first: bool) -> list[str]:
    keys = ["created_at", "id"] if by_time else ["id"]
    return [f"-{key}" for key in keys] if newest_first else keys


def _older(position: _Position, *, inclusive: bool = False) -> Q:
    by_id = Q(id__lte=position.id) if inclusive else Q(id__lt=position.id)
    if position.created_at is None:
        return by_id
    # "created_at <= t" on its own is what lets the index scan start at the cursor.
    at = position.created_at
    return Q(created_at__lte=at) & (Q(created_at__lt=at) | by_id)


def _newer(position: _Position, *, inclusive: bool = False) -> Q:
    by_id = Q(id__gte=position.id) if inclusive else Q(id__gt=position.id)
    if position.created_at is None:
        return by_id
    at = position.created_at
    return Q(created_at__gte=at) & (Q(created_at__gt=at) | by_id)


def _position_of(event_id: int, *, by_time: bool) -> _Position | None:
    if not by_time:
        return _Position(event_id)
    created_at = AuditEvent.objects.filter(id=event_id).values_list("created_at", flat=True).first()
    return None if created_at is None else _Position(event_id, created_at)


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
    by_time = _ordered_by_time(filters)
    cursor = before if before is not None else after
    position = None if cursor is None else _position_of(cursor, by_time=by_time)
    if cursor is not None and position is None:
        # Ordered by time, a page needs its cursor event; ours always exist (none is deleted).
        return AuditEventPage(events=[], next_before=None, previous_after=None)
    if after is not None and position is not None:
        # Walk towards newer events, then show them newest first like every other page.
        newer = events.filter(_newer(position)).order_by(*_order(by_time, newest_first=False))
        rows = list(newer[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size]
        rows.reverse()
        has_older = events.filter(_older(position, inclusive=True)).exists()
    else:
        here = events if position is None else events.filter(_older(position))
        has_newer = (
            position is not None and events.filter(_newer(position, inclusive=True)).exists()
        )
        rows = list(here.order_by(*_order(by_time, newest_first=True))[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
    newest_shown = rows[0].id if rows else None
    oldest_shown = rows[-1].id if rows else None
    if not rows and not by_time:
        # An empty page still links back: past its cursor, by the neighbouring id.
        newest_shown = before - 1 if before is not None else None
        oldest_shown = after + 1 if after is not None else None
    return AuditEventPage(
        events=rows,
        next_before=oldest_shown if has_older else None,
        previous_after=newest_shown if has_newer else None,
    )


def audit_event_export_rows(
    *, filters: AuditEventFilters, up_to_id: int, chunk_size: int = EXPORT_CHUNK_SIZE
) -> Iterator[AuditEvent]:
    """Every matching event with an id below ``up_to_id``, oldest first, read in chunks.

    No lower bound on the first chunk: stray rows with ids below 1 belong in the file too.
    """
    by_time = _ordered_by_time(filters)
    events = audit_event_list(filters=filters).filter(id__lt=up_to_id)
    events = events.order_by(*_order(by_time, newest_first=False))
    position: _Position | None = None
    while True:
        chunk = list((events if position is None else events.filter(_newer(position)))[:chunk_size])
        yield from chunk
        if len(chunk) < chunk_size:
            return
        last = chunk[-1]
        position = _Position(last.id, last.created_at if by_time else None)


def audit_action_choices() -> list[str]:
    """The actions seen among the newest events, to suggest in filters."""
    recent = AuditEvent.objects.order_by("-id").values_list("action", flat=True)
    return sorted(set(recent[:RECENT_ACTIONS_WINDOW]))
