"""Matching (名寄せ): which societies hold records of the same pseudonymous subject, and when.

The rule, in one place
----------------------
Only records of the chosen societies whose study date lies in ``[date_from, date_to]`` take part.
A subject's remaining study dates are walked in ascending order and grouped greedily into *exam
date clusters* anchored on their earliest date: the first date opens a cluster; every following
date at most ``tolerance_days`` days after the cluster's anchor joins it; the first date beyond
that opens the next cluster. So every record of a cluster lies within ``tolerance_days`` of the
anchor and of every other record of the cluster, and the cluster's exam date is its anchor. With a
tolerance of 0 a cluster is one calendar day. A cluster is a *match* when records of at least two
different chosen societies fall into it.

Matches are listed by (pseudonym, exam date), a page at a time with a keyset cursor: the
``(pseudonym, exam date)`` of the last match shown. There is no OFFSET and no COUNT.

How it stays fast
-----------------
One SQL statement per batch of subjects does the heavy lifting on the database, on SQLite and
PostgreSQL alike: it walks the index ``linkage_subject_date`` (pseudonym, study date, society) in
pseudonym order from the cursor, keeps the subjects with records of two or more chosen societies
in the range (``MIN(society) <> MAX(society)``: no COUNT DISTINCT), stops after the batch
(``LIMIT``), and returns those subjects' records aggregated per date, society and modality. Only
these few rows reach Python, which applies the anchored-cluster rule above while streaming them in
order (a greedy rule whose next anchor depends on the previous cluster is a loop, not a set
operation). A page therefore costs about the records between two cursors, whatever the table size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import groupby

from django.db import connection

from portal.linkage.models import LinkageRecord

MAX_TOLERANCE_DAYS = 30
DEFAULT_PAGE_SIZE = 100
EXPORT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Holding:
    """What one society holds of a subject on one study date in one modality."""

    society_id: int
    study_date: date
    modality: str
    image_count: int


@dataclass
class Match:
    """One exam-date cluster of one subject, held by at least two of the chosen societies."""

    subject_pseudonym: str
    exam_date: date
    last_date: date
    holdings: list[Holding] = field(default_factory=list)

    @property
    def society_ids(self) -> list[int]:
        return sorted({holding.society_id for holding in self.holdings})

    @property
    def image_count(self) -> int:
        return sum(holding.image_count for holding in self.holdings)

    @property
    def cursor(self) -> tuple[str, date]:
        return (self.subject_pseudonym, self.exam_date)

    def holdings_of(self, society_id: int) -> list[Holding]:
        return [holding for holding in self.holdings if holding.society_id == society_id]


@dataclass(frozen=True)
class MatchPage:
    matches: list[Match]
    # The cursor of the next page (the last match shown), or None on the last page.
    next_after: tuple[str, date] | None


def encode_cursor(cursor: tuple[str, date] | None) -> str:
    if cursor is None:
        return ""
    return f"{cursor[0]}.{cursor[1].isoformat()}"


def decode_cursor(value: str) -> tuple[str, date] | None:
    """The cursor of ``encode_cursor``; ValueError when it is not one."""
    if not value:
        return None
    subject, _sep, day = value.rpartition(".")
    if not subject or len(subject) > 64:
        raise ValueError("bad cursor")
    return (subject, date.fromisoformat(day))


def _society_ids(societies: Iterable[object]) -> list[int]:
    ids = sorted({getattr(society, "pk", society) for society in societies})  # type: ignore[misc]
    return [int(pk) for pk in ids]


def _batch_sql(society_count: int, *, inclusive: bool) -> str:
    table = connection.ops.quote_name(LinkageRecord._meta.db_table)
    marks = ", ".join(["%s"] * society_count)
    start = ">=" if inclusive else ">"
    # Only the quoted table name, placeholders and a fixed operator are interpolated.
    return f"""
        WITH candidates AS (
            SELECT subject_pseudonym
            FROM {table}
            WHERE subject_pseudonym {start} %s
              AND study_date >= %s AND study_date <= %s
              AND society_id IN ({marks})
            GROUP BY subject_pseudonym
            HAVING MIN(society_id) <> MAX(society_id)
            ORDER BY subject_pseudonym
            LIMIT %s
        )
        SELECT r.subject_pseudonym, r.study_date, r.society_id, r.modality, SUM(r.image_count)
        FROM {table} r
        JOIN candidates c ON c.subject_pseudonym = r.subject_pseudonym
        WHERE r.study_date >= %s AND r.study_date <= %s
          AND r.society_id IN ({marks})
        GROUP BY r.subject_pseudonym, r.study_date, r.society_id, r.modality
        ORDER BY r.subject_pseudonym, r.study_date, r.society_id, r.modality
    """  # noqa: S608


def _as_date(value: object) -> date:
    # SQLite hands dates back as text from a raw query.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def clusters_of(
    subject: str, rows: Iterable[tuple[date, int, str, int]], tolerance_days: int
) -> Iterator[Match]:
    """The anchored exam-date clusters of one subject's rows (sorted by date), matches only."""
    tolerance = timedelta(days=tolerance_days)
    current: Match | None = None
    for study_date, society_id, modality, images in rows:
        if current is None or study_date > current.exam_date + tolerance:
            if current is not None and len(current.society_ids) >= 2:
                yield current
            current = Match(subject_pseudonym=subject, exam_date=study_date, last_date=study_date)
        current.last_date = study_date
        current.holdings.append(Holding(society_id, study_date, modality, int(images or 0)))
    if current is not None and len(current.society_ids) >= 2:
        yield current


def _iter_matches(
    society_ids: Sequence[int],
    date_from: date,
    date_to: date,
    tolerance_days: int,
    after: tuple[str, date] | None,
    batch_size: int,
) -> Iterator[Match]:
    start_subject, inclusive = (after[0], True) if after else ("", False)
    while True:
        sql = _batch_sql(len(society_ids), inclusive=inclusive)
        params = [start_subject, date_from, date_to, *society_ids, batch_size,
                  date_from, date_to, *society_ids]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        subjects = 0
        for subject, subject_rows in groupby(rows, key=lambda row: row[0]):
            subjects += 1
            start_subject = subject
            records = ((_as_date(r[1]), int(r[2]), r[3], r[4]) for r in subject_rows)
            for match in clusters_of(subject, records, tolerance_days):
                if after is None or match.cursor > after:
                    yield match
        if subjects < batch_size:
            return
        inclusive = False


def _check(society_ids: Sequence[int], date_from: date, date_to: date, tolerance_days: int) -> None:
    if len(society_ids) < 2:
        raise ValueError("matching needs at least two societies")
    if date_from > date_to:
        raise ValueError("date_from is after date_to")
    if not 0 <= tolerance_days <= MAX_TOLERANCE_DAYS:
        raise ValueError(f"tolerance_days must lie between 0 and {MAX_TOLERANCE_DAYS}")


def linkage_match(
    *,
    societies: Iterable[object],
    date_from: date,
    date_to: date,
    tolerance_days: int,
    after: tuple[str, date] | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> MatchPage:
    """One page of matches, in (pseudonym, exam date) order, after the cursor ``after``.

    ``societies``: Society objects or primary keys (at least two). Permission is not checked here:
    callers go through ``portal.linkage.services.linkage_query``, which checks and audits.
    """
    society_ids = _society_ids(societies)
    _check(society_ids, date_from, date_to, tolerance_days)
    if limit < 1:
        raise ValueError("limit must be positive")
    matches: list[Match] = []
    # A subject yields one match or more (or none, when its societies' dates lie apart): batches
    # of limit + 1 subjects usually fill a page, with one more match to tell that a next exists.
    for match in _iter_matches(society_ids, date_from, date_to, tolerance_days, after, limit + 1):
        matches.append(match)
        if len(matches) > limit:
            break
    if len(matches) > limit:
        matches = matches[:limit]
        return MatchPage(matches=matches, next_after=matches[-1].cursor)
    return MatchPage(matches=matches, next_after=None)


def linkage_match_all(
    *,
    societies: Iterable[object],
    date_from: date,
    date_to: date,
    tolerance_days: int,
    batch_size: int = EXPORT_BATCH_SIZE,
) -> Iterator[Match]:
    """Every match, streamed batch by batch (the CSV export); memory stays bounded."""
    society_ids = _society_ids(societies)
    _check(society_ids, date_from, date_to, tolerance_days)
    yield from _iter_matches(society_ids, date_from, date_to, tolerance_days, None, batch_size)
