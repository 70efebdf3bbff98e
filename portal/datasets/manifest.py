"""Release manifests: what each file of a release is, and how a manifest is checked and read.

A manifest lists every file of a release with its pseudonymous subject, study date, modality and
the annotation file that goes with it. ``release_build`` receives it as ``ManifestEntry`` objects
whose files are already in storage; an import reads it from a CSV or TSV file first. Problems are
reported per file (``FileProblem``) so that the person importing can fix them all at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import IO

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.lib.pseudonym import PSEUDONYM_LENGTH

CHUNK_SIZE = 1024 * 1024
MANIFEST_NAMES = ("manifest.csv", "manifest.tsv")


@dataclass(frozen=True)
class ManifestColumn:
    """One column of a manifest: the parser reads these, the upload page documents them, and the
    example manifest is written from them, so the three cannot disagree."""

    name: str
    required: bool  # the header must have the column
    value_required: bool  # every row must fill it in
    meaning: Promise
    format: Promise
    examples: tuple[str, ...]  # one value per row of the example manifest; {modality}: the dataset's
    lower: bool = False  # read in lower case


# A pseudonym for examples only: 32 hexadecimal digits that no key produces on purpose.
EXAMPLE_PSEUDONYMS = ("3b9e0c7d5a1f48e2b6d4c8a0f2e1d3c5", "8d2f6a4c0e9b17d3a5c8e2f4b6d0a9c1")

MANIFEST_COLUMNS: tuple[ManifestColumn, ...] = (
    ManifestColumn(
        "path", True, True,
        gettext_lazy("The file, by its path in the release. When uploading in the browser, the file's name "
                     "exactly as uploaded."),
        gettext_lazy("A relative path with / between folders: no leading /, no “.” or “..”, and without the "
                     "subject's pseudonym. Each file once."),
        ("image0001.png", "image0001_mask.png", "image0002.png"),
    ),
    ManifestColumn(
        "subject_pseudonym", True, True,
        gettext_lazy("The society-common pseudonymous subject ID of the patient the file belongs to."),
        gettext_lazy("%(length)s lower-case hexadecimal digits (0–9, a–f), as the anonymisation tool writes "
                     "them; never the patient ID itself."),
        (EXAMPLE_PSEUDONYMS[0], EXAMPLE_PSEUDONYMS[0], EXAMPLE_PSEUDONYMS[1]),
    ),
    ManifestColumn(
        "study_date", True, False,
        gettext_lazy("The date the image was taken (or the specimen collected)."),
        gettext_lazy("YYYY-MM-DD, e.g. 2024-04-01; not in the future. May be left empty."),
        ("2024-04-01", "2024-04-01", ""),
    ),
    ManifestColumn(
        "modality", True, False,
        gettext_lazy("The kind of image."),
        gettext_lazy("One of the modality values listed below. Left empty, the dataset's modality."),
        ("{modality}", "{modality}", ""),
    ),
    ManifestColumn(
        "annotation_path", True, False,
        gettext_lazy("The annotation file that belongs to this image."),
        gettext_lazy("The path of another file listed in the same manifest. Empty when there is none, and on "
                     "the annotation file's own row."),
        ("image0001_mask.png", "", ""),
    ),
    ManifestColumn(
        "sha256", False, False,
        gettext_lazy("The file's SHA-256 checksum, to catch a file damaged on the way; the file is refused if "
                     "it differs."),
        gettext_lazy("64 hexadecimal digits. The column may be left out, or a value left empty: the portal "
                     "computes it."),
        ("", "", ""),
        lower=True,
    ),
)
REQUIRED_COLUMNS = tuple(column.name for column in MANIFEST_COLUMNS if column.required)
OPTIONAL_COLUMNS = tuple(column.name for column in MANIFEST_COLUMNS if not column.required)


def column_format(column: ManifestColumn) -> str:
    """The column's format, as the upload page states it."""
    return str(column.format) % {"length": PSEUDONYM_LENGTH}


def example_manifest_rows(modality: str) -> list[list[str]]:
    """The example manifest (header first) that the upload page offers, for a dataset of ``modality``."""
    count = len(MANIFEST_COLUMNS[0].examples)
    rows = [[column.name for column in MANIFEST_COLUMNS]]
    for index in range(count):
        rows.append([column.examples[index].format(modality=modality) for column in MANIFEST_COLUMNS])
    return rows


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a release, already in the default storage under ``storage_key``."""

    path: str
    storage_key: str
    size: int
    sha256: str
    media_type: str
    subject_pseudonym: str
    study_date: date | None = None
    modality: str = ""
    annotation_path: str = ""


@dataclass(frozen=True)
class FileProblem:
    """Something wrong with one file (``path`` is "" for the manifest as a whole)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class ManifestRow:
    """One row of an import manifest, as read and before its file is stored."""

    line: int
    path: str
    subject_pseudonym: str
    study_date: str
    modality: str
    annotation_path: str
    sha256: str = ""


def canonical_manifest(entries: Iterable[ManifestEntry]) -> bytes:
    """The manifest as a canonical TSV (sorted by path, no header), whose sha256 a release keeps."""
    lines = []
    for entry in sorted(entries, key=lambda e: e.path):
        fields = (
            entry.path, str(entry.size), entry.sha256, entry.media_type, entry.subject_pseudonym,
            entry.study_date.isoformat() if entry.study_date else "", entry.modality, entry.annotation_path,
        )
        lines.append("\t".join(fields) + "\n")
    return "".join(lines).encode("utf-8")


def manifest_sha256(entries: Iterable[ManifestEntry]) -> str:
    return hashlib.sha256(canonical_manifest(entries)).hexdigest()


def normalise_path(value: str) -> str | None:
    """A relative POSIX path without '.', '..' or empty parts, or None if it is not one."""
    text = (value or "").strip().replace("\\", "/")
    if not text or text.startswith("/"):
        return None
    parts = PurePosixPath(text).parts
    if any(part in {"", ".", ".."} for part in parts):
        return None
    return "/".join(parts)


def read_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_SIZE):
        yield chunk


def parse_manifest(handle: IO[bytes], name: str) -> tuple[list[ManifestRow], list[FileProblem]]:
    """Read a CSV or TSV manifest (UTF-8, BOM allowed, header row); TSV if ``name`` ends in .tsv."""
    problems: list[FileProblem] = []
    # The wrapper is detached at the end, so that the caller's handle stays theirs to close.
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    try:
        delimiter = "\t" if name.lower().endswith(".tsv") else ","
        reader = csv.DictReader(text, delimiter=delimiter)
        header = [column.strip() for column in (reader.fieldnames or [])]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            return [], [FileProblem(name, _("The manifest lacks the columns: %(columns)s.") % {
                "columns": ", ".join(missing)})]
        reader.fieldnames = header
        rows = []
        for record in reader:
            def value(column: str, record: dict = record) -> str:
                return (record.get(column) or "").strip()

            rows.append(ManifestRow(line=reader.line_num, **{
                column.name: value(column.name).lower() if column.lower else value(column.name)
                for column in MANIFEST_COLUMNS
            }))
    except (UnicodeDecodeError, csv.Error) as error:
        return [], [FileProblem(name, _("The manifest cannot be read: %(error)s") % {"error": error})]
    finally:
        text.detach()
    if not rows:
        problems.append(FileProblem(name, _("The manifest lists no files.")))
    return rows, problems


# --- Media types: by extension, confirmed by the first bytes where the format has a signature ----

_BY_EXTENSION = {
    ".dcm": "application/dicom",
    ".dicom": "application/dicom",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".svs": "image/tiff",
    ".ndpi": "image/tiff",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".xml": "application/xml",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".nii": "application/octet-stream",
    ".gz": "application/gzip",
    ".zip": "application/zip",
}


def sniff_media_type(path: str, head: bytes) -> str:
    """The media type of a file from its first bytes (at least 132) and, failing that, its name."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "application/dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] in {b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"}:
        return "image/tiff"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    suffix = PurePosixPath(path.lower()).suffix
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    return "application/octet-stream"
