"""The society-common pseudonymous subject ID: a keyed hash (HMAC-SHA256) of a patient identifier.

Every society computes the same pseudonym for the same patient at the same institution, so records
link across societies without anyone learning the patient ID. The key (``PORTAL_PSEUDONYM_KEY``) is
held by the platform and the contributing institutions only. A reproducible hash is still a linkage
code (連結符号): data carrying it are pseudonymised, not anonymised, in the APPI's terms.

The raw identifier is used here and nowhere else: callers pass it in, get the pseudonym back, and
must not store, log or audit what they passed.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from portal.anonymiser import keys

PSEUDONYM_LENGTH = 32
PSEUDONYM_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def normalise_identifier(value: str) -> str:
    """Full-width digits and letters to half-width, spaces and hyphens removed, upper case."""
    return keys.normalise_identifier(value)


@sensitive_variables("patient_id")
def subject_pseudonym(*, institution_code: str, patient_id: str) -> str:
    """The society-common pseudonym of one patient of one institution (32 lower-case hex digits).

    The same function as the de-identification service's (``portal.anonymiser.keys.Keys.pseudonym``)
    under the portal's key, so that requests and images agree.
    """
    if not normalise_identifier(patient_id):
        raise ValidationError(_("Enter the patient identifier."), code="required")
    if not normalise_identifier(institution_code):
        raise ValidationError(_("Enter the institution code."), code="required")
    return keys.Keys(settings.PORTAL_PSEUDONYM_KEY.encode()).pseudonym(
        institution_code=institution_code, patient_id=patient_id
    )


def is_pseudonym(value: str) -> bool:
    return bool(PSEUDONYM_PATTERN.match(value or ""))
