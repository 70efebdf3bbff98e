"""Helpers for the datasets services' tests: pseudonyms, stored files, manifests and import folders."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from portal.datasets.manifest import ManifestEntry
from portal.lib.pseudonym import subject_pseudonym

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24


def pseudonym(patient: str, institution: str = "H001") -> str:
    return subject_pseudonym(institution_code=institution, patient_id=patient)


def stored_entry(path: str, content: bytes, *, subject: str, study_date: date | None = date(2024, 4, 1),
                 modality: str = "", annotation_path: str = "", media_type: str = "image/png",
                 prefix: str = "incoming-test/") -> ManifestEntry:
    """A manifest entry whose file was written to the default storage."""
    key = default_storage.save(prefix + path, ContentFile(content))
    return ManifestEntry(
        path=path, storage_key=key, size=len(content), sha256=hashlib.sha256(content).hexdigest(),
        media_type=media_type, subject_pseudonym=subject, study_date=study_date, modality=modality,
        annotation_path=annotation_path,
    )


def write_folder(folder: Path, files: dict[str, bytes], rows: list[dict[str, str]], *,
                 manifest: str = "manifest.csv") -> Path:
    """A folder with ``files`` and a manifest of ``rows`` (CSV, or TSV when the name ends in .tsv)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    columns = ["path", "subject_pseudonym", "study_date", "modality", "annotation_path", "sha256"]
    with (folder / manifest).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t" if manifest.endswith(".tsv") else ",")
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in columns})
    return folder


def row(path: str, subject: str, study_date: str = "2024-04-01", **extra: str) -> dict[str, str]:
    return {"path": path, "subject_pseudonym": subject, "study_date": study_date, **extra}


def storage_files(root: Path) -> list[str]:
    """Every file under a FileSystemStorage's location, relative, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
