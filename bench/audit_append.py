#!/usr/bin/env python
"""How fast the audit log takes events: audit_record against plain INSERTs of the same rows.

Each audit_record call runs in its own transaction, as a service's would: it locks the chain head,
hashes the event, inserts it and moves the head. The baseline inserts exactly the same rows (same
column values, one INSERT per row, each in its own transaction) into a scratch table of the same
shape and indexes but without the trigger and without the chain. The ratio is the chain's cost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python bench/audit_append.py --events 5000
"""

from __future__ import annotations

import argparse
import time

from _benchdb import add_database_arguments, throwaway_database


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000, help="events to append (default 5000)")
    add_database_arguments(parser, "portal_bench_append")
    args = parser.parse_args()
    with throwaway_database(args.database, keep=args.keep):
        run(args.events)


def run(events: int) -> None:
    from django.db import connection, transaction

    from portal.audit import context
    from portal.audit.models import EVENT_FIELDS as COLUMNS
    from portal.audit.services import audit_record
    from portal.audit.verify import verify_chain

    connection.ensure_connection()
    token = context.bind(context.RequestContext(ip="192.0.2.10", request_id="0" * 32))
    try:
        # Warm up (the head row, plans, the connection), then measure.
        for _ in range(20):
            audit_record(action="bench.warm_up", actor=None)
        first_id = audit_record(action="bench.warm_up", actor=None).id + 1

        started = time.perf_counter()
        for n in range(events):
            # audit_record's own atomic block is the transaction here (autocommit outside it).
            audit_record(
                action="bench.appended",
                actor=None,
                actor_email=f"user{n % 500}@hospital{n % 7}.example.jp",
                details={"n": n, "dataset": "病理画像 2026", "files": [n, n + 1]},
            )
        audit_seconds = time.perf_counter() - started
    finally:
        context.reset(token)

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain_event")
        # Same columns, defaults, constraints and indexes; LIKE copies no triggers.
        cursor.execute("CREATE TABLE bench_plain_event (LIKE audit_auditevent INCLUDING ALL)")
        cursor.execute(
            f"SELECT {', '.join(COLUMNS)} FROM audit_auditevent WHERE id >= %s ORDER BY id",
            [first_id],
        )
        rows = cursor.fetchall()
    insert = (
        f"INSERT INTO bench_plain_event ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    from psycopg.types.json import Jsonb

    rows = [(*row[:9], Jsonb(row[9]), *row[10:]) for row in rows]
    started = time.perf_counter()
    for row in rows:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(insert, row)
    plain_seconds = time.perf_counter() - started

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_plain_event")
        (plain_count,) = cursor.fetchone()
        cursor.execute("DROP TABLE bench_plain_event")
    report = verify_chain()
    if plain_count != events or not report.ok:
        raise SystemExit(f"bench went wrong: {plain_count} plain rows, chain {report}")

    audit_rate = events / audit_seconds
    plain_rate = events / plain_seconds
    print(f"events:            {events}")
    print(
        f"audit_record:      {audit_rate:10,.0f} events/s  ({audit_seconds * 1e6 / events:,.0f} µs each)"
    )
    print(
        f"plain INSERT:      {plain_rate:10,.0f} rows/s    ({plain_seconds * 1e6 / events:,.0f} µs each)"
    )
    print(
        f"ratio:             {plain_rate / audit_rate:10.2f}x  (plain INSERT rate / audit_record rate)"
    )
    print(f"chain after bench: {report.checked} events, intact")


if __name__ == "__main__":
    main()
