"""Inference jobs: checking what may run and creating a job from uploads or release files."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from portal.access.selectors import active_grants, grant_usability
from portal.accounts.models import User
from portal.ai.models import AIModel, InferenceItem, InferenceJob, ModelVersion
from portal.ai.selectors import may_manage_model, may_run
from portal.ai.services._common import _mb, _queue_run, _read_limited
from portal.anonymiser.photos import strip_photo
from portal.anonymiser.report import DeidError
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.deid.services import portal_keys
from portal.optout.selectors import excluded_pseudonyms


def _check_version_runnable(version: ModelVersion, user: User) -> None:
    model = version.model
    if not may_run(user, model):
        raise PermissionDenied(_("You may not run this model."))
    if model.task not in AIModel.RUNNABLE_TASKS:
        raise ValidationError(
            _("The portal cannot run %(task)s models yet.") % {"task": AIModel.Task(model.task).label},
            code="task",
        )
    if version.status == ModelVersion.Status.RETIRED:
        raise ValidationError(
            _("This version was retired on %(date)s; choose a published version.")
            % {"date": formats.date_format(timezone.localtime(version.retired_at), "DATE_FORMAT")
               if version.retired_at else "?"},
            code="retired",
        )
    if version.status == ModelVersion.Status.DRAFT and not may_manage_model(user, model):
        raise ValidationError(_("This version is a draft; choose a published version."), code="draft")


def _release_files(user: User, picks: Sequence[int]) -> tuple[DatasetRelease, list[ReleaseFile]]:
    """The picked files, all of one release the user may use now; refused naming the first bad file."""
    ids = [int(pick) for pick in picks]
    files = {f.pk: f for f in ReleaseFile.objects.filter(pk__in=ids).select_related("release__dataset")}
    missing = [str(pk) for pk in ids if pk not in files]
    if missing:
        raise ValidationError({"release_files": [_("No such release file: %(ids)s.") % {"ids": ", ".join(missing)}]})
    ordered = [files[pk] for pk in ids]
    releases = {f.release_id for f in ordered}
    if len(releases) > 1:
        raise ValidationError({"release_files": [_("Pick the files of one release for one job.")]})
    release = ordered[0].release
    if release.status != DatasetRelease.Status.AVAILABLE:
        raise ValidationError({"release_files": [
            _("Release %(release)s was withdrawn; its files cannot be used.") % {"release": str(release)}]})
    grants = active_grants().filter(users=user, releases=release)
    if not any(grant_usability(grant, user).ok for grant in grants):
        raise ValidationError({"release_files": [
            _("You hold no grant in force for release %(release)s, so its file %(file)s cannot be used.")
            % {"release": str(release), "file": ordered[0].path}]})
    excluded = excluded_pseudonyms(dataset=release.dataset)
    for file in ordered:
        if file.is_annotation:
            raise ValidationError({"release_files": [
                _("%(file)s is an annotation file, not an image.") % {"file": file.path}]})
        if file.subject_pseudonym in excluded:
            raise ValidationError({"release_files": [
                _("%(file)s is of a subject who opted out; it may no longer be used.") % {"file": file.path}]})
    return release, ordered


def _upload_name(upload: Any) -> tuple[str, Any]:
    if isinstance(upload, tuple):
        name, content = upload
    else:
        name, content = getattr(upload, "name", "") or "", upload
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1].strip() or _("(no name)")
    return name[:255], content


def _strip(kind: str, data: bytes, *, job_id: int) -> bytes:
    """The image without its metadata (``portal.deid``); DeidError when it cannot be stripped.

    DICOM goes through the Basic Profile with the portal's keys and an institution code of the job's
    own (``AIJOB<id>``): the stored copy's pseudonym and UIDs link nothing outside the job. An object
    without a PatientID (the Basic Profile needs one to pseudonymise) is given a placeholder first."""
    out = io.BytesIO()
    if kind == "dicom":
        # Imported here: pydicom stays off the start-up path of every process.
        from portal.anonymiser.dicom import Profile, deidentify_dicom

        profile = Profile(institution_code=f"AIJOB{job_id}")
        try:
            report = deidentify_dicom(io.BytesIO(data), out, profile=profile, keys=portal_keys())
        except DeidError as error:
            if "PatientID" not in error.reason:
                raise
            out = io.BytesIO()
            report = deidentify_dicom(io.BytesIO(_with_patient_id(data)), out, profile=profile, keys=portal_keys())
        if report.held_back:
            raise DeidError(_("The DICOM image may carry burned-in text that cannot be masked: %(reason)s")
                            % {"reason": report.reason})
    else:
        strip_photo(io.BytesIO(data), out)
    return out.getvalue()


def _with_patient_id(data: bytes) -> bytes:
    from pydicom import dcmread

    try:
        dataset = dcmread(io.BytesIO(data))
        dataset.PatientID = "UNKNOWN"
        out = io.BytesIO()
        dataset.save_as(out)
    except Exception as error:  # pydicom raises many kinds on malformed files
        raise DeidError(str(error)) from error
    return out.getvalue()


_EXTENSIONS = {"jpeg": "jpg", "png": "png", "dicom": "dcm"}


def _prepare_upload(job: InferenceJob, position: int, upload: Any, stored: list[str]) -> InferenceItem:
    from portal.ai.preprocess import ImageRefused, image_kind

    name, content = _upload_name(upload)
    limit_mb = int(settings.PORTAL_AI_MAX_IMAGE_MB)
    data, sha, size = _read_limited(content, _mb(limit_mb))
    item = InferenceItem(job=job, position=position, name=name, input_sha256=sha)
    if data is None:
        item.reason = _("The file is %(size)s MB; at most %(limit)d MB per image is accepted.") % {
            "size": f"{size / 1024 / 1024:.1f}", "limit": limit_mb}
    else:
        try:
            kind = image_kind(data)
            clean = _strip(kind, data, job_id=job.pk)
        except ImageRefused as refusal:
            item.reason = str(refusal)
        except DeidError as error:
            item.reason = _("The image's metadata could not be removed, so it was not stored: %(reason)s") % {
                "reason": error.reason}
        else:
            key = f"{job.storage_prefix}inputs/{position:05d}.{_EXTENSIONS[kind]}"
            if default_storage.exists(key):
                default_storage.delete(key)
            item.stored_key = default_storage.save(key, ContentFile(clean))
            stored.append(item.stored_key)
    if item.reason:
        item.status = InferenceItem.Status.FAILED
        item.processed_at = timezone.now()
    return item


def inference_job_create(
    *, version: ModelVersion, user: User, uploads: Sequence[Any] = (), release_files: Sequence[Any] = (),
) -> InferenceJob:
    """A job over uploaded images (file objects with a name, or ``(name, bytes)``) or release files.

    Refusals (nothing written): no permission, a retired/draft version, a task the portal cannot
    run, no images, too many, both sources at once, a release file the user may not use. An upload
    that is not an image or cannot be stripped fails alone (item ``failed`` with the reason)."""
    _check_version_runnable(version, user)
    uploads = list(uploads or ())
    try:  # ids or ReleaseFile rows; the same file picked twice is run once
        release_files = list(dict.fromkeys(
            pick.pk if isinstance(pick, ReleaseFile) else int(pick) for pick in release_files or ()))
    except (TypeError, ValueError):
        raise ValidationError({"release_files": [_("Pick release files by their number.")]}) from None
    if uploads and release_files:
        raise ValidationError(_("Upload images or pick files of a release, not both."), code="mixed")
    count = len(uploads) + len(release_files)
    if not count:
        raise ValidationError(_("Choose at least one image."), code="empty")
    limit = int(settings.PORTAL_AI_MAX_IMAGES)
    if count > limit:
        raise ValidationError(
            _("%(count)d images were given; at most %(limit)d can be run in one job.") % {"count": count, "limit": limit},
            code="too_many",
        )
    release, files = (None, []) if not release_files else _release_files(user, release_files)
    source = InferenceJob.Source.RELEASE if files else InferenceJob.Source.UPLOAD
    stored: list[str] = []
    try:
        with transaction.atomic():
            job = InferenceJob.objects.create(user=user, version=version, source=source, release=release, total=count)
            if files:
                items = [
                    InferenceItem(job=job, position=n, name=f.path[-255:], input_sha256=f.sha256,
                                  stored_key=f.storage_key, release_file=f)
                    for n, f in enumerate(files, start=1)
                ]
            else:
                items = [_prepare_upload(job, n, upload, stored) for n, upload in enumerate(uploads, start=1)]
            InferenceItem.objects.bulk_create(items)
            failed = sum(1 for item in items if item.status == InferenceItem.Status.FAILED)
            if failed:
                job.failed = job.done = failed
                job.save(update_fields=["failed", "done"])
            audit_record(action="ai.job_created", actor=user, target=job, details={
                "model": version.model.slug, "version": version.version, "model_sha256": version.artefact_sha256,
                "inputs": [item.input_sha256 for item in items], "source": source,
                "release": str(release) if release else None, "refused_at_upload": failed,
            })
            _queue_run(job.pk)
    except BaseException:
        for key in stored:
            default_storage.delete(key)
        raise
    return job


