"""The matching rule: anchored exam-date clusters, two societies or more, keyset pages.

These tests run the same selector on SQLite and on PostgreSQL (DATABASE_URL): the answers are
asserted exactly, and a randomised comparison against a plain-Python reading of the rule makes sure
both databases give the same answer as the rule.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from portal.linkage.models import LinkageRecord
from portal.linkage.selectors import (
    Holding,
    decode_cursor,
    encode_cursor,
    linkage_match,
    linkage_match_all,
)
from tests.factories import SocietyFactory
from tests.factories.datasets import DatasetFactory, make_release

pytestmark = pytest.mark.django_db

D = date(2026, 4, 1)
SUBJECT_A = "a" * 32
SUBJECT_B = "b" * 32
SUBJECT_C = "c" * 32


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    """Three societies, each with one dataset and one (empty) release to hang index rows on."""
    out = {}
    for key, modality in (("path", "pathology_wsi"), ("endo", "endoscopy"), ("rad", "ct")):
        society = SocietyFactory(slug=f"soc-{key}")
        dataset = DatasetFactory(society=society, modality=modality)
        release = make_release(dataset, [], store=False)
        out[key] = (society, dataset, release, modality)
    return out


def record(world, key, subject, day, images=1, modality=None):  # type: ignore[no-untyped-def]
    society, dataset, release, default_modality = world[key]
    return LinkageRecord.objects.create(
        society=society, dataset=dataset, release=release, subject_pseudonym=subject,
        study_date=day, modality=modality or default_modality, image_count=images,
    )


def societies(world, *keys):  # type: ignore[no-untyped-def]
    return [world[key][0] for key in keys]


def summary(matches):  # type: ignore[no-untyped-def]
    return [(m.subject_pseudonym, m.exam_date, m.last_date, len(m.holdings)) for m in matches]


def test_same_day_in_two_societies_matches_with_tolerance_zero(world):
    record(world, "path", SUBJECT_A, D, images=3)
    record(world, "endo", SUBJECT_A, D, images=5)

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D, date_to=D,
                         tolerance_days=0)

    assert page.next_after is None
    assert summary(page.matches) == [(SUBJECT_A, D, D, 2)]
    path, endo = world["path"][0], world["endo"][0]
    assert page.matches[0].holdings == [
        Holding(min(path.pk, endo.pk), D, "pathology_wsi" if path.pk < endo.pk else "endoscopy",
                3 if path.pk < endo.pk else 5),
        Holding(max(path.pk, endo.pk), D, "endoscopy" if path.pk < endo.pk else "pathology_wsi",
                5 if path.pk < endo.pk else 3),
    ]
    assert page.matches[0].image_count == 8


def test_tolerance_zero_next_day_does_not_match(world):
    record(world, "path", SUBJECT_A, D)
    record(world, "endo", SUBJECT_A, D + timedelta(days=1))

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=0)

    assert page.matches == []


def test_exactly_at_tolerance_matches(world):
    record(world, "path", SUBJECT_A, D)
    record(world, "endo", SUBJECT_A, D + timedelta(days=7))

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=7)

    assert summary(page.matches) == [(SUBJECT_A, D, D + timedelta(days=7), 2)]


def test_one_day_over_tolerance_does_not_match(world):
    record(world, "path", SUBJECT_A, D)
    record(world, "endo", SUBJECT_A, D + timedelta(days=8))

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=7)

    assert page.matches == []


def test_cluster_is_anchored_on_its_earliest_date_not_chained(world):
    # Day 0 (path), day 5 (path), day 10 (endo), tolerance 7: day 10 is 10 days after the anchor
    # (day 0), so it opens a new cluster, alone with endo: no match, although it is 5 days after
    # day 5 (a chained rule would have matched).
    record(world, "path", SUBJECT_A, D)
    record(world, "path", SUBJECT_A, D + timedelta(days=5))
    record(world, "endo", SUBJECT_A, D + timedelta(days=10))

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=7)

    assert page.matches == []


def test_second_cluster_anchored_on_first_date_beyond_the_first(world):
    record(world, "path", SUBJECT_A, D)
    record(world, "endo", SUBJECT_A, D + timedelta(days=3))
    record(world, "path", SUBJECT_A, D + timedelta(days=20))
    record(world, "rad", SUBJECT_A, D + timedelta(days=27))
    record(world, "endo", SUBJECT_A, D + timedelta(days=28))

    page = linkage_match(societies=societies(world, "path", "endo", "rad"), date_from=D,
                         date_to=D + timedelta(days=60), tolerance_days=7)

    assert summary(page.matches) == [
        (SUBJECT_A, D, D + timedelta(days=3), 2),
        (SUBJECT_A, D + timedelta(days=20), D + timedelta(days=27), 2),
    ]


def test_one_society_alone_never_matches_even_with_many_records(world):
    for offset in range(5):
        record(world, "path", SUBJECT_A, D + timedelta(days=offset), modality="pathology_wsi")
        record(world, "path", SUBJECT_A, D + timedelta(days=offset), modality="ct")

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=30)

    assert page.matches == []


def test_only_chosen_societies_and_dates_count(world):
    record(world, "path", SUBJECT_A, D)
    record(world, "rad", SUBJECT_A, D)  # not chosen
    record(world, "path", SUBJECT_B, D)
    record(world, "endo", SUBJECT_B, D - timedelta(days=1))  # before the range

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=5)

    assert page.matches == []


def test_range_start_anchors_the_first_cluster(world):
    # Outside the range records are ignored, so a cluster may start at the first date inside it.
    record(world, "path", SUBJECT_A, D + timedelta(days=2))
    record(world, "endo", SUBJECT_A, D + timedelta(days=9))

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D + timedelta(days=2),
                         date_to=D + timedelta(days=9), tolerance_days=7)

    assert summary(page.matches) == [(SUBJECT_A, D + timedelta(days=2), D + timedelta(days=9), 2)]


def test_keyset_pages_walk_every_match_once_in_order(world):
    subjects = [f"{n:032x}" for n in range(1, 8)]
    for subject in subjects:
        record(world, "path", subject, D)
        record(world, "endo", subject, D)
        record(world, "path", subject, D + timedelta(days=40))
        record(world, "rad", subject, D + timedelta(days=41))
    chosen = societies(world, "path", "endo", "rad")
    expected = [(s, day) for s in subjects for day in (D, D + timedelta(days=40))]

    seen, after, pages = [], None, 0
    while True:
        page = linkage_match(societies=chosen, date_from=D, date_to=D + timedelta(days=90),
                             tolerance_days=3, after=after, limit=3)
        pages += 1
        seen += [m.cursor for m in page.matches]
        if page.next_after is None:
            break
        assert len(page.matches) == 3
        assert page.next_after == page.matches[-1].cursor
        after = page.next_after

    assert seen == expected
    assert pages == 5  # 14 matches: 3+3+3+3+2
    everything = linkage_match_all(societies=chosen, date_from=D, date_to=D + timedelta(days=90),
                                   tolerance_days=3, batch_size=2)
    assert [m.cursor for m in everything] == expected


def test_page_boundary_inside_one_subjects_clusters(world):
    record(world, "path", SUBJECT_A, D)
    record(world, "endo", SUBJECT_A, D)
    record(world, "path", SUBJECT_A, D + timedelta(days=10))
    record(world, "endo", SUBJECT_A, D + timedelta(days=10))
    chosen = societies(world, "path", "endo")

    first = linkage_match(societies=chosen, date_from=D, date_to=D + timedelta(days=20),
                          tolerance_days=0, limit=1)
    second = linkage_match(societies=chosen, date_from=D, date_to=D + timedelta(days=20),
                           tolerance_days=0, limit=1, after=first.next_after)

    assert [m.cursor for m in first.matches] == [(SUBJECT_A, D)]
    assert first.next_after == (SUBJECT_A, D)
    assert [m.cursor for m in second.matches] == [(SUBJECT_A, D + timedelta(days=10))]
    assert second.next_after is None


def test_subjects_without_a_match_do_not_end_the_walk_early(world):
    # Many candidate subjects (two societies in range) whose dates lie apart, then one match:
    # batches that yield nothing must not stop the search.
    for n in range(1, 10):
        subject = f"{n:032x}"
        record(world, "path", subject, D)
        record(world, "endo", subject, D + timedelta(days=20))
    record(world, "path", "f" * 32, D)
    record(world, "endo", "f" * 32, D)

    page = linkage_match(societies=societies(world, "path", "endo"), date_from=D,
                         date_to=D + timedelta(days=30), tolerance_days=1, limit=2)

    assert [m.cursor for m in page.matches] == [("f" * 32, D)]
    assert page.next_after is None


@pytest.mark.parametrize("bad", [
    {"societies_keys": ("path",)},
    {"tolerance_days": 31},
    {"tolerance_days": -1},
    {"date_to": D - timedelta(days=1)},
])
def test_bad_arguments_refused(world, bad):
    keys = bad.pop("societies_keys", ("path", "endo"))
    arguments = {"date_from": D, "date_to": D, "tolerance_days": 0} | bad
    with pytest.raises(ValueError):
        linkage_match(societies=societies(world, *keys), **arguments)


def test_cursor_round_trip():
    assert decode_cursor(encode_cursor((SUBJECT_A, D))) == (SUBJECT_A, D)
    assert encode_cursor(None) == ""
    assert decode_cursor("") is None
    with pytest.raises(ValueError):
        decode_cursor("nonsense")


def reference(rows, chosen_ids, date_from, date_to, tolerance):  # type: ignore[no-untyped-def]
    """The rule read literally, in plain Python, over (subject, date, society, modality, images)."""
    kept = sorted(
        (s, d, soc, mod, n) for s, d, soc, mod, n in rows
        if soc in chosen_ids and date_from <= d <= date_to
    )
    merged: dict = {}
    for s, d, soc, mod, n in kept:
        merged[(s, d, soc, mod)] = merged.get((s, d, soc, mod), 0) + n
    out = []
    by_subject: dict = {}
    for (s, d, soc, mod), n in sorted(merged.items()):
        by_subject.setdefault(s, []).append((d, soc, mod, n))
    for s in sorted(by_subject):
        anchor, cluster = None, []
        for d, soc, mod, n in by_subject[s] + [(None, None, None, None)]:
            if d is None or anchor is None or (d - anchor).days > tolerance:
                if cluster and len({c[1] for c in cluster}) >= 2:
                    out.append((s, anchor, cluster[-1][0], tuple(cluster)))
                anchor, cluster = d, []
            if d is not None:
                cluster.append((d, soc, mod, n))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomised_against_the_rule_read_literally(world, seed):
    rng = random.Random(seed)
    keys = ("path", "endo", "rad")
    modalities = ("pathology_wsi", "endoscopy", "ct", "mr")
    rows = set()
    for _ in range(400):
        subject = f"{rng.randrange(40):032x}"
        key = rng.choice(keys)
        rows.add((subject, D + timedelta(days=rng.randrange(120)), key, rng.choice(modalities)))
    raw = []
    for subject, day, key, modality in sorted(rows):
        images = rng.randrange(1, 9)
        record(world, key, subject, day, images=images, modality=modality)
        raw.append((subject, day, world[key][0].pk, modality, images))
    chosen_keys = ("path", "rad") if seed == 2 else keys
    chosen = societies(world, *chosen_keys)
    date_from, date_to = D + timedelta(days=10), D + timedelta(days=100)
    tolerance = {1: 0, 2: 5, 3: 14}[seed]

    expected = reference(raw, {s.pk for s in chosen}, date_from, date_to, tolerance)
    got, after = [], None
    while True:
        page = linkage_match(societies=chosen, date_from=date_from, date_to=date_to,
                             tolerance_days=tolerance, after=after, limit=7)
        got += page.matches
        if page.next_after is None:
            break
        after = page.next_after

    assert expected  # the data do produce matches
    assert [
        (m.subject_pseudonym, m.exam_date, m.last_date,
         tuple((h.study_date, h.society_id, h.modality, h.image_count) for h in m.holdings))
        for m in got
    ] == expected
