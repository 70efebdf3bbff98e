"""The linkage index follows each dataset's newest available release, without opted-out subjects."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.linkage.models import LinkageRecord
from portal.linkage.services import linkage_forget_subject, linkage_index_release
from tests.factories import SocietyFactory
from tests.factories.datasets import DatasetFactory, FileSpec, make_release

pytestmark = pytest.mark.django_db

S1, S2, S3 = "1" * 32, "2" * 32, "3" * 32
D1, D2 = date(2025, 6, 1), date(2025, 6, 9)


def rows(dataset=None):  # type: ignore[no-untyped-def]
    records = LinkageRecord.objects.all()
    if dataset is not None:
        records = records.filter(dataset=dataset)
    return sorted(
        (r.release.version, r.subject_pseudonym, r.study_date, r.modality, r.image_count, r.society_id)
        for r in records.select_related("release")
    )


def withdraw(release):  # type: ignore[no-untyped-def]
    release.status = DatasetRelease.Status.WITHDRAWN
    release.withdrawal_reason = "試験のため取下げ"
    release.withdrawn_at = timezone.now()
    release.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])


@pytest.fixture
def dataset(db):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=SocietyFactory(slug="jges"), modality="endoscopy")


def test_build_indexes_images_per_subject_date_and_modality(dataset):
    release = make_release(dataset, [
        FileSpec(S1, D1), FileSpec(S1, D1), FileSpec(S1, D1, modality="ct"),
        FileSpec(S1, D2), FileSpec(S2, D1),
        FileSpec(S3, None),  # no study date: not indexed
    ], store=False)

    written = linkage_index_release(release=release)

    society = dataset.society_id
    assert written == 4
    assert rows() == [
        (1, S1, D1, "ct", 1, society),
        (1, S1, D1, "endoscopy", 2, society),
        (1, S1, D2, "endoscopy", 1, society),
        (1, S2, D1, "endoscopy", 1, society),
    ]


def test_annotation_files_not_indexed(dataset):
    release = make_release(dataset, [FileSpec(S1, D1)], store=False)
    ReleaseFile.objects.create(
        release=release, path="s1/label.json", storage_key="x", size=1, sha256="0" * 64,
        media_type="application/json", subject_pseudonym=S1, study_date=D1, modality="endoscopy",
        is_annotation=True,
    )

    linkage_index_release(release=release)

    assert rows() == [(1, S1, D1, "endoscopy", 1, dataset.society_id)]


def test_new_release_replaces_the_previous_rows(dataset):
    first = make_release(dataset, [FileSpec(S1, D1), FileSpec(S2, D1)], store=False)
    linkage_index_release(release=first)
    second = make_release(dataset, [FileSpec(S2, D2), FileSpec(S3, D2)], store=False)

    linkage_index_release(release=second)

    society = dataset.society_id
    assert rows() == [(2, S2, D2, "endoscopy", 1, society), (2, S3, D2, "endoscopy", 1, society)]


def test_withdrawing_the_newest_falls_back_to_the_previous_available(dataset):
    first = make_release(dataset, [FileSpec(S1, D1)], store=False)
    second = make_release(dataset, [FileSpec(S2, D2)], store=False)
    linkage_index_release(release=second)

    withdraw(second)
    linkage_index_release(release=second)

    assert rows() == [(1, S1, D1, "endoscopy", 1, dataset.society_id)]
    withdraw(first)
    assert linkage_index_release(release=first) == 0
    assert rows() == []


def test_other_datasets_rows_untouched(dataset):
    other = DatasetFactory(society=SocietyFactory(slug="jrs"), modality="ct")
    linkage_index_release(release=make_release(other, [FileSpec(S1, D1)], store=False))

    linkage_index_release(release=make_release(dataset, [FileSpec(S1, D1)], store=False))
    withdraw(dataset.releases.get())
    linkage_index_release(release=dataset.releases.get())

    assert rows() == [(1, S1, D1, "ct", 1, other.society_id)]


def test_opted_out_subjects_not_indexed(dataset, monkeypatch):
    calls = []

    def excluded(*, dataset):  # type: ignore[no-untyped-def]
        calls.append(dataset.pk)
        return {S2}

    monkeypatch.setattr("portal.optout.selectors.excluded_pseudonyms", excluded)
    release = make_release(dataset, [FileSpec(S1, D1), FileSpec(S2, D1)], store=False)

    linkage_index_release(release=release)

    assert calls == [dataset.pk]
    assert rows() == [(1, S1, D1, "endoscopy", 1, dataset.society_id)]


def test_forget_subject_removes_every_row_or_those_of_given_datasets(dataset):
    other = DatasetFactory(society=SocietyFactory(slug="jrs"), modality="ct")
    linkage_index_release(release=make_release(dataset, [FileSpec(S1, D1), FileSpec(S2, D1)], store=False))
    linkage_index_release(release=make_release(other, [FileSpec(S1, D1), FileSpec(S2, D1)], store=False))

    assert linkage_forget_subject(pseudonym=S1, datasets=[other]) == 1
    assert sorted((r[1], r[5]) for r in rows()) == [
        (S1, dataset.society_id), (S2, dataset.society_id), (S2, other.society_id)
    ]
    assert linkage_forget_subject(pseudonym=S2) == 2
    assert [(r[1], r[5]) for r in rows()] == [(S1, dataset.society_id)]


def test_large_release_indexed_in_batches(dataset, monkeypatch):
    monkeypatch.setattr("portal.linkage.services.INDEX_BATCH_SIZE", 7)
    files = [FileSpec(f"{n:032x}", D1) for n in range(30)]
    release = make_release(dataset, files, store=False)

    assert linkage_index_release(release=release) == 30
    assert LinkageRecord.objects.count() == 30
