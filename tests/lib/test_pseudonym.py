"""The society-common pseudonym: keyed, stable, and blind to how the ID was typed."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.core.exceptions import ValidationError

from portal.lib.pseudonym import is_pseudonym, normalise_identifier, subject_pseudonym


def test_pseudonym_is_the_hmac_of_institution_and_patient(settings):
    settings.PORTAL_PSEUDONYM_KEY = "k1"
    expected = hmac.new(b"k1", b"H001\x1f12345", hashlib.sha256).hexdigest()[:32]

    assert subject_pseudonym(institution_code="H001", patient_id="12345") == expected


def test_pseudonym_ignores_full_width_digits_spaces_and_hyphens(settings):
    settings.PORTAL_PSEUDONYM_KEY = "k1"
    plain = subject_pseudonym(institution_code="h001", patient_id="0012-345")

    assert subject_pseudonym(institution_code="Ｈ００１", patient_id="００１２ ３４５") == plain
    assert normalise_identifier(" ａｂ-1 ") == "AB1"


def test_pseudonym_depends_on_the_key_and_the_institution(settings):
    settings.PORTAL_PSEUDONYM_KEY = "k1"
    first = subject_pseudonym(institution_code="H001", patient_id="12345")
    other_institution = subject_pseudonym(institution_code="H002", patient_id="12345")
    settings.PORTAL_PSEUDONYM_KEY = "k2"
    other_key = subject_pseudonym(institution_code="H001", patient_id="12345")

    assert len({first, other_institution, other_key}) == 3
    assert all(is_pseudonym(value) for value in (first, other_institution, other_key))


@pytest.mark.parametrize(("institution", "patient"), [("H001", " "), ("", "12345")])
def test_pseudonym_refuses_empty_parts(institution, patient):
    with pytest.raises(ValidationError):
        subject_pseudonym(institution_code=institution, patient_id=patient)


def test_is_pseudonym_accepts_only_32_lower_hex_digits():
    assert is_pseudonym("0" * 32)
    assert not is_pseudonym("0" * 31)
    assert not is_pseudonym("G" * 32)
    assert not is_pseudonym("")
