"""The headline measure: a marked value in every attribute of Table E.1-1, none left by Basic.

A synthetic file gets ``LEAK-<tag>`` in every attribute of the table whose VR holds text or bytes
(dates, times, UIDs and codes included, valid or not), a unique number ``31337.<n>`` in the decimal
and integer strings (DS/IS), an item in every sequence that carries marked attributes itself and a
nested sequence two deep, private blocks (top level and nested), curves, overlays, trailing
padding. After the Basic Profile no marker may remain anywhere in the output bytes except in
attributes whose action is K (none under Basic).
"""

from __future__ import annotations

import io
import warnings

import pydicom
import pytest
from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from portal.anonymiser import annex_e
from tests.anonymiser.dicom_helpers import base_dataset, run, to_bytes

BINARY = {"OB", "OW", "UN", "OD", "OF", "OL", "OV"}
UNMARKABLE = {"US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"}


@pytest.fixture
def lenient():
    saved = config.settings.reading_validation_mode, config.settings.writing_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    config.settings.reading_validation_mode, config.settings.writing_validation_mode = saved


def marked_item(tag: int, depth: int) -> Dataset:
    item = Dataset()
    item.OperatorsName = f"LEAK-{tag:08x}-item"
    item.ReferencedSOPInstanceUID = f"LEAK-{tag:08x}-uid"
    block = item.private_block(0x0029, "LEAK CREATOR", create=True)
    block.add_new(0x01, "LO", f"LEAK-{tag:08x}-private")
    if depth < 2:
        item.InstitutionName = f"LEAK-{tag:08x}-depth{depth}"
        # A sequence outside the table, so that depth two is reached whatever the table says.
        item.DerivationCodeSequence = Sequence([marked_item(tag, depth + 1)])
    return item


def build_corpus() -> tuple[pydicom.Dataset, dict[str, int]]:
    ds = base_dataset()
    counts = {"marked": 0, "unmarkable": 0, "meta": 0, "command": 0, "numeric_marked": 0}
    number = 0
    for tag in annex_e.load_table().exact:
        if tag >> 16 == 0x0002:
            counts["meta"] += 1  # file meta: MediaStorageSOPInstanceUID, already in the meta group
            continue
        if tag >> 16 == 0x0000:
            counts["command"] += 1  # command elements cannot be written into a file
            continue
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr in UNMARKABLE:
            counts["unmarkable"] += 1
            continue
        if vr == "SQ":
            ds.add_new(tag, "SQ", Sequence([marked_item(tag, 1)]))
        elif vr in BINARY:
            ds.add_new(tag, vr, f"LEAK-{tag:08x}".encode())
        elif vr in ("DS", "IS"):
            number += 1
            value = f"31337.{number:04d}" if vr == "DS" else f"31337{number:04d}"
            ds.add_new(tag, vr, value)
            counts["numeric_marked"] += 1
        else:
            ds.add_new(tag, vr, f"LEAK-{tag:08x}")
        counts["marked"] += 1
    ds.PatientID = "LEAK-00100020"
    ds.file_meta.MediaStorageSOPInstanceUID = "LEAK-00020003"
    for group in (0x0009, 0x0011, 0x4321):
        block = ds.private_block(group, f"LEAK CREATOR {group:04x}", create=True)
        block.add_new(0x10, "LO", f"LEAK-private-{group:04x}")
        block.add_new(0x11, "OB", f"LEAK-private-ob-{group:04x}".encode())
        block.add_new(0x12, "SQ", Sequence([marked_item(group, 1)]))
    ds.add_new(0x50000010, "US", 1)
    ds.add_new(0x50002000, "OB", b"LEAK-curve")
    ds.add_new(0x60003000, "OW", b"LEAK-overlay")
    ds.add_new(0x60004000, "LT", "LEAK-overlay-comment")
    return ds, counts


def test_no_marked_value_survives_the_basic_profile(lenient):
    ds, counts = build_corpus()
    data = to_bytes(ds)
    assert data.count(b"LEAK-") > 600
    report, out = run(data)
    kept_by_k = report.actions["K"]
    assert kept_by_k == 0  # Basic has no K action
    assert out.count(b"LEAK-") == 0, [out[i - 40 : i + 30] for i in range(len(out)) if out.startswith(b"LEAK-", i)][:5]
    result = pydicom.dcmread(io.BytesIO(out))
    numbers = [e for e in result.iterall() if e.VR in ("DS", "IS") and "31337" in str(e.value)]
    assert numbers == []
    # What was marked: every exact attribute of the table but the meta one and the binary numbers.
    assert counts == {"marked": 612, "unmarkable": 2, "meta": 1, "command": 2, "numeric_marked": 15}
    assert result.PatientIdentityRemoved == "YES"
    assert result.PixelData == bytes(range(32))


def test_marked_values_kept_only_where_an_option_says_k(lenient):
    ds, _ = build_corpus()
    _, out = run(to_bytes(ds), options={"INST"})
    exact, _ = annex_e.actions_for(frozenset({"INST"}))
    kept = {tag for tag, action in exact.items() if action == "K"}
    left = set()
    for i in range(len(out)):
        if out.startswith(b"LEAK-", i):
            marker = out[i : i + 40].split(b"\0")[0].split(b" ")[0].decode()
            # Nested InstitutionName markers carry the enclosing sequence's tag and "-depth".
            left.add(0x00080080 if "-depth" in marker else int(marker[5:13], 16))
    assert left and left <= kept
    assert 0x00080080 in left and 0x00081040 in left  # InstitutionName, InstitutionalDepartmentName
