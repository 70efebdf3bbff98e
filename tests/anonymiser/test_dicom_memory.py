"""Memory does not scale with the file: pixel data is copied (and masked) in chunks."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pydicom

from portal.anonymiser.dicom import Profile, deidentify_dicom
from tests.anonymiser.dicom_helpers import KEYS, base_dataset

FRAME = 512 * 512 * 2


def write_multiframe(path: Path, frames: int, *, modality: str = "CT", value: int = 0x41) -> None:
    ds = base_dataset()
    del ds.PixelData
    ds.Modality = modality
    ds.Rows = ds.Columns = 512
    ds.NumberOfFrames = frames
    ds.BurnedInAnnotation = "NO"
    ds.save_as(path, enforce_file_format=True)
    chunk = bytes([value]) * FRAME
    with open(path, "ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, FRAME * frames))
        for _ in range(frames):
            handle.write(chunk)


def peak_of(src: Path, dst: Path) -> int:
    tracemalloc.start()
    try:
        deidentify_dicom(src, dst, profile=Profile(institution_code="INST01"), keys=KEYS)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_is_flat_in_the_size_of_the_file(tmp_path):
    small, large = tmp_path / "small.dcm", tmp_path / "large.dcm"
    write_multiframe(small, 4)  # 2 MiB of pixels
    write_multiframe(large, 160)  # 80 MiB of pixels
    peak_of(small, tmp_path / "warmup.dcm")
    small_peak = peak_of(small, tmp_path / "small-out.dcm")
    large_peak = peak_of(large, tmp_path / "large-out.dcm")
    assert large.stat().st_size > 80 * 2**20
    assert large_peak < 4 * 2**20, large_peak  # a few chunks, not 80 MiB
    assert large_peak < small_peak + 2**20
    out = tmp_path / "large-out.dcm"
    assert out.stat().st_size > 80 * 2**20
    header = pydicom.dcmread(out, stop_before_pixels=True)
    assert header.PatientID == KEYS.pseudonym(institution_code="INST01", patient_id="12345")
    with open(out, "rb") as handle:
        handle.seek(-FRAME, 2)
        assert handle.read(FRAME) == b"\x41" * FRAME


def test_masking_a_large_multiframe_file_streams(tmp_path):
    src = tmp_path / "us.dcm"
    write_multiframe(src, 120, modality="US")  # 60 MiB, ultrasound header band rule
    tracemalloc.start()
    try:
        report = deidentify_dicom(src, tmp_path / "us-out.dcm", profile=Profile(institution_code="I"), keys=KEYS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * 2**20, peak
    assert report.actions["mask"] == 1 and report.actions["masked_lines"] == 120 * 41  # ceil(8% of 512)
    out = tmp_path / "us-out.dcm"
    with open(out, "rb") as handle:
        handle.seek(-FRAME, 2)
        last = handle.read(FRAME)
    band = 41 * 512 * 2
    assert last[:band] == bytes(band) and last[band:] == b"\x41" * (FRAME - band)
