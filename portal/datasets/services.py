"""Every change to datasets and releases: checked, saved and audited in one transaction.

Who may act: an admin of the dataset's society, or the platform operator (``may_manage_society``).
A refusal raises ``PermissionDenied`` (not you) or ``ValidationError`` (not now, or bad input,
with every reason) and changes nothing.

Releases are built by ``release_build`` alone, whatever they come from (a folder import, an upload,
an anonymisation job): it checks every file of the manifest against the storage, leaves out the
files of subjects who opted out, and writes the release and its files at once. A release is never
edited afterwards; ``release_withdraw`` only records its withdrawal.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.text import slugify
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.datasets.manifest import (
    MANIFEST_NAMES,
    FileProblem,
    ManifestEntry,
    ManifestRow,
    manifest_sha256,
    normalise_path,
    parse_manifest,
    read_chunks,
    sniff_media_type,
)
from portal.datasets.models import (
    AccessTier,
    AnnotationGranularity,
    Dataset,
    DatasetRelease,
    DatasetStatus,
    LegalStatus,
    ReleaseFile,
)
from portal.datasets.selectors import may_manage_society
from portal.datasets.workflow import RELEASE, transition
from portal.ethics.models import Protocol
from portal.ethics.selectors import protocol_data_flow
from portal.lib import hooks, workflow
from portal.lib.pseudonym import is_pseudonym
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

logger = logging.getLogger(__name__)

UPLOAD_MAX_FILES = 500
UPLOAD_MAX_BYTES = 200 * 1024 * 1024
PROGRESS_EVERY = 100


def upload_max_files() -> int:
    """Files per upload: 500, or fewer if Django refuses more in one request (the manifest is one)."""
    django_limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return UPLOAD_MAX_FILES if django_limit is None else min(UPLOAD_MAX_FILES, django_limit - 1)


class ReleaseRejected(ValidationError):
    """A manifest with problems: nothing was written. ``problems`` lists them file by file."""

    def __init__(self, problems: Sequence[FileProblem]) -> None:
        self.problems = list(problems)
        super().__init__([str(problem) for problem in self.problems], code="release_rejected")


# --- Who may act --------------------------------------------------------------------------------


def _require_manager(user: User | None, society: Society) -> None:
    if user is None or not may_manage_society(user, society):
        raise PermissionDenied(_("Only an admin of the society or the platform operator can do this."))


def _locked(dataset: Dataset) -> Dataset:
    return Dataset.objects.select_for_update().select_related("society", "protocol").get(pk=dataset.pk)


# --- Datasets -----------------------------------------------------------------------------------


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


# --- Building a release -------------------------------------------------------------------------


def _static_problems(dataset: Dataset, entries: Sequence[ManifestEntry], *, today: date) -> list[FileProblem]:
    """Problems visible in the manifest itself, without reading any file."""
    problems: list[FileProblem] = []
    paths = {entry.path for entry in entries}
    seen_paths: set[str] = set()
    for entry in entries:
        path = entry.path
        if normalise_path(path) != path:
            problems.append(FileProblem(path, _("The path must be relative, without “.” or “..”.")))
        if path in seen_paths:
            problems.append(FileProblem(path, _("The file is listed more than once.")))
        seen_paths.add(path)
        if not is_pseudonym(entry.subject_pseudonym):
            problems.append(FileProblem(path, _(
                "The subject ID is not a society-common pseudonym (32 lower-case hexadecimal digits)."
            )))
        elif entry.subject_pseudonym[:8] in path.lower():
            # Paths are shown to every signed-in user; the pseudonym only to grant holders.
            problems.append(FileProblem(path, _(
                "The path contains the subject's pseudonym; name files without it."
            )))
        if (entry.modality or dataset.modality) not in Modality.values:
            problems.append(FileProblem(path, _("Unknown modality “%(modality)s”.") % {"modality": entry.modality}))
        if entry.study_date is not None and entry.study_date > today:
            problems.append(FileProblem(path, _("The study date %(date)s is in the future.") % {
                "date": entry.study_date.isoformat()}))
        if entry.annotation_path:
            if entry.annotation_path == path:
                problems.append(FileProblem(path, _("A file cannot be its own annotation file.")))
            elif entry.annotation_path not in paths:
                problems.append(FileProblem(path, _(
                    "The annotation file “%(annotation)s” is not in the manifest."
                ) % {"annotation": entry.annotation_path}))
    return problems


def _storage_problems(entries: Sequence[ManifestEntry]) -> list[FileProblem]:
    """Read every file back from the storage (in chunks) and compare its size and SHA-256."""
    problems: list[FileProblem] = []
    first_with_content: dict[str, str] = {}
    for entry in entries:
        if not entry.storage_key:
            problems.append(FileProblem(entry.path, _("The file has no storage key.")))
            continue
        try:
            if not default_storage.exists(entry.storage_key):
                problems.append(FileProblem(entry.path, _("The file is missing from the storage.")))
                continue
            digest = hashlib.sha256()
            size = 0
            with default_storage.open(entry.storage_key, "rb") as handle:
                for chunk in read_chunks(handle):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as error:
            problems.append(FileProblem(entry.path, _("The file cannot be read from the storage (%(error)s).") % {
                "error": error.__class__.__name__}))
            continue
        if size != entry.size:
            problems.append(FileProblem(entry.path, _(
                "The size differs: the manifest says %(expected)s bytes, the stored file has %(actual)s."
            ) % {"expected": entry.size, "actual": size}))
        actual_sha = digest.hexdigest()
        if actual_sha != entry.sha256.lower():
            problems.append(FileProblem(entry.path, _("The SHA-256 checksum differs from the manifest.")))
        if actual_sha in first_with_content:
            problems.append(FileProblem(entry.path, _("The same content as “%(other)s” (a duplicate file).") % {
                "other": first_with_content[actual_sha]}))
        else:
            first_with_content[actual_sha] = entry.path
    return problems


def _refusals(dataset: Dataset) -> list[str]:
    reasons = []
    if dataset.status == DatasetStatus.WITHDRAWN:
        reasons.append(_("A withdrawn dataset gets no new release; publish it again first."))
    flow = protocol_data_flow(dataset.protocol)
    if not flow.allowed:
        reasons.append(
            _("No data may flow under the research protocol: %(reason)s") % {"reason": flow.reason}
        )
    return reasons


def _excluded_paths(entries: Sequence[ManifestEntry], excluded: set[str]) -> set[str]:
    """Files of opted-out subjects, with the annotation files that go with them (and no others)."""
    dropped = {entry.path for entry in entries if entry.subject_pseudonym in excluded}
    kept_annotations = {
        entry.annotation_path for entry in entries if entry.path not in dropped and entry.annotation_path
    }
    for entry in entries:
        if entry.path in dropped and entry.annotation_path and entry.annotation_path not in kept_annotations:
            dropped.add(entry.annotation_path)
    return dropped


def release_build(
    *, dataset: Dataset, entries: list[ManifestEntry], source: str, by: User | None,
    source_reference: str = "", notes_ja: str = "", notes_en: str = "",
) -> DatasetRelease:
    """Write a new release of ``dataset`` from files already in the storage, or change nothing.

    ``by`` may be None only for an anonymisation job (the system builds the release). The files are
    checked before the dataset is locked, since reading them can take long and they do not depend
    on the database; everything that does is decided under the lock.
    """
    if source not in DatasetRelease.Source.values:
        raise ValueError(f"Unknown release source {source!r}.")
    if not (by is None and source == DatasetRelease.Source.DEID_JOB):
        _require_manager(by, dataset.society)
    refusals = _refusals(dataset)
    if refusals:
        raise ValidationError(refusals, code="not_releasable")
    entries = [replace(entry, modality=entry.modality or dataset.modality) for entry in entries]
    if not entries:
        raise ReleaseRejected([FileProblem("", _("The manifest lists no files."))])
    problems = _static_problems(dataset, entries, today=timezone.localdate())
    problems += _storage_problems(entries)
    if problems:
        raise ReleaseRejected(problems)

    with transaction.atomic():
        locked = _locked(dataset)
        refusals = _refusals(locked)
        if refusals:
            raise ValidationError(refusals, code="not_releasable")
        # Subjects who opted out (portal.optout) are left out.
        excluded = set(hooks.joined("dataset_excluded_pseudonyms", dataset=locked))
        dropped_paths = _excluded_paths(entries, excluded)
        kept = [entry for entry in entries if entry.path not in dropped_paths]
        dropped = [entry for entry in entries if entry.path in dropped_paths]
        if not kept:
            raise ReleaseRejected([FileProblem("", _(
                "Every file belongs to subjects who opted out; the release would be empty."
            ))])
        annotation_paths = {entry.annotation_path for entry in kept if entry.annotation_path}
        images = [entry for entry in kept if entry.path not in annotation_paths]
        dates = [entry.study_date for entry in kept if entry.study_date is not None]
        version = (locked.releases.aggregate(last=Max("version"))["last"] or 0) + 1
        release = DatasetRelease.objects.create(
            dataset=locked, version=version, source=source, source_reference=source_reference[:200],
            notes_ja=notes_ja, notes_en=notes_en,
            case_count=len({entry.subject_pseudonym for entry in kept}), image_count=len(images),
            file_count=len(kept), total_bytes=sum(entry.size for entry in kept),
            excluded_subject_count=len({entry.subject_pseudonym for entry in dropped} & excluded),
            earliest_study_date=min(dates, default=None), latest_study_date=max(dates, default=None),
            manifest_sha256=manifest_sha256(kept), created_by=by,
        )
        ReleaseFile.objects.bulk_create(
            (
                ReleaseFile(
                    release=release, path=entry.path, storage_key=entry.storage_key, size=entry.size,
                    sha256=entry.sha256.lower(), media_type=entry.media_type,
                    subject_pseudonym=entry.subject_pseudonym, study_date=entry.study_date,
                    modality=entry.modality, annotation_path=entry.annotation_path,
                    is_annotation=entry.path in annotation_paths,
                )
                for entry in kept
            ),
            batch_size=2000,
        )
        locked.case_count = release.case_count
        locked.image_count = release.image_count
        locked.save(update_fields=["case_count", "image_count", "updated_at"])
        hooks.run("release_built", release=release)  # the linkage index (portal.linkage)
        audit_record(
            action="datasets.release_built", actor=by, target=release,
            details={
                "dataset": locked.slug, "version": version, "source": source,
                "source_reference": source_reference, "files": release.file_count,
                "bytes": release.total_bytes, "excluded_subjects": release.excluded_subject_count,
                "manifest_sha256": release.manifest_sha256,
            },
        )
        # Files of subjects who opted out must not stay in the storage once the release exists.
        dropped_keys = [entry.storage_key for entry in dropped]
        transaction.on_commit(lambda: _delete_objects(dropped_keys))
    return release


def release_withdraw(*, release: DatasetRelease, reason: str, by: User) -> DatasetRelease:
    _require_manager(by, release.dataset.society)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the release is withdrawn.")})

    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=release.dataset_id)
        locked = DatasetRelease.objects.select_for_update().select_related("dataset").get(pk=release.pk)
        if locked.status == DatasetRelease.Status.WITHDRAWN:
            raise ValidationError(_("The release has already been withdrawn."), code="withdrawn")
        locked.withdrawn_at = timezone.now()
        locked.withdrawn_by = by
        locked.withdrawal_reason = reason
        workflow.transition(locked, RELEASE, "withdraw",
                            extra_fields=["withdrawn_at", "withdrawn_by", "withdrawal_reason"])
        audit_record(
            action="datasets.release_withdrawn", actor=by, target=locked,
            details={"dataset": locked.dataset.slug, "version": locked.version, "reason": reason},
        )
        # The linkage index drops the release (portal.linkage); hosted AI models trained or evaluated
        # on it get a notice on their cards, their admins told (portal.ai).
        hooks.run("release_withdrawn", release=locked, by=by)
    release.refresh_from_db()
    return locked


# --- Importing files that are already anonymised ------------------------------------------------


@dataclass
class ImportProgress:
    files: int = 0
    bytes: int = 0
    total_files: int = 0
    started: float = 0.0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def _delete_objects(keys: Iterable[str]) -> None:
    for key in keys:
        try:
            default_storage.delete(key)
        except Exception:  # clean up the rest; what could not be deleted is logged
            logger.warning("Could not delete %s from the storage.", key, exc_info=True)


def _find_manifest(folder: Path, manifest: str | os.PathLike[str] | None) -> Path | None:
    if manifest:
        candidate = Path(manifest)
        return candidate if candidate.is_absolute() else folder / candidate
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _folder_files(folder: Path, skip: set[Path]) -> set[str]:
    """Relative POSIX paths of everything in ``folder`` that is not a directory (links not followed)."""
    found = set()
    for root, _dirs, names in os.walk(folder):
        for name in names:
            full = Path(root) / name
            if full in skip:
                continue
            found.add(full.relative_to(folder).as_posix())
    return found


@dataclass(frozen=True)
class _LocalFile:
    row: ManifestRow
    path: str
    source: Path
    size: int
    sha256: str
    media_type: str
    study_date: date | None


def _row_problems(rows: Sequence[ManifestRow], manifest_name: str) -> tuple[list[FileProblem], dict[int, date | None]]:
    problems: list[FileProblem] = []
    dates: dict[int, date | None] = {}
    for row in rows:
        path = normalise_path(row.path)
        if path is None:
            label = row.path or _("line %(line)s of %(manifest)s") % {"line": row.line, "manifest": manifest_name}
            problems.append(FileProblem(label, _("The path must be relative, without “.” or “..”.")))
            continue
        if row.study_date:
            try:
                parsed = parse_date(row.study_date)
            except ValueError:
                parsed = None
            if parsed is None:
                problems.append(FileProblem(path, _(
                    "The study date “%(date)s” is not a date (write YYYY-MM-DD)."
                ) % {"date": row.study_date}))
            dates[row.line] = parsed
        else:
            dates[row.line] = None
    return problems, dates


def _read_local(source: Path, path: str) -> tuple[int, str, str]:
    """Size, SHA-256 and media type of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as handle:
        head = handle.read(512)
        handle.seek(0)
        for chunk in read_chunks(handle):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest(), sniff_media_type(path, head)


def _check_folder(
    folder: Path, manifest_path: Path, rows: Sequence[ManifestRow], dates: dict[int, date | None],
) -> tuple[list[_LocalFile], list[FileProblem]]:
    problems: list[FileProblem] = []
    files: list[_LocalFile] = []
    listed: set[str] = set()
    for row in rows:
        path = normalise_path(row.path)
        if path is None or row.line not in dates:
            continue
        listed.add(path)
        source = folder / path
        try:
            info = source.lstat()
        except FileNotFoundError:
            problems.append(FileProblem(path, _("Listed in the manifest but missing from the folder.")))
            continue
        except OSError:
            problems.append(FileProblem(path, _("The file cannot be read.")))
            continue
        if stat.S_ISDIR(info.st_mode):
            problems.append(FileProblem(path, _("This is a folder, not a file.")))
            continue
        try:
            if not source.is_file():
                raise OSError("not a regular file")
            size, sha, media_type = _read_local(source, path)
        except PermissionError:
            problems.append(FileProblem(path, _("The file cannot be read (permission denied).")))
            continue
        except OSError:
            problems.append(FileProblem(path, _("The file cannot be read.")))
            continue
        if row.sha256 and row.sha256 != sha:
            problems.append(FileProblem(path, _("The SHA-256 checksum differs from the manifest.")))
        files.append(_LocalFile(row, path, source, size, sha, media_type, dates[row.line]))
    for extra in sorted(_folder_files(folder, {manifest_path}) - listed):
        problems.append(FileProblem(extra, _("In the folder but not listed in the manifest.")))
    return files, problems


def release_import_folder(
    *, dataset: Dataset, folder: str | os.PathLike[str], by: User,
    manifest: str | os.PathLike[str] | None = None, notes_ja: str = "", notes_en: str = "",
    source: str = DatasetRelease.Source.IMPORT, progress: Callable[[ImportProgress], None] | None = None,
) -> DatasetRelease:
    """Check a folder of anonymised files against its manifest, store them and build a release.

    Every problem of every file is reported at once (``ReleaseRejected``) before anything is stored.
    Files are then copied in chunks under a prefix of their own; if anything fails after that, every
    object copied is deleted again, so a failed import publishes nothing and leaves nothing behind.
    """
    _require_manager(by, dataset.society)
    refusals = _refusals(dataset)
    if refusals:
        raise ValidationError(refusals, code="not_releasable")
    root = Path(folder)
    if not root.is_dir():
        raise ReleaseRejected([FileProblem(str(folder), _("The folder does not exist."))])
    manifest_path = _find_manifest(root, manifest)
    if manifest_path is None or not manifest_path.is_file():
        raise ReleaseRejected([FileProblem(
            str(manifest or ""),
            _("No manifest found: put manifest.csv or manifest.tsv in the folder, or name it."),
        )])
    with manifest_path.open("rb") as handle:
        rows, problems = parse_manifest(handle, manifest_path.name)
    if problems:
        # Without a readable manifest, comparing it with the folder would only add noise.
        raise ReleaseRejected(problems)
    row_problems, dates = _row_problems(rows, manifest_path.name)
    problems += row_problems
    files, folder_problems = _check_folder(root, manifest_path, rows, dates)
    problems += folder_problems
    if problems:
        raise ReleaseRejected(problems)

    # The manifest's own checks (pseudonyms, modalities, dates, annotation paths), before copying.
    preliminary = [
        ManifestEntry(
            path=f.path, storage_key=f"local:{f.path}", size=f.size, sha256=f.sha256, media_type=f.media_type,
            subject_pseudonym=f.row.subject_pseudonym, study_date=f.study_date,
            modality=f.row.modality or dataset.modality, annotation_path=normalise_path(f.row.annotation_path) or
            f.row.annotation_path,
        )
        for f in files
    ]
    problems = _static_problems(dataset, preliminary, today=timezone.localdate())
    first_with_content: dict[str, str] = {}
    for entry in preliminary:
        if entry.sha256 in first_with_content:
            problems.append(FileProblem(entry.path, _("The same content as “%(other)s” (a duplicate file).") % {
                "other": first_with_content[entry.sha256]}))
        else:
            first_with_content[entry.sha256] = entry.path
    if problems:
        raise ReleaseRejected(problems)

    prefix = f"releases/{dataset.slug}/incoming-{uuid.uuid4().hex}/"
    stored: list[str] = []
    state = ImportProgress(total_files=len(files), started=time.monotonic())
    try:
        entries = []
        for local, entry in zip(files, preliminary, strict=True):
            with local.source.open("rb") as handle:
                key = default_storage.save(prefix + local.path, File(handle, name=local.path))
            stored.append(key)
            entries.append(replace(entry, storage_key=key))
            state.files += 1
            state.bytes += local.size
            if progress is not None and state.files % PROGRESS_EVERY == 0:
                progress(state)
        release = release_build(
            dataset=dataset, entries=entries, source=source, by=by,
            source_reference=str(folder) if source == DatasetRelease.Source.IMPORT else "",
            notes_ja=notes_ja, notes_en=notes_en,
        )
    except BaseException:
        _delete_objects(stored)
        raise
    if progress is not None:
        progress(state)
    return release


def release_upload(
    *, dataset: Dataset, files: Sequence[UploadedFile], manifest: UploadedFile, by: User,
    notes_ja: str = "", notes_en: str = "",
) -> DatasetRelease:
    """A small release from files uploaded in the browser: the folder import, from a temporary folder.

    The manifest names each file by its file name (browsers send no folders).
    """
    _require_manager(by, dataset.society)
    problems = []
    if len(files) > upload_max_files():
        problems.append(FileProblem("", _("Upload at most %(count)s files at a time; use the import command for more.") % {
            "count": upload_max_files()}))
    total = sum(upload.size or 0 for upload in files) + (manifest.size or 0)
    if total > UPLOAD_MAX_BYTES:
        problems.append(FileProblem("", _(
            "Upload at most %(megabytes)s MB at a time; use the import command for more."
        ) % {"megabytes": UPLOAD_MAX_BYTES // (1024 * 1024)}))
    manifest_name = Path(manifest.name or "manifest.csv").name
    if not manifest_name.lower().endswith((".csv", ".tsv")):
        problems.append(FileProblem(manifest_name, _("The manifest must be a .csv or .tsv file.")))
    names = [Path(upload.name or "").name for upload in files]
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.append(FileProblem(name, _("The file is listed more than once.")))
    if manifest_name in names:
        problems.append(FileProblem(manifest_name, _("A file has the same name as the manifest.")))
    if problems:
        raise ReleaseRejected(problems)
    with tempfile.TemporaryDirectory(prefix="portal-upload-") as folder:
        root = Path(folder)
        for name, upload in zip(names, files, strict=True):
            if normalise_path(name) is None:
                raise ReleaseRejected([FileProblem(name, _("The file name is not allowed."))])
            with (root / name).open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
        manifest_target = root / ".manifest" / manifest_name
        manifest_target.parent.mkdir()
        with manifest_target.open("wb") as out:
            for chunk in manifest.chunks():
                out.write(chunk)
        try:
            return release_import_folder(
                dataset=dataset, folder=root, by=by, manifest=manifest_target, notes_ja=notes_ja,
                notes_en=notes_en, source=DatasetRelease.Source.UPLOAD,
            )
        finally:
            shutil.rmtree(root / ".manifest", ignore_errors=True)
