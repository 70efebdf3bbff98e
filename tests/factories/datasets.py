"""Factories for datasets, releases, opt-out notices and grants, written straight to the tables.

For tests of what reads them (catalogue, linkage, opt-out propagation). The datasets and optout
services have their own tests that go through the services.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import factory
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from factory.django import DjangoModelFactory

from portal.access.models import Grant
from portal.datasets.models import Dataset, DatasetRelease, DatasetStatus, ReleaseFile
from portal.optout.models import OptOutNotice, OptOutNoticeVersion
from tests.factories import SocietyFactory
from tests.factories.ethics import permitted_protocol


class DatasetFactory(DjangoModelFactory):
    class Meta:
        model = Dataset

    society = factory.SubFactory(SocietyFactory)
    slug = factory.Sequence(lambda n: f"dataset-{n}")
    title_ja = factory.Sequence(lambda n: f"テストデータセット{n}")
    title_en = factory.Sequence(lambda n: f"Test dataset {n}")
    description_ja = "合成データによる試験用データセット"
    modality = "endoscopy"
    body_part = "胃"
    disease_areas = "胃がん"
    annotation_granularity = "diagnosis"
    annotation_format = "JSON"
    legal_status = "pseudonymised"
    access_tier = "controlled"
    status = DatasetStatus.DRAFT
    # What the database requires of each state (``dataset_published_has_published_at``,
    # ``dataset_withdrawn_has_withdrawal``); a test may still pass its own.
    published_at = factory.LazyAttribute(lambda o: timezone.now() if o.status == DatasetStatus.PUBLISHED else None)
    withdrawn_at = factory.LazyAttribute(lambda o: timezone.now() if o.status == DatasetStatus.WITHDRAWN else None)
    withdrawal_reason = factory.LazyAttribute(
        lambda o: "試験のため取下げ" if o.status == DatasetStatus.WITHDRAWN else ""
    )
    protocol = factory.LazyFunction(permitted_protocol)


@dataclass(frozen=True)
class FileSpec:
    """One file of a test release: its subject, study date and bytes."""

    subject: str
    study_date: date | None = None
    content: bytes = b""
    modality: str = ""
    path: str = ""


def make_release(dataset: Dataset, files: list[FileSpec], *, version: int | None = None,
                 store: bool = True, source: str = DatasetRelease.Source.IMPORT,
                 source_reference: str = "") -> DatasetRelease:
    """A release with these files, stored in the default storage (unless ``store`` is false)."""
    version = version or (dataset.releases.count() + 1)
    release = DatasetRelease.objects.create(
        dataset=dataset, version=version, source=source, source_reference=source_reference,
        manifest_sha256="0" * 64,
        case_count=len({f.subject for f in files}), image_count=len(files), file_count=len(files),
        total_bytes=sum(len(f.content) for f in files),
        earliest_study_date=min((f.study_date for f in files if f.study_date), default=None),
        latest_study_date=max((f.study_date for f in files if f.study_date), default=None),
    )
    rows = []
    for index, spec in enumerate(files):
        content = spec.content or f"{dataset.slug}-{version}-{index}".encode()
        path = spec.path or f"files/{index:05d}.png"
        key = f"{release.storage_prefix}{path}"
        if store:
            key = default_storage.save(key, ContentFile(content))
        rows.append(ReleaseFile(
            release=release, path=path, storage_key=key, size=len(content),
            sha256=hashlib.sha256(content).hexdigest(), media_type="image/png",
            subject_pseudonym=spec.subject, study_date=spec.study_date,
            modality=spec.modality or dataset.modality,
        ))
    ReleaseFile.objects.bulk_create(rows)
    return release


def published_notice(dataset: Dataset, **overrides) -> OptOutNotice:
    """A published opt-out notice covering ``dataset``."""
    notice = OptOutNotice.objects.create(
        society=dataset.society, protocol=dataset.protocol,
        reference=f"OPT-T{OptOutNotice.objects.count() + 1:05d}",
        status=OptOutNotice.Status.PUBLISHED, first_published_at=timezone.now(),
    )
    fields = {
        f"{name}_ja": f"{name} の記載" for name, _required in OptOutNoticeVersion.ITEMS
    } | {"title_ja": f"{dataset.title_ja}に関するお知らせ", "start_date": timezone.localdate()}
    version = OptOutNoticeVersion.objects.create(
        notice=notice, number=1, status=OptOutNoticeVersion.Status.PUBLISHED,
        published_at=timezone.now(), **(fields | overrides),
    )
    notice.current_version = version
    notice.save(update_fields=["current_version"])
    notice.datasets.add(dataset)
    return notice


def active_grant(users, releases, *, days: int = 90) -> Grant:
    grant = Grant.objects.create(
        reference=f"G-T{Grant.objects.count() + 1:05d}",
        expires_at=timezone.now() + timedelta(days=days),
    )
    grant.users.set(users)
    grant.releases.set(releases)
    return grant
