"""Anonymisation jobs: create, start, process, resume, cancel, and turn into a dataset release.

Every service is keyword-only, checks who may act (an admin of the job's society or the platform
operator), validates, saves and audits inside one transaction. The Celery tasks (``tasks.py``) call
``deid_process_file`` per file and ``deid_job_finish_if_complete`` after each chunk.

Decisions:

- Output keys are ``deid/<job id>/<h><suffix>`` where ``h`` is a hash of the source's relative path:
  derived from the input (a repeated chunk overwrites the same object) yet free of the source's
  names, which often carry patient IDs.
- Files whose handler finds no subject (photos, slides) take their subject from the first folder of
  their source path (``<patient ID>/...``), pseudonymised with the job's institution code.
- A release is built from the files whose result is ``changed`` or ``unchanged`` only; ``held_back``
  and ``failed`` files are never released. A job ``finished_with_failures`` is refused unless the
  admin confirms ``include_partial=True`` (audited); a job still running, cancelled or failed is
  always refused. Release paths are ``s<subject n>/<file n><suffix>``: neither the pseudonym nor any
  source name appears in them. Files without a subject pseudonym (tables) cannot be released and
  are counted in the release report as ``not_released``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.anonymiser.report import DeidError, FileReport
from portal.audit.services import audit_record
from portal.datasets.manifest import ManifestEntry
from portal.datasets.models import Dataset, DatasetRelease
from portal.datasets.selectors import may_manage_society
from portal.datasets.services import release_build
from portal.deid.models import TABLE_EDITION, DeidFileResult, DeidJob
from portal.deid.workflow import DEID_JOB
from portal.lib.workflow import transition
from portal.societies.models import Society

CHUNK_SIZE = 50
READ_CHUNK = 1024 * 1024
TABLE_ROLES = ("pseudonymise", "drop", "shift_date", "generalise_age", "keep")
DEFAULT_OPTIONS = ("LMD", "PAT", "DEV", "INST", "DESC", "UID")


# --- Helpers -------------------------------------------------------------------------------------


def _require_manager(user: Any, society: Society) -> None:
    if user is None or not may_manage_society(user, society):
        raise PermissionDenied(_("Only an admin of the society or the platform operator can do this."))


def known_options() -> tuple[str, ...]:
    """The Annex E option codes a job may choose (``portal.anonymiser.annex_e.OPTIONS``)."""
    from portal.anonymiser.annex_e import OPTIONS

    return tuple(OPTIONS)


def import_root() -> Path | None:
    root = getattr(settings, "PORTAL_DEID_IMPORT_ROOT", None)
    return Path(root).resolve() if root else None


def portal_keys() -> Any:
    from portal.anonymiser.keys import Keys

    return Keys(settings.PORTAL_PSEUDONYM_KEY.encode())


def profile_class() -> Any:
    """``Profile`` (agreed in ``annex_e``; defined in ``dicom`` — either is accepted)."""
    from portal.anonymiser import annex_e

    if hasattr(annex_e, "Profile"):
        return annex_e.Profile
    from portal.anonymiser.dicom import Profile

    return Profile


def job_profile(job: DeidJob) -> Any:
    return profile_class()(options=frozenset(job.options or ()), institution_code=job.institution_code)


def output_key(job: DeidJob | int, relative_path: str) -> str:
    job_id = job if isinstance(job, int) else job.pk
    digest = hashlib.sha256(relative_path.encode("utf-8")).hexdigest()[:32]
    suffix = PurePosixPath(relative_path).suffix.lower()[:10]
    return f"deid/{job_id}/{digest}{suffix}"


def _clean_relative(value: str) -> str | None:
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if not parts or any(part in ("", ".", "..") for part in parts) or value.startswith("/"):
        return None
    return "/".join(parts)


def _walk_folder(root: Path) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield (Path(folder) / name).relative_to(root).as_posix()


def _walk_storage(prefix: str) -> Iterator[str]:
    prefix = prefix.rstrip("/")
    stack = [""]
    while stack:
        relative = stack.pop()
        base = f"{prefix}/{relative}".rstrip("/") if relative else prefix
        try:
            dirs, files = default_storage.listdir(base)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in sorted(files):
            if not name.startswith("."):
                yield f"{relative}/{name}" if relative else name
        stack.extend(sorted((f"{relative}/{d}" if relative else d for d in dirs), reverse=True))


def source_files(job: DeidJob) -> list[str]:
    """The relative paths of every source file of ``job``, sorted."""
    if job.source_kind == DeidJob.SourceKind.SERVER_FOLDER:
        return sorted(_walk_folder(Path(job.source)))
    prefix = job.upload_prefix if job.source_kind == DeidJob.SourceKind.UPLOAD else job.source
    return sorted(_walk_storage(prefix))


class _LocalSource:
    """The source file as a local path: the file itself, or a streamed temporary copy from storage."""

    def __init__(self, job: DeidJob, relative: str) -> None:
        self.job, self.relative = job, relative
        self.temp: Path | None = None

    def __enter__(self) -> Path:
        if self.job.source_kind == DeidJob.SourceKind.SERVER_FOLDER:
            return Path(self.job.source) / self.relative
        prefix = self.job.upload_prefix if self.job.source_kind == DeidJob.SourceKind.UPLOAD else self.job.source
        key = f"{prefix.rstrip('/')}/{self.relative}"
        handle, name = tempfile.mkstemp(suffix=PurePosixPath(self.relative).suffix)
        self.temp = Path(name)
        with os.fdopen(handle, "wb") as out, default_storage.open(key, "rb") as src:
            while chunk := src.read(READ_CHUNK):
                out.write(chunk)
        return self.temp

    def __exit__(self, *exc: object) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- Creating and starting ----------------------------------------------------------------------


def _validated_table_roles(
    table_roles: dict[str, Any] | None, errors: dict[str, list[str]],
) -> dict[str, dict[str, str]]:
    """The column roles as strings; problems are added to ``errors``."""
    roles: dict[str, dict[str, str]] = {}
    for table, columns in (table_roles or {}).items():
        if not isinstance(columns, dict):
            errors.setdefault("table_roles", []).append(_("Give the column roles of each table as a mapping."))
            continue
        bad = sorted(role for role in columns.values() if role not in TABLE_ROLES)
        if bad:
            errors.setdefault("table_roles", []).append(
                _("Unknown column roles: %(roles)s.") % {"roles": ", ".join(bad)}
            )
        roles[str(table)] = {str(k): str(v) for k, v in columns.items()}
    return roles


def _validated_source(source_kind: str, source: str, uploads: Sequence[Any] | None, errors: dict[str, list[str]]) -> str:
    """The source as the job stores it (a resolved folder, a clean prefix, or ""); problems are added to ``errors``."""
    if source_kind == DeidJob.SourceKind.SERVER_FOLDER:
        root = import_root()
        if root is None:
            errors.setdefault("source", []).append(_("No folder on the server is set up for anonymisation imports."))
        else:
            folder = (root / source.strip()).resolve() if not os.path.isabs(source) else Path(source).resolve()
            if folder != root and root not in folder.parents:
                errors.setdefault("source", []).append(_("The folder must lie inside the import folder."))
            elif not folder.is_dir():
                errors.setdefault("source", []).append(_("The folder does not exist."))
            else:
                source = str(folder)
    elif source_kind == DeidJob.SourceKind.S3_PREFIX:
        prefix = _clean_relative(source.strip().strip("/")) if source.strip().strip("/") else None
        if prefix is None or prefix.split("/")[0] in ("deid", "deid-sources"):
            errors.setdefault("source", []).append(_("Enter a storage prefix outside the portal's own folders."))
        else:
            source = prefix
    elif source_kind == DeidJob.SourceKind.UPLOAD:
        if not uploads:
            errors.setdefault("uploads", []).append(_("Choose at least one file."))
        source = ""
    else:
        errors.setdefault("source_kind", []).append(_("Choose where the files come from."))
    return source


def _validate(
    *, society: Society, dataset: Dataset | None, source_kind: str, source: str, options: Sequence[str],
    institution_code: str, table_roles: dict[str, Any] | None, uploads: Sequence[Any] | None,
) -> tuple[str, list[str], dict[str, dict[str, str]]]:
    errors: dict[str, list[str]] = {}
    if dataset is not None and dataset.society_id != society.pk:
        errors.setdefault("dataset", []).append(_("The dataset belongs to another society."))
    unknown = sorted(set(options) - set(known_options()))
    if unknown:
        errors.setdefault("options", []).append(
            _("Unknown options: %(codes)s.") % {"codes": ", ".join(unknown)}
        )
    if not institution_code.strip():
        errors.setdefault("institution_code", []).append(_("Enter the institution code."))
    roles = _validated_table_roles(table_roles, errors)
    source = _validated_source(source_kind, source, uploads, errors)
    if errors:
        raise ValidationError(errors)
    return source, sorted(set(options)), roles


def deid_job_create(
    *, society: Society, dataset: Dataset | None, source_kind: str, source: str = "",
    options: Sequence[str] = (), institution_code: str, table_roles: dict[str, Any] | None = None,
    by: Any, uploads: Sequence[Any] | None = None,
) -> DeidJob:
    """A pending job. ``uploads`` (name + file objects) is for ``source_kind="upload"`` only."""
    _require_manager(by, society)
    source, options, roles = _validate(
        society=society, dataset=dataset, source_kind=source_kind, source=source, options=options,
        institution_code=institution_code, table_roles=table_roles, uploads=uploads,
    )
    stored: list[str] = []
    try:
        with transaction.atomic():
            job = DeidJob.objects.create(
                society=society, dataset=dataset, created_by=by, source_kind=source_kind, source=source,
                options=options, institution_code=institution_code.strip(), table_roles=roles,
            )
            for upload in uploads or ():
                name = _clean_relative(os.path.basename(str(getattr(upload, "name", "") or "")))
                if name is None:
                    raise ValidationError({"uploads": [_("A file has no usable name.")]})
                key = f"{job.upload_prefix}{name}"
                if default_storage.exists(key):
                    default_storage.delete(key)
                stored.append(default_storage.save(key, upload))
            audit_record(action="deid.job_create", actor=by, target=job, details={
                "source_kind": source_kind, "options": options, "dataset": dataset.pk if dataset else None,
                "uploaded_files": len(stored),
            })
    except BaseException:
        for key in stored:
            default_storage.delete(key)
        raise
    return job


def _chunks(paths: Sequence[str]) -> Iterator[list[str]]:
    size = CHUNK_SIZE
    for start in range(0, len(paths), size):
        yield list(paths[start:start + size])


def _queue(job_id: int, paths: Sequence[str]) -> None:
    from portal.deid.tasks import process_chunk

    chunks = list(_chunks(paths))
    # A queue of its own (PORTAL_DEID_QUEUE) keeps long jobs from delaying other tasks; None is the default.
    queue = getattr(settings, "PORTAL_DEID_QUEUE", None) or None

    def send() -> None:
        for chunk in chunks:
            if queue:
                process_chunk.apply_async((job_id, chunk), queue=queue)
            else:
                process_chunk.delay(job_id, chunk)

    transaction.on_commit(send)


def deid_job_start(*, job: DeidJob, by: Any) -> DeidJob:
    """List the source files, record their count, and queue one chunk task per ``CHUNK_SIZE`` files."""
    _require_manager(by, job.society)
    paths = source_files(job)
    with transaction.atomic():
        locked = DeidJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != DeidJob.Status.PENDING:
            raise ValidationError(_("Only a pending job can be started."), code="not_pending")
        if not paths:
            raise ValidationError(_("The source holds no files."), code="empty")
        locked.total = len(paths)
        locked.started_at = timezone.now()
        transition(locked, DEID_JOB, "start", extra_fields=["total", "started_at"])
        audit_record(action="deid.job_start", actor=by, target=locked, details={"files": len(paths)})
        _queue(locked.pk, paths)
    job.refresh_from_db()
    return job


def deid_job_resume(*, job: DeidJob, by: Any) -> int:
    """Queue again the files of a running job that have no result yet (after a worker died)."""
    if by is not None:
        _require_manager(by, job.society)
    paths = source_files(job)
    with transaction.atomic():
        locked = DeidJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != DeidJob.Status.RUNNING:
            raise ValidationError(_("Only a running job can be resumed."), code="not_running")
        done = set(locked.results.values_list("source_path", flat=True))
        missing = [path for path in paths if path not in done]
        audit_record(
            action="deid.job_resume", actor=by, actor_email="" if by is not None else "deid-worker",
            target=locked, details={"files": len(missing)},
        )
        if missing:
            _queue(locked.pk, missing)
    if not missing:
        deid_job_finish_if_complete(job_id=job.pk)
    job.refresh_from_db()
    return len(missing)


def deid_job_cancel(*, job: DeidJob, by: Any) -> DeidJob:
    _require_manager(by, job.society)
    with transaction.atomic():
        locked = DeidJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in DeidJob.ACTIVE_STATUSES:
            raise ValidationError(_("Only a pending or running job can be cancelled."), code="not_active")
        locked.finished_at = timezone.now()
        transition(locked, DEID_JOB, "cancel", extra_fields=["finished_at"])
        audit_record(action="deid.job_cancel", actor=by, target=locked, details={"done": locked.done})
    job.refresh_from_db()
    return job


# --- Processing (called by the tasks) -----------------------------------------------------------


def _subject_from_path(job: DeidJob, relative: str, keys: Any) -> str:
    parts = PurePosixPath(relative).parts
    if len(parts) < 2 or not job.institution_code:
        return ""
    try:
        return keys.pseudonym(institution_code=job.institution_code, patient_id=parts[0])
    except ValueError:
        return ""


def _table_roles_for(job: DeidJob, relative: str) -> dict[str, str] | None:
    roles = job.table_roles or {}
    return roles.get(relative) or roles.get(PurePosixPath(relative).name) or roles.get("*")


def _store(job: DeidJob, relative: str, produced: Path) -> tuple[str, str, int]:
    key = output_key(job, relative)
    sha, size = _digest(produced)
    if default_storage.exists(key):
        default_storage.delete(key)
    with open(produced, "rb") as handle:
        saved = default_storage.save(key, File(handle))
    return saved, sha, size


def deid_process_file(
    *, job: DeidJob, relative: str, profile: Any, keys: Any, burned_in_reviewed: bool = False
) -> DeidFileResult:
    """De-identify one source file, store its output and record (or overwrite) its result.

    ``burned_in_reviewed``: a reviewer found no burned-in text (see ``deid_file_review``)."""
    from portal.anonymiser.dispatch import deidentify_path

    values: dict[str, Any] = {"storage_key": "", "sha256": "", "size": 0, "reason": "", "actions": {}}
    with tempfile.TemporaryDirectory(prefix="deid-") as work:
        produced = Path(work) / ("out" + PurePosixPath(relative).suffix)
        try:
            with _LocalSource(job, relative) as local:
                report: FileReport = deidentify_path(
                    local, produced, profile=profile, keys=keys, table_roles=_table_roles_for(job, relative),
                    **({"burned_in_reviewed": True} if burned_in_reviewed else {}),
                )
        except DeidError as error:
            report = FileReport(kind="", reason=error.reason)
            status = DeidFileResult.Status.FAILED
        except OSError as error:
            report = FileReport(kind="", reason=f"{type(error).__name__}: {error}")
            status = DeidFileResult.Status.FAILED
        else:
            if report.held_back:
                status = DeidFileResult.Status.HELD_BACK
            elif report.changed:
                status = DeidFileResult.Status.CHANGED
            else:
                status = DeidFileResult.Status.UNCHANGED
            if not report.held_back and produced.exists():
                values["storage_key"], values["sha256"], values["size"] = _store(job, relative, produced)
        pseudonym = report.subject_pseudonym or (
            _subject_from_path(job, relative, keys) if status in DeidFileResult.RELEASABLE else ""
        )
        values.update(
            kind=report.kind, status=status, reason=report.reason[:2000], actions=dict(report.actions),
            subject_pseudonym=pseudonym, study_date=report.study_date, modality=report.modality,
            media_type=report.media_type,
        )
    return _record(job, relative, values)


def _record(job: DeidJob, relative: str, values: dict[str, Any]) -> DeidFileResult:
    for attempt in range(2):
        try:
            with transaction.atomic():
                previous = (
                    DeidFileResult.objects.select_for_update()
                    .filter(job=job, source_path=relative).values_list("status", flat=True).first()
                )
                result, _created = DeidFileResult.objects.update_or_create(
                    job=job, source_path=relative, defaults=values
                )
                deltas: dict[str, Any] = {}
                if previous is None:
                    deltas["done"] = F("done") + 1
                for field, status in (("held_back", DeidFileResult.Status.HELD_BACK),
                                      ("failed", DeidFileResult.Status.FAILED)):
                    change = int(values["status"] == status) - int(previous == status)
                    if change:
                        deltas[field] = F(field) + change
                if deltas:
                    DeidJob.objects.filter(pk=job.pk).update(**deltas)
                return result
        except IntegrityError:  # the same file recorded at the same moment by another task
            if attempt:
                raise
    raise AssertionError("unreachable")


def _job_report(job: DeidJob) -> dict[str, Any]:
    actions: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for kind, status, file_actions in job.results.values_list("kind", "status", "actions").iterator():
        kinds[kind or "unknown"] += 1
        statuses[status] += 1
        actions.update({str(k): int(v) for k, v in (file_actions or {}).items()})
    return {
        "profile": "basic", "options": list(job.options or ()), "table_edition": TABLE_EDITION,
        "institution_code": job.institution_code, "actions": dict(sorted(actions.items())),
        "files_by_kind": dict(sorted(kinds.items())), "files_by_status": dict(sorted(statuses.items())),
    }


def deid_job_finish_if_complete(*, job_id: int) -> bool:
    """Set the final status once every file has a result (called after each chunk; safe to repeat)."""
    with transaction.atomic():
        job = DeidJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != DeidJob.Status.RUNNING:
            return False
        if job.results.count() < job.total:
            return False
        failed = job.results.filter(status=DeidFileResult.Status.FAILED).count()
        held = job.results.filter(status=DeidFileResult.Status.HELD_BACK).count()
        outcome = "fail" if failed == job.total else "finish_with_failures" if failed else "finish"
        job.done, job.failed, job.held_back = job.total, failed, held
        job.finished_at = timezone.now()
        job.report = _job_report(job)
        transition(job, DEID_JOB, outcome, extra_fields=["done", "failed", "held_back", "finished_at", "report"])
        audit_record(action="deid.job_finish", actor=None, actor_email="deid-worker", target=job, details={
            "status": job.status, "total": job.total, "failed": failed, "held_back": held,
        })
    return True


# --- Release ------------------------------------------------------------------------------------


def release_entries(job: DeidJob) -> tuple[list[Any], int]:
    """The manifest entries of a job's releasable files, and how many other files were left out."""
    entries = []
    subjects: dict[str, int] = {}
    left_out = 0
    counts: Counter[int] = Counter()
    rows = job.results.order_by("subject_pseudonym", "source_path").values_list(
        "status", "storage_key", "size", "sha256", "media_type", "subject_pseudonym", "study_date",
        "modality", "source_path",
    )
    for status, key, size, sha, media, pseudonym, study_date, modality, source in rows.iterator():
        if status not in DeidFileResult.RELEASABLE or not key or not pseudonym:
            left_out += 1
            continue
        subject = subjects.setdefault(pseudonym, len(subjects) + 1)
        counts[subject] += 1
        suffix = PurePosixPath(source).suffix.lower()[:10]
        entries.append(ManifestEntry(
            path=f"s{subject:05d}/{counts[subject]:06d}{suffix}", storage_key=key, size=size, sha256=sha,
            media_type=media or "application/octet-stream", subject_pseudonym=pseudonym,
            study_date=study_date, modality=modality,
        ))
    return entries, left_out


def deid_job_build_release(
    *, job: DeidJob, notes_ja: str = "", notes_en: str = "", by: Any, include_partial: bool = False
) -> DatasetRelease:
    """A release of ``job.dataset`` from the job's changed/unchanged outputs (see the module notes)."""
    _require_manager(by, job.society)
    job.refresh_from_db()
    if job.dataset_id is None:
        raise ValidationError(_("The job names no dataset to release."), code="no_dataset")
    if job.release_id is not None:
        raise ValidationError(_("A release was already built from this job."), code="already_released")
    if job.status == DeidJob.Status.FINISHED_WITH_FAILURES and not include_partial:
        raise ValidationError(
            _("Some files failed. Confirm that the release should hold only the files that succeeded."),
            code="partial",
        )
    if job.status not in (DeidJob.Status.FINISHED, DeidJob.Status.FINISHED_WITH_FAILURES):
        raise ValidationError(_("Only a finished job can become a release."), code="not_finished")
    entries, left_out = release_entries(job)
    with transaction.atomic():
        locked = DeidJob.objects.select_for_update().get(pk=job.pk)
        if locked.release_id is not None:
            raise ValidationError(_("A release was already built from this job."), code="already_released")
        release = release_build(
            dataset=job.dataset, entries=entries, source=DatasetRelease.Source.DEID_JOB, by=by,
            source_reference=f"deid-job-{job.pk}", notes_ja=notes_ja, notes_en=notes_en,
        )
        locked.release = release
        locked.report = {**locked.report, "release": {
            "release_id": release.pk, "version": release.version, "files": len(entries),
            "not_released": left_out, "include_partial": include_partial,
        }}
        locked.save(update_fields=["release", "report"])
        audit_record(action="deid.job_release", actor=by, target=locked, details={
            "release": release.pk, "files": len(entries), "not_released": left_out,
            "include_partial": include_partial,
        })
    job.refresh_from_db()
    return release


# --- Review of held-back files ------------------------------------------------------------------

REVIEW_DECISIONS = ("no_burned_in_text", "withhold")


def _source_readable(job: DeidJob, relative: str) -> bool:
    if job.source_kind == DeidJob.SourceKind.SERVER_FOLDER:
        return (Path(job.source) / relative).is_file()
    prefix = job.upload_prefix if job.source_kind == DeidJob.SourceKind.UPLOAD else job.source
    try:
        return default_storage.exists(f"{prefix.rstrip('/')}/{relative}")
    except OSError:
        return False


def deid_file_review(*, result: DeidFileResult, decision: str, note: str = "", by: Any) -> DeidFileResult:
    """Decide on a held-back file of a finished job that has no release yet.

    ``no_burned_in_text``: the reviewer found no burned-in text; the source file is processed again
    with the hold-back waived (a matching rule still masks), so the file becomes releasable; the
    job's counters and report are recomputed. ``withhold``: the file stays held back, marked
    reviewed. Both are audited as ``deid.file_reviewed``.
    """
    job = result.job
    _require_manager(by, job.society)
    note = (note or "").strip()
    if decision not in REVIEW_DECISIONS:
        raise ValidationError({"decision": [_("Choose a review decision.")]}, code="decision")
    if len(note) > 2000:
        raise ValidationError({"note": [_("The note is too long (2,000 characters at most).")]}, code="note")
    with transaction.atomic():
        locked = DeidJob.objects.select_for_update().get(pk=job.pk)
        if locked.release_id is not None:
            raise ValidationError(
                _("A release was already built from this job and cannot change; build a new job instead."),
                code="released",
            )
        if locked.status not in (DeidJob.Status.FINISHED, DeidJob.Status.FINISHED_WITH_FAILURES):
            raise ValidationError(_("Only the files of a finished job can be reviewed."), code="not_finished")
        current = DeidFileResult.objects.select_for_update().get(pk=result.pk, job=locked)
        if current.status != DeidFileResult.Status.HELD_BACK:
            raise ValidationError(_("Only a held-back file can be reviewed."), code="not_held_back")
        if decision == "no_burned_in_text":
            if not _source_readable(locked, current.source_path):
                raise ValidationError(
                    _("The source file %(path)s can no longer be read, so it cannot be processed again.")
                    % {"path": current.source_path},
                    code="source_missing",
                )
            current = deid_process_file(
                job=locked, relative=current.source_path, profile=job_profile(locked), keys=portal_keys(),
                burned_in_reviewed=True,
            )
            if current.status not in DeidFileResult.RELEASABLE:
                raise ValidationError(
                    _("The file could not be processed again: %(reason)s") % {"reason": current.reason},
                    code="reprocess_failed",
                )
        current.reviewed_by = by
        current.reviewed_at = timezone.now()
        current.review_note = note
        current.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
        locked.refresh_from_db()
        if locked.report:
            locked.report = {**locked.report, **_job_report(locked)}
            locked.save(update_fields=["report"])
        audit_record(action="deid.file_reviewed", actor=by, target=locked, details={
            "result": current.pk, "source_path": current.source_path, "decision": decision, "note": note,
            "status": current.status,
        })
    result.refresh_from_db()
    job.refresh_from_db()
    return result
