"""Synthetic demo images: each modality's format, readable, and marked as not patient data."""

from __future__ import annotations

import io
from datetime import date

import pydicom
import pytest
from PIL import Image

from portal.lib.synthetic import FORMATS, synthetic_file


@pytest.mark.parametrize("modality", sorted(FORMATS))
def test_synthetic_file_is_a_readable_image_of_the_modality_format(modality):
    content, extension, media_type = synthetic_file(modality, seed=3, study_date=date(2024, 1, 2), subject="s" * 32)

    assert (extension, media_type) == FORMATS[modality]
    if extension == "dcm":
        dataset = pydicom.dcmread(io.BytesIO(content))
        assert dataset.PatientIdentityRemoved == "YES"
        assert "SYNTHETIC" in dataset.DeidentificationMethod
        assert dataset.StudyDate == "20240102"
        assert (dataset.Rows, dataset.Columns, len(dataset.PixelData)) == (64, 64, 64 * 64)
    else:
        with Image.open(io.BytesIO(content)) as image:
            assert image.format == {"jpg": "JPEG", "png": "PNG", "tiff": "TIFF"}[extension]
            assert image.size == (96, 96)


def test_synthetic_file_is_the_same_for_the_same_seed_and_differs_otherwise():
    first = synthetic_file("endoscopy", seed=1, study_date=date(2024, 1, 2), subject="a" * 32)[0]
    again = synthetic_file("endoscopy", seed=1, study_date=date(2024, 1, 2), subject="a" * 32)[0]
    other = synthetic_file("endoscopy", seed=2, study_date=date(2024, 1, 2), subject="a" * 32)[0]

    assert first == again
    assert first != other
