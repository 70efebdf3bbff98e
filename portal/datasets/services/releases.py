"""Building a release (``release_build``, whatever the files come from) and withdrawing one."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.datasets.manifest import (
    FileProblem,
    ManifestEntry,
    manifest_sha256,
    normalise_path,
    read_chunks,
)
from portal.datasets.models import (
    Dataset,
    DatasetRelease,
    DatasetStatus,
    ReleaseFile,
)
from portal.datasets.services.common import ReleaseRejected, _locked, _require_manager
from portal.datasets.workflow import RELEASE
from portal.ethics.selectors import protocol_data_flow
from portal.lib import hooks, workflow
from portal.lib.pseudonym import is_pseudonym

logger = logging.getLogger(__name__)


def _delete_objects(keys: Iterable[str]) -> None:
    for key in keys:
        try:
            default_storage.delete(key)
        except Exception:  # clean up the rest; what could not be deleted is logged
            logger.warning("Could not delete %s from the storage.", key, exc_info=True)


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
