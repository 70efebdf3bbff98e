#!/usr/bin/env python
"""How long verifying the audit chain takes on a log of a million events.

Builds a valid chain of N events quickly (hashes computed in Python with the portal's own
``event_hash``, rows loaded with PostgreSQL COPY) in a throwaway database, then times
``verify_chain`` over it, as ``manage.py audit_verify`` and the Celery task run it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python bench/audit_verify_1m.py
    DATABASE_URL=... python bench/audit_verify_1m.py --events 100000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from _benchdb import add_database_arguments, throwaway_database

ACTIONS = (
    "accounts.login",
    "accounts.logout",
    "access.request_submitted",
    "access.granted",
    "access.link_issued",
    "access.downloaded",
    "datasets.release_published",
    "ethics.vote_cast",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events in the chain (default 1,000,000)"
    )
    parser.add_argument(
        "--chunk-size", type=int, default=5000, help="verify_chain's chunk size (default 5000)"
    )
    add_database_arguments(parser, "portal_bench")
    args = parser.parse_args()
    with throwaway_database(args.database, keep=args.keep):
        run(args.events, args.chunk_size)


def chain_rows(events: int) -> Iterator[tuple[Any, ...]]:
    """A valid chain of plausible events, hashed exactly as audit_record hashes them."""
    from portal.audit.chain import event_hash, normalise_details
    from portal.audit.models import GENESIS_HASH

    start = datetime(2026, 4, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    for event_id in range(1, events + 1):
        user = event_id % 997
        row = {
            "event_id": event_id,
            "created_at": start + timedelta(milliseconds=250 * event_id),
            "actor_id": user or None,
            "actor_email": f"user{user}@hospital{user % 13}.example.jp" if user else "",
            "ip": f"192.0.2.{event_id % 250 + 1}" if event_id % 5 else None,
            "action": ACTIONS[event_id % len(ACTIONS)],
            "target_type": "access.grant" if event_id % 3 else "",
            "target_id": str(event_id // 3) if event_id % 3 else "",
            "target_repr": f"利用許可 #{event_id // 3}" if event_id % 3 else "",
            "details": normalise_details(
                {"dataset": "jsp-wsi-2026", "files": event_id % 40, "note": "病理画像"}
            ),
            "request_id": f"{event_id:032x}",
        }
        digest = event_hash(prev_hash=prev, **row)
        yield (
            event_id,
            row["created_at"],
            row["actor_id"],
            row["actor_email"],
            row["ip"],
            row["action"],
            row["target_type"],
            row["target_id"],
            row["target_repr"],
            json.dumps(row["details"], ensure_ascii=False),
            row["request_id"],
            prev,
            digest,
        )
        prev = digest


def run(events: int, chunk_size: int) -> None:
    from django.db import connection, transaction
    from psycopg.copy import QueuedLibpqWriter

    from portal.audit.models import EVENT_FIELDS as COLUMNS
    from portal.audit.verify import verify_chain

    started = time.perf_counter()
    last_id, last_hash = 0, ""
    with transaction.atomic(), connection.cursor() as cursor:
        # Secondary indexes are built once after the load rather than row by row during it; the
        # primary key and the unique hash stay, as they back constraints.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'audit_auditevent'::regclass)"
        )
        secondary = cursor.fetchall()
        for name, _definition in secondary:
            cursor.execute(f'DROP INDEX "{name}"')
        copy_sql = f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN"
        # The queued writer sends to the server from a second thread while this one hashes.
        writer = QueuedLibpqWriter(cursor.cursor)
        with cursor.cursor.copy(copy_sql, writer=writer) as copy:
            for row in chain_rows(events):
                copy.write_row(row)
                last_id, last_hash = row[0], row[-1]
        for _name, definition in secondary:
            cursor.execute(definition)
        cursor.execute(
            "INSERT INTO audit_auditchainhead (id, last_event_id, last_hash, event_count) "
            "VALUES (1, %s, %s, %s)",
            [last_id or None, last_hash or "0" * 64, events],
        )
    build_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    print(f"built a chain of {events:,} events in {build_seconds:.1f} s (hash + COPY)")

    started = time.perf_counter()
    report = verify_chain(chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    if not report.ok or report.checked != events:
        raise SystemExit(f"the benchmark chain did not verify: {report}")
    print(
        f"verify_chain:  {report.checked:,} events in {seconds:.1f} s = {report.checked / seconds:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
