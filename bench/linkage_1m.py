#!/usr/bin/env python
"""How fast matching (名寄せ) runs over 1,000,000 index records in each of three societies.

Builds, in a throwaway PostgreSQL database, the linkage index (``linkage_linkagerecord``) of three
societies (pathology, endoscopy, radiology) with N records each (default 1,000,000), loaded with
COPY: about four records per subject, 30% of each society's subjects shared by all three societies
(their records in each society lie within a few days of the same two exam episodes), the rest
seen by one society only, over three years (2023-2025). Then it times, over the year 2025, all
three societies, a tolerance of 7 days:

* ``linkage_match`` (what the page and the API run): the first page of 100 matches, and a full
  walk through every page of 100 (keyset cursor) until the last;
* a plain SQL self-join written by hand over the same table doing the same matching in one
  statement: every (subject, date) of a chosen society with a record of another chosen society
  within the tolerance after it, all rows fetched;

and prints the times and the ratio (walk / join). ``--explain`` prints PostgreSQL's plans.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python bench/linkage_1m.py
    DATABASE_URL=... python bench/linkage_1m.py --records 200000 --explain
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from _benchdb import add_database_arguments, throwaway_database

SOCIETIES = (
    ("jsp-bench", "日本病理学会（ベンチ）", ("pathology_wsi",)),
    ("jges-bench", "日本消化器内視鏡学会（ベンチ）", ("endoscopy",)),
    ("jrs-bench", "日本医学放射線学会（ベンチ）", ("ct", "mr", "xray")),
)
RECORDS_PER_SUBJECT = 4
SHARED_FRACTION = 0.30
FIRST_DAY = date(2023, 1, 1)
DAYS = 3 * 365
YEAR_FROM, YEAR_TO = date(2025, 1, 1), date(2025, 12, 31)
TOLERANCE = 7
PAGE = 100


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="records per society (default 1,000,000)"
    )
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    add_database_arguments(parser, "portal_bench_linkage")
    args = parser.parse_args()
    # Settings demand a pseudonym key with DEBUG off; the benchmark computes no pseudonyms with it.
    os.environ.setdefault("PORTAL_PSEUDONYM_KEY", "bench-only-pseudonym-key-not-for-production")
    with throwaway_database(args.database, keep=args.keep):
        run(args.records, args.explain)


def pseudonym(n: int) -> str:
    return hashlib.md5(f"bench-subject-{n}".encode(), usedforsecurity=False).hexdigest()


def index_rows(records: int, refs: list[tuple[int, int, int]]) -> Iterator[tuple[Any, ...]]:
    """(society, dataset, release, pseudonym, study date, modality, images), per society."""
    rng = random.Random(20260401)
    subjects = max(1, records // RECORDS_PER_SUBJECT)
    shared = int(subjects * SHARED_FRACTION)
    # Shared subjects 0..shared-1 are the same people in every society, each with two episodes.
    episodes = [
        (rng.randrange(DAYS - 10), rng.randrange(DAYS - 10)) for _ in range(shared)
    ]
    next_subject = shared
    for (society_id, dataset_id, release_id), (_slug, _name, modalities) in zip(
        refs, SOCIETIES, strict=True
    ):
        written = 0
        for index in range(subjects):
            if index < shared:
                subject = index
                first, second = episodes[index]
                offsets = rng.sample(range(4), 2)
                days = {first + offsets[0], first + offsets[1], second + rng.randrange(4)}
                days.add(second + 4 + rng.randrange(3))
            else:
                subject = next_subject
                next_subject += 1
                days = set(rng.sample(range(DAYS), RECORDS_PER_SUBJECT))
            name = pseudonym(subject)
            for day in sorted(days):
                if written >= records:
                    break
                written += 1
                yield (
                    society_id, dataset_id, release_id, name,
                    FIRST_DAY + timedelta(days=day), rng.choice(modalities), rng.randrange(1, 40),
                )
        # Round the society up to exactly `records` with extra single-society subjects.
        while written < records:
            name = pseudonym(next_subject)
            next_subject += 1
            for day in sorted(rng.sample(range(DAYS), min(RECORDS_PER_SUBJECT, records - written))):
                written += 1
                yield (
                    society_id, dataset_id, release_id, name,
                    FIRST_DAY + timedelta(days=day), rng.choice(modalities), rng.randrange(1, 40),
                )


def make_owners() -> list[tuple[int, int, int]]:
    """A society, dataset and release per society for the index rows to belong to."""
    from portal.datasets.models import Dataset, DatasetRelease
    from portal.societies.models import Society
    from tests.factories.ethics import permitted_protocol

    protocol = permitted_protocol()
    refs = []
    for slug, name, modalities in SOCIETIES:
        society = Society.objects.create(slug=slug, name_ja=name, name_en=slug)
        dataset = Dataset.objects.create(
            society=society, slug=f"{slug}-data", title_ja=name, modality=modalities[0],
            protocol=protocol,
        )
        release = DatasetRelease.objects.create(
            dataset=dataset, version=1, source=DatasetRelease.Source.IMPORT, manifest_sha256="0" * 64
        )
        refs.append((society.pk, dataset.pk, release.pk))
    return refs


JOIN_SQL = """
    SELECT DISTINCT a.subject_pseudonym, a.study_date
    FROM linkage_linkagerecord a
    JOIN linkage_linkagerecord b
      ON b.subject_pseudonym = a.subject_pseudonym
     AND b.society_id <> a.society_id
     AND b.study_date >= a.study_date AND b.study_date <= a.study_date + %s
    WHERE a.society_id = ANY(%s) AND b.society_id = ANY(%s)
      AND a.study_date >= %s AND a.study_date <= %s AND b.study_date <= %s
    ORDER BY 1, 2
"""


def run(records: int, explain: bool) -> None:
    from django.db import connection, transaction

    from portal.linkage.selectors import _batch_sql, linkage_match

    started = time.perf_counter()
    table = "linkage_linkagerecord"
    columns = "society_id, dataset_id, release_id, subject_pseudonym, study_date, modality, image_count"
    with transaction.atomic():
        refs = make_owners()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
                [table, table],
            )
            secondary = cursor.fetchall()
            for name, _definition in secondary:
                cursor.execute(f'DROP INDEX "{name}"')
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in index_rows(records, refs):
                    copy.write_row(row)
    # After the commit: the deferred foreign-key checks of the load must have run first.
    with connection.cursor() as cursor:
        for _name, definition in secondary:
            cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(f"SELECT count(*) FROM {table}")
        total = cursor.fetchone()[0]
    print(f"built {total:,} records ({records:,} in each of 3 societies) in "
          f"{time.perf_counter() - started:.1f} s (COPY, indexes, VACUUM ANALYZE)")

    societies = [society_id for society_id, _d, _r in refs]
    query = {"societies": societies, "date_from": YEAR_FROM, "date_to": YEAR_TO,
             "tolerance_days": TOLERANCE}
    print(f"query: {YEAR_FROM} to {YEAR_TO}, 3 societies, tolerance {TOLERANCE} days, pages of {PAGE}")

    linkage_match(**query, limit=PAGE)  # warm the cache once, as a running server would be
    started = time.perf_counter()
    first = linkage_match(**query, limit=PAGE)
    first_seconds = time.perf_counter() - started
    print(f"linkage_match first page: {len(first.matches)} matches in {first_seconds * 1000:.1f} ms")

    started = time.perf_counter()
    matches, pages, after = 0, 0, None
    while True:
        page = linkage_match(**query, limit=PAGE, after=after)
        pages += 1
        matches += len(page.matches)
        if page.next_after is None:
            break
        after = page.next_after
    walk_seconds = time.perf_counter() - started
    print(f"linkage_match all pages: {matches:,} matches in {pages:,} pages in {walk_seconds:.2f} s")

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(JOIN_SQL, [TOLERANCE, societies, societies, YEAR_FROM, YEAR_TO, YEAR_TO])
        joined = cursor.fetchall()
    join_seconds = time.perf_counter() - started
    print(f"plain SQL join: {len(joined):,} (subject, date) rows in {join_seconds:.2f} s")
    print(f"ratio: all pages / plain join = {walk_seconds / join_seconds:.2f}; "
          f"first page / plain join = {first_seconds / join_seconds:.4f}")

    if explain:
        with connection.cursor() as cursor:
            params = ["", YEAR_FROM, YEAR_TO, *societies, PAGE + 1, YEAR_FROM, YEAR_TO, *societies]
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + _batch_sql(len(societies), inclusive=False),
                           params)
            print("plan of one page's batch:\n" + "\n".join(row[0] for row in cursor.fetchall()))
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + JOIN_SQL,
                           [TOLERANCE, societies, societies, YEAR_FROM, YEAR_TO, YEAR_TO])
            print("plan of the plain join:\n" + "\n".join(row[0] for row in cursor.fetchall()))


if __name__ == "__main__":
    main()
