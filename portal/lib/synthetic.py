"""Synthetic clinical-looking images for the demo and the tests: generated, never real patients.

Every image carries the words "SYNTHETIC" and "DEMO" in its pixels and, where the format has
metadata, says so there too, so that nobody mistakes it for patient data.
"""

from __future__ import annotations

import io
import random
from datetime import date

from PIL import Image, ImageDraw

# Output format per modality: what the societies' collections hold.
FORMATS = {
    "pathology_wsi": ("tiff", "image/tiff"),
    "endoscopy": ("jpg", "image/jpeg"),
    "ct": ("dcm", "application/dicom"),
    "mr": ("dcm", "application/dicom"),
    "xray": ("dcm", "application/dicom"),
    "fundus": ("jpg", "image/jpeg"),
    "ultrasound": ("png", "image/png"),
    "dermatology": ("jpg", "image/jpeg"),
}

_PALETTES = {
    "pathology_wsi": ((236, 200, 220), (150, 60, 140)),
    "endoscopy": ((200, 90, 80), (250, 180, 150)),
    "fundus": ((170, 60, 20), (250, 160, 60)),
    "dermatology": ((230, 190, 160), (150, 90, 70)),
    "ultrasound": ((10, 10, 10), (200, 200, 200)),
}


def synthetic_picture(modality: str, *, seed: int, size: int = 96) -> Image.Image:
    """A small image with blobs in the modality's colours and the words SYNTHETIC DEMO."""
    rng = random.Random(seed)  # noqa: S311 - pictures, not secrets
    background, foreground = _PALETTES.get(modality, ((0, 0, 0), (220, 220, 220)))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randrange(4, size // 4)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=foreground)
    draw.text((4, 4), "SYNTHETIC", fill=(255, 255, 0))
    draw.text((4, size - 14), "DEMO", fill=(255, 255, 0))
    return image


def synthetic_file(modality: str, *, seed: int, study_date: date, subject: str) -> tuple[bytes, str, str]:
    """(bytes, file extension, media type) of one synthetic image of ``modality``."""
    extension, media_type = FORMATS[modality]
    if extension == "dcm":
        return _dicom(modality, seed=seed, study_date=study_date, subject=subject), extension, media_type
    buffer = io.BytesIO()
    picture = synthetic_picture(modality, seed=seed)
    if extension == "jpg":
        picture.save(buffer, format="JPEG", quality=80)
    elif extension == "tiff":
        picture.save(buffer, format="TIFF", description="SYNTHETIC DEMO IMAGE - not patient data")
    else:
        picture.save(buffer, format="PNG")
    return buffer.getvalue(), extension, media_type


def _dicom(modality: str, *, seed: int, study_date: date, subject: str) -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    picture = synthetic_picture(modality, seed=seed, size=64).convert("L")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[subject, str(seed)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = generate_uid(entropy_srcs=[subject, study_date.isoformat()])
    dataset.SeriesInstanceUID = generate_uid(entropy_srcs=[subject, study_date.isoformat(), "s"])
    dataset.Modality = {"ct": "CT", "mr": "MR", "xray": "DX"}[modality]
    dataset.PatientID = subject
    dataset.PatientName = "SYNTHETIC^DEMO"
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "SYNTHETIC DEMO IMAGE - not patient data"
    dataset.StudyDate = study_date.strftime("%Y%m%d")
    dataset.Rows, dataset.Columns = picture.height, picture.width
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = picture.tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
