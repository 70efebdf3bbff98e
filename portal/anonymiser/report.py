"""What de-identifying one file did: the result every handler returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date


class DeidError(Exception):
    """The file cannot be de-identified (malformed, truncated, unsupported); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FileReport:
    kind: str  # "dicom", "photo", "wsi", "table"
    changed: bool = False
    # Held back for review, not released (e.g. burned-in text no rule covers).
    held_back: bool = False
    reason: str = ""
    # Counts per action code (D, Z, X, K, C, U, ...) or per kind of change ("exif", "label", ...).
    actions: Counter[str] = field(default_factory=Counter)
    subject_pseudonym: str = ""
    study_date: date | None = None
    modality: str = ""  # portal.core.vocabulary.Modality value where known
    media_type: str = ""
