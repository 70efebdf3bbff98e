"""Burned-in text rules (data) and masking of uncompressed pixel data."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from portal.anonymiser import pixels
from tests.anonymiser.dicom_helpers import base_dataset, run, to_bytes


def test_shipped_rules_load_and_match_by_modality_and_manufacturer():
    rules = pixels.load_rules()
    assert rules.find(modality="us", manufacturer="Any Vendor").name.startswith("ultrasound")
    assert rules.find(modality="ES").name.startswith("endoscopy")
    assert rules.find(modality="CT") is None
    assert {"US", "ES"} <= rules.assume_burned_in_when_absent
    assert rules.find(modality="US").rectangles(600, 800) == [(0, 0, 48, 800)]


def test_rules_by_manufacturer_model_size_and_pixels():
    rules = pixels.load_rules(data={"rules": [
        {"name": "acme", "modality": "XC", "manufacturer": "^acme", "model": "cam 2", "rows": 4,
         "regions": [{"units": "pixels", "top": 1, "left": 1, "bottom": 3, "right": 9}]},
    ]})
    assert rules.find(modality="XC", manufacturer="ACME Corp", model="Cam 2", rows=4, columns=4).name == "acme"
    assert rules.find(modality="XC", manufacturer="Other", model="Cam 2", rows=4, columns=4) is None
    assert rules.find(modality="XC", manufacturer="ACME", model="Cam 3", rows=4, columns=4) is None
    assert rules.find(modality="XC", manufacturer="ACME", model="Cam 2", rows=5, columns=4) is None
    assert rules.rules[0].rectangles(4, 4) == [(1, 1, 3, 4)]  # clipped to the image


@pytest.mark.parametrize("planar", [0, 1])
def test_copy_masked_rgb_both_planar_configurations(planar):
    geometry = pixels.Geometry(rows=3, columns=4, samples=3, bits_allocated=8, planar=planar, frames=2)
    data = bytes([0xFF]) * geometry.pixel_bytes + b"\x00"  # odd-length pad byte
    out = io.BytesIO()
    masked = pixels.copy_masked(io.BytesIO(data), out, len(data), geometry, [(1, 1, 2, 3)])
    result = out.getvalue()
    assert len(result) == len(data)
    zeros = []
    for frame in range(2):
        for sample in range(3):
            for row in range(3):
                for col in range(4):
                    if planar == 0:
                        index = ((frame * 3 + row) * 4 + col) * 3 + sample
                    else:
                        index = ((frame * 3 + sample) * 3 + row) * 4 + col
                    if result[index] == 0:
                        zeros.append((frame, sample, row, col))
    expected = [(f, s, 1, c) for f in range(2) for s in range(3) for c in (1, 2)]
    assert sorted(zeros) == sorted(expected)
    assert masked == (2 if planar == 0 else 6)


def test_copy_masked_short_data_is_an_error():
    geometry = pixels.Geometry(rows=2, columns=2, samples=1, bits_allocated=16, planar=0, frames=1)
    with pytest.raises(EOFError):
        pixels.copy_masked(io.BytesIO(b"\0" * 4), io.BytesIO(), 4, geometry, [])


def us_dataset(**extra):
    ds = base_dataset()
    ds.Modality = "US"
    ds.Manufacturer = "Vendor"
    ds.Rows, ds.Columns = 25, 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = b"\x7f" * 100
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def test_ultrasound_header_band_is_masked_and_flag_set():
    report, out = run(to_bytes(us_dataset()))
    result = pydicom.dcmread(io.BytesIO(out))
    assert result.PixelData == bytes(8) + b"\x7f" * 92  # ceil(8% of 25 rows) = 2 rows of 4
    assert result.BurnedInAnnotation == "NO"
    assert report.modality == "ultrasound" and not report.held_back and report.actions["mask"] == 1


def test_burned_in_yes_without_a_rule_is_held_back_and_nothing_written():
    ds = base_dataset()
    ds.BurnedInAnnotation = "YES"
    report, out = run(to_bytes(ds))
    assert report.held_back and out == b""
    assert "BurnedInAnnotation is YES" in report.reason and "no burned-in text rule" in report.reason


def test_absent_flag_held_back_for_suspect_modalities_only():
    no_rules = pixels.load_rules(data={"assume_burned_in_when_absent": ["US"], "rules": []})
    report, out = run(to_bytes(us_dataset()), rules=no_rules)
    assert report.held_back and "absent" in report.reason and out == b""
    report, out = run(to_bytes(base_dataset()), rules=no_rules)  # CT, flag absent
    assert not report.held_back and out
    report, out = run(to_bytes(us_dataset(BurnedInAnnotation="NO")), rules=no_rules)
    assert not report.held_back and out


def compressed(ds):
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([b"\xff\xd8fake-jpeg\xff\xd9"])
    ds["PixelData"].VR = "OB"
    return ds


def test_compressed_pixels_needing_a_mask_are_held_back():
    report, out = run(to_bytes(compressed(us_dataset())))
    assert report.held_back and "compressed" in report.reason and out == b""


def test_compressed_pixels_without_burned_in_text_are_copied_unchanged():
    ds = compressed(base_dataset())
    data = to_bytes(ds)
    report, out = run(data)
    assert not report.held_back
    assert pydicom.dcmread(io.BytesIO(out)).PixelData == ds.PixelData


def test_unmaskable_layout_is_held_back():
    ds = us_dataset()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.PixelData = bytes(13) + b"\0"
    report, _ = run(to_bytes(ds))
    assert report.held_back and "cannot be masked" in report.reason


def test_elements_after_pixel_data_are_dropped():
    ds = base_dataset()
    ds.add_new(0xFFFCFFFC, "OB", b"LEAK-trailing")
    _, out = run(to_bytes(ds))
    assert b"LEAK-trailing" not in out and out.endswith(bytes(range(32)))
