"""Everything derived from the society-common secret key: pseudonyms, UIDs and date offsets.

One key (``PORTAL_PSEUDONYM_KEY`` in the portal's settings; passed in here, so this module needs no
Django) gives, at every society and in every job:

- the pseudonymous subject ID: HMAC-SHA-256(key, institution code ␟ normalised patient ID), first 32
  hex digits — the same patient at the same institution always gets the same pseudonym, and nobody
  without the key can compute or reverse it;
- replacement UIDs: ``2.25.<integer>`` from HMAC-SHA-256(key, "uid" ␟ original UID), so the same
  original UID maps to the same new UID in every file and every job;
- a per-subject date offset (Retain Longitudinal Temporal Information with Modified Dates): a whole
  number of days, from HMAC-SHA-256(key, "date" ␟ pseudonym), the same for every study of a subject.

The key is held by the platform operator and the contributing institutions' de-identification
stations only, never stored next to the data. Rotating it breaks linkage with everything made
before; a rotation therefore means re-processing from the sources.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass

PSEUDONYM_LENGTH = 32
# Offsets lie in [-MAX_OFFSET_DAYS, -MIN_OFFSET_DAYS]: always into the past, never zero.
MIN_OFFSET_DAYS = 30
MAX_OFFSET_DAYS = 3 * 365


def normalise_identifier(value: str) -> str:
    """Full-width digits and letters to half-width, spaces and hyphens removed, upper case."""
    text = unicodedata.normalize("NFKC", value or "")
    return re.sub(r"[\s\-‐－ー_]", "", text).upper()


@dataclass(frozen=True)
class Keys:
    key: bytes

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("The de-identification key is empty.")

    def _digest(self, *parts: str) -> bytes:
        return hmac.new(self.key, "\x1f".join(parts).encode(), hashlib.sha256).digest()

    def pseudonym(self, *, institution_code: str, patient_id: str) -> str:
        institution = normalise_identifier(institution_code)
        patient = normalise_identifier(patient_id)
        if not institution or not patient:
            raise ValueError("Both the institution code and the patient ID are needed for a pseudonym.")
        return hmac.new(self.key, f"{institution}\x1f{patient}".encode(), hashlib.sha256).hexdigest()[
            :PSEUDONYM_LENGTH
        ]

    def uid(self, original: str) -> str:
        """``2.25.<integer>`` (at most 64 characters) standing for ``original`` under this key."""
        number = int.from_bytes(self._digest("uid", original.strip())[:16], "big")
        return f"2.25.{number}"

    def date_offset_days(self, pseudonym: str) -> int:
        """Days to add to every date of this subject (negative: into the past)."""
        value = int.from_bytes(self._digest("date", pseudonym)[:8], "big")
        span = MAX_OFFSET_DAYS - MIN_OFFSET_DAYS + 1
        return -(MIN_OFFSET_DAYS + value % span)
