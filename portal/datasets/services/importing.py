"""Importing files that are already anonymised: from a folder on the server or an upload.

Both copy the files to the storage, then build the release with ``release_build``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.datasets.manifest import (
    MANIFEST_NAMES,
    FileProblem,
    ManifestEntry,
    ManifestRow,
    normalise_path,
    parse_manifest,
    read_chunks,
    sniff_media_type,
)
from portal.datasets.models import (
    Dataset,
    DatasetRelease,
)
from portal.datasets.services.common import ReleaseRejected, _require_manager
from portal.datasets.services.releases import (
    _delete_objects,
    _refusals,
    _static_problems,
    release_build,
)

UPLOAD_MAX_FILES = 500


UPLOAD_MAX_BYTES = 200 * 1024 * 1024


PROGRESS_EVERY = 100


def upload_max_files() -> int:
    """Files per upload: 500, or fewer if Django refuses more in one request (the manifest is one)."""
    django_limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return UPLOAD_MAX_FILES if django_limit is None else min(UPLOAD_MAX_FILES, django_limit - 1)


@dataclass
class ImportProgress:
    files: int = 0
    bytes: int = 0
    total_files: int = 0
    started: float = 0.0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


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
