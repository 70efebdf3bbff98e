"""Datasets: create, edit, check and publish, withdraw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.datasets.models import (
    AccessTier,
    AnnotationGranularity,
    Dataset,
    DatasetStatus,
    LegalStatus,
)
from portal.datasets.selectors import may_manage_society
from portal.datasets.services.common import _locked, _require_manager
from portal.datasets.workflow import transition
from portal.ethics.models import Protocol
from portal.ethics.selectors import protocol_data_flow
from portal.lib import hooks
from portal.societies.models import Society

# Fields a society sets on a dataset; counts are declared while there is no release.
DATASET_FIELDS = (
    "slug", "title_ja", "title_en", "description_ja", "description_en", "modality", "body_part",
    "disease_areas", "annotation_granularity", "annotation_format", "case_count", "image_count",
    "collection_start", "collection_end", "legal_status", "protocol", "access_tier",
)


# Fixed once the dataset has been published (they are what the public notice and grants rest on).
FIXED_ONCE_PUBLISHED = ("society", "protocol", "slug")


# Addresses under /datasets/ that a dataset's short name would hide.
RESERVED_SLUGS = frozenset({"statistics"})


def _validate_dataset_fields(dataset: Dataset) -> None:
    errors: dict[str, list[str]] = {}
    if not dataset.slug:
        errors.setdefault("slug", []).append(_("Give the dataset a short name for its address."))
    elif slugify(dataset.slug) != dataset.slug:
        errors.setdefault("slug", []).append(
            _("Use only lower-case letters, digits and hyphens in the short name.")
        )
    if not (dataset.title_ja or "").strip():
        errors.setdefault("title_ja", []).append(_("Give the dataset a Japanese title."))
    if dataset.modality not in Modality.values:
        errors.setdefault("modality", []).append(_("Choose a modality from the list."))
    if dataset.annotation_granularity not in AnnotationGranularity.values:
        errors.setdefault("annotation_granularity", []).append(_("Choose an annotation granularity."))
    if dataset.legal_status not in LegalStatus.values:
        errors.setdefault("legal_status", []).append(_("Choose the legal status of the data."))
    if dataset.access_tier not in AccessTier.values:
        errors.setdefault("access_tier", []).append(_("Choose an access tier."))
    for name in ("case_count", "image_count"):
        value = getattr(dataset, name)
        if not isinstance(value, int) or value < 0:
            errors.setdefault(name, []).append(_("Enter a number of zero or more."))
    if dataset.collection_start and dataset.collection_end and dataset.collection_start > dataset.collection_end:
        errors.setdefault("collection_end", []).append(
            _("The collection period must end on or after the day it starts.")
        )
    if dataset.protocol_id is None or not Protocol.objects.filter(pk=dataset.protocol_id).exists():
        errors.setdefault("protocol", []).append(_("Choose the research protocol the dataset rests on."))
    if dataset.slug in RESERVED_SLUGS:
        errors.setdefault("slug", []).append(_("This short name is reserved; choose another."))
    slug_taken = Dataset.objects.filter(slug=dataset.slug).exclude(pk=dataset.pk).exists()
    if dataset.slug and slug_taken:
        errors.setdefault("slug", []).append(_("Another dataset already uses this short name."))
    if errors:
        raise ValidationError(errors)


def _resolve_protocol(value: Any) -> Any:
    if value is None or isinstance(value, Protocol):
        return value
    return Protocol.objects.filter(pk=value).first() or Protocol(pk=None)


def dataset_create(*, society: Society, by: User, **fields: Any) -> Dataset:
    _require_manager(by, society)
    unknown = set(fields) - set(DATASET_FIELDS)
    if unknown:
        raise TypeError(f"dataset_create() got unexpected fields: {sorted(unknown)}")
    if "protocol" in fields:
        fields["protocol"] = _resolve_protocol(fields["protocol"])
    with transaction.atomic():
        dataset = Dataset(society=society, created_by=by, status=DatasetStatus.DRAFT, **fields)
        _validate_dataset_fields(dataset)
        dataset.save()
        audit_record(
            action="datasets.dataset_created", actor=by, target=dataset,
            details={"society": society.slug, "slug": dataset.slug},
        )
    return dataset


def dataset_update(*, dataset: Dataset, by: User, **fields: Any) -> Dataset:
    _require_manager(by, dataset.society)
    unknown = set(fields) - set(DATASET_FIELDS) - {"society"}
    if unknown:
        raise TypeError(f"dataset_update() got unexpected fields: {sorted(unknown)}")
    if "protocol" in fields:
        fields["protocol"] = _resolve_protocol(fields["protocol"])
    with transaction.atomic():
        locked = _locked(dataset)
        changed = [name for name, value in fields.items() if getattr(locked, name) != value]
        errors: dict[str, list[str]] = {}
        ever_published = locked.status != DatasetStatus.DRAFT or locked.published_at is not None
        for name in FIXED_ONCE_PUBLISHED:
            if name in changed and ever_published:
                errors[name] = [_("This cannot change once the dataset has been published.")]
        if "society" in changed and not may_manage_society(by, fields["society"]):
            errors["society"] = [_("You can only move a dataset to a society you manage.")]
        has_release = locked.releases.exists()
        for name in ("case_count", "image_count"):
            if name in changed and has_release:
                errors[name] = [_("The counts come from the newest release once there is one.")]
        if "slug" in changed and has_release:
            errors["slug"] = [_("This cannot change once the dataset has a release.")]
        if errors:
            raise ValidationError(errors)
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, fields[name])
        _validate_dataset_fields(locked)
        locked.save()
        audit_record(
            action="datasets.dataset_updated", actor=by, target=locked,
            details={"fields": sorted(changed)},
        )
    dataset.refresh_from_db()
    return locked


@dataclass(frozen=True)
class PublishCheck:
    """One condition of publication, shown to the society as a checklist."""

    ok: bool
    label: str
    reason: str


def dataset_publish_checks(dataset: Dataset) -> list[PublishCheck]:
    """Everything that must hold for ``dataset`` to be published, met or not, with the reasons."""
    flow = protocol_data_flow(dataset.protocol)
    has_notice = any(hooks.run("dataset_has_published_notice", dataset=dataset))  # portal.optout
    return [
        PublishCheck(flow.allowed, _("The research protocol is approved and permitted"), flow.reason),
        PublishCheck(
            has_notice,
            _("A published opt-out notice covers the dataset"),
            _("A published opt-out notice covers this dataset.") if has_notice
            else _("No published opt-out notice covers this dataset."),
        ),
    ]


def dataset_publish(*, dataset: Dataset, by: User) -> Dataset:
    _require_manager(by, dataset.society)
    with transaction.atomic():
        locked = _locked(dataset)
        problems = [check.reason for check in dataset_publish_checks(locked) if not check.ok]
        if locked.status not in {DatasetStatus.DRAFT, DatasetStatus.WITHDRAWN}:
            problems.insert(0, _("The dataset is already published."))
        if problems:
            raise ValidationError(problems, code="not_publishable")
        republished = locked.status == DatasetStatus.WITHDRAWN
        locked.published_at = timezone.now()
        locked.withdrawn_at = None
        locked.withdrawal_reason = ""
        source, target = transition(
            locked, "publish", extra_fields=("published_at", "withdrawn_at", "withdrawal_reason")
        )
        audit_record(
            action="datasets.dataset_published", actor=by, target=locked,
            details={"from": source, "to": target, "republished": republished},
        )
    dataset.refresh_from_db()
    return locked


def dataset_withdraw(*, dataset: Dataset, reason: str, by: User) -> Dataset:
    _require_manager(by, dataset.society)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the dataset is withdrawn.")})
    with transaction.atomic():
        locked = _locked(dataset)
        locked.withdrawn_at = timezone.now()
        locked.withdrawal_reason = reason
        source, target = transition(locked, "withdraw", extra_fields=("withdrawn_at", "withdrawal_reason"))
        audit_record(
            action="datasets.dataset_withdrawn", actor=by, target=locked,
            details={"from": source, "to": target, "reason": reason},
        )
    dataset.refresh_from_db()
    return locked
