"""deidentify_dicom: actions, options, sequences, private blocks, names, keys, dates, errors."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from portal.anonymiser.report import DeidError
from tests.anonymiser.dicom_helpers import (
    KEYS,
    OTHER_KEYS,
    SOP_INSTANCE,
    STUDY,
    base_dataset,
    nested,
    run,
    to_bytes,
)


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_basic_profile_actions_on_a_ct_file():
    report, out = run(to_bytes(base_dataset()))
    ds = read(out)
    pseudonym = KEYS.pseudonym(institution_code="INST01", patient_id="12345")
    assert report.subject_pseudonym == pseudonym
    assert ds.PatientID == pseudonym and str(ds.PatientName) == pseudonym
    # X: removed
    assert "PatientAge" not in ds and "StudyDescription" not in ds and "SeriesDescription" not in ds
    # Z: present, empty
    assert ds.StudyDate == "" and ds.StudyTime == "" and ds.AccessionNumber == "" and ds.ReferringPhysicianName == ""
    assert ds.PatientBirthDate == "" and ds.PatientSex == ""
    # X/Z/D and X/D -> D: dummy values
    assert ds.InstitutionName == "ANONYMIZED" and ds.StationName == "ANONYMIZED"
    assert ds.DeviceSerialNumber == "ANONYMIZED" and str(ds.OperatorsName) == "ANONYMIZED"
    assert ds.AcquisitionDateTime == "19000101000000" and ds.SeriesDate == "19000101"
    # U: UIDs replaced consistently, file meta included
    assert ds.SOPInstanceUID == KEYS.uid(SOP_INSTANCE) == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.StudyInstanceUID == KEYS.uid(STUDY)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    # Kept: not in the table
    assert ds.Modality == "CT" and ds.Rows == 4 and ds.PixelData == bytes(range(32))
    # Stamps
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == "PS3.15 Annex E Basic Profile, Table E.1-1 2024b"
    assert [(i.CodeValue, i.CodingSchemeDesignator) for i in ds.DeidentificationMethodCodeSequence] == [
        ("113100", "DCM")
    ]
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.preamble == b"\0" * 128
    assert report.modality == "ct" and report.study_date is None and report.changed
    assert not report.held_back
    assert report.actions["pseudonym"] == 2 and report.actions["U"] == 4
    assert report.actions["D"] == 6 and report.actions["Z"] == 6
    assert report.actions["X"] == 4  # three attributes and the meta group's SourceApplicationEntityTitle


def test_implicit_vr_file_is_handled_the_same():
    _, out = run(to_bytes(base_dataset(implicit=True)))
    ds = read(out)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert ds.InstitutionName == "ANONYMIZED" and ds.PixelData == bytes(range(32))


def test_empty_uid_and_dummy_of_every_vr():
    from portal.anonymiser.dicom import _DUMMIES

    ds = base_dataset()
    ds.add_new(0x00400555, "SQ", Sequence([Dataset()]))  # AcquisitionContextSequence X/Z -> Z
    ds.ReferencedImageSequence = Sequence([Dataset()])  # X/Z/U* -> U, kept
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = SOP_INSTANCE
    _, out = run(to_bytes(ds))
    result = read(out)
    assert len(result.AcquisitionContextSequence) == 0
    assert result.ReferencedImageSequence[0].ReferencedSOPInstanceUID == KEYS.uid(SOP_INSTANCE)
    assert set(_DUMMIES) >= {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                             "TM", "UC", "UT", "OB", "OW", "UN", "US", "UL", "FL", "FD"}


def test_sequences_nested_two_deep_are_cleaned():
    ds = base_dataset()
    nested(ds)
    _, out = run(to_bytes(ds))
    result = read(out)
    middle = result.SourceImageSequence[0]
    inner = middle.ReferencedImageSequence[0]
    assert middle.ReferencedSOPInstanceUID == KEYS.uid(STUDY + ".9")
    assert middle.StudyDate == "" and str(middle.OperatorsName) == "ANONYMIZED"
    assert inner.ReferencedSOPInstanceUID == KEYS.uid(SOP_INSTANCE) == result.SOPInstanceUID
    assert str(inner.PatientName) == "" and inner.InstitutionName == "ANONYMIZED"
    assert b"INNER" not in out and b"MIDDLE" not in out and b"Inner Hospital" not in out


def private_dataset() -> pydicom.Dataset:
    ds = base_dataset()
    block = ds.private_block(0x0019, "ACME PRIVATE", create=True)
    block.add_new(0x10, "LO", "PRIVATE-SECRET")
    block.add_new(0x11, "OB", b"PRIVATE-BYTES")
    item = Dataset()
    inner_block = item.private_block(0x0029, "ACME INNER", create=True)
    inner_block.add_new(0x01, "LO", "NESTED-PRIVATE")
    item.CodeMeaning = "kept"
    ds.DerivationCodeSequence = Sequence([item])
    return ds


def test_private_attributes_and_creators_are_removed():
    report, out = run(to_bytes(private_dataset()))
    result = read(out)
    assert not [e for e in result.iterall() if e.tag.is_private]
    assert b"PRIVATE" not in out
    assert result.DerivationCodeSequence[0].CodeMeaning == "kept"
    assert report.actions["private"] == 5


def test_retain_safe_private_keeps_only_the_safe_list(monkeypatch):
    from portal.anonymiser import annex_e

    _, out = run(to_bytes(private_dataset()), options={"SP"})
    assert not [e for e in read(out).iterall() if e.tag.is_private]  # the shipped list is empty
    monkeypatch.setattr(annex_e, "safe_private", lambda: frozenset({(0x0019, "ACME PRIVATE", 0x11)}))
    report, out = run(to_bytes(private_dataset()), options={"SP"})
    result = read(out)
    kept = sorted(e.tag for e in result.iterall() if e.tag.is_private)
    assert kept == [0x00190010, 0x00191011]
    assert b"PRIVATE-SECRET" not in out and b"NESTED-PRIVATE" not in out
    assert report.actions["K"] == 2


def test_curves_and_overlays_are_removed():
    ds = base_dataset()
    ds.add_new(0x50000010, "US", 2)
    ds.add_new(0x50003000, "OW", b"CURVEDAT")
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60003000, "OW", b"OVERLAYD")
    ds.add_new(0x60004000, "LT", "overlay comment")
    _, out = run(to_bytes(ds))
    result = read(out)
    assert not [t for t in result.keys() if 0x5000 <= t >> 16 <= 0x60FF]  # noqa: SIM118
    assert b"CURVEDAT" not in out and b"OVERLAYD" not in out


@pytest.mark.parametrize(
    ("option", "check"),
    [
        ("UID", lambda ds: ds.SOPInstanceUID == SOP_INSTANCE and ds.file_meta.MediaStorageSOPInstanceUID == SOP_INSTANCE),
        ("DEV", lambda ds: ds.DeviceSerialNumber == "SN1234" and ds.StationName == "CT01"),
        ("INST", lambda ds: ds.InstitutionName == "Tokyo Hospital"),
        ("PAT", lambda ds: ds.PatientAge == "064Y" and ds.PatientSex == "M"),
        ("DESC", lambda ds: ds.StudyDescription == "" and ds.SeriesDescription == ""),
        ("LFD", lambda ds: ds.StudyDate == "20240501" and ds.LongitudinalTemporalInformationModified == "UNMODIFIED"),
        ("LMD", lambda ds: ds.StudyDate not in ("", "20240501") and ds.LongitudinalTemporalInformationModified == "MODIFIED"),
        ("SP", lambda ds: ds.InstitutionName == "ANONYMIZED"),
    ],
)
def test_each_option(option, check):
    from portal.anonymiser.annex_e import OPTION_CODES

    _, out = run(to_bytes(base_dataset()), options={option})
    ds = read(out)
    assert check(ds)
    codes = [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100", OPTION_CODES[option][0]]
    assert list(ds.DeidentificationMethod)[1] == f"Options: {option}"


def test_clean_descriptors_keeps_a_dummy_where_basic_would():
    ds = base_dataset()
    ds.ProtocolName = "Yamada protocol"  # X/D, DESC C
    _, out = run(to_bytes(ds), options={"DESC"})
    assert read(out).ProtocolName == "ANONYMIZED"


def test_dates_shift_consistently_within_a_subject_and_times_stay():
    first = base_dataset()
    second = base_dataset()
    second.StudyDate = "20240610"
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = SOP_INSTANCE + ".2"
    nested(second)
    r1, out1 = run(to_bytes(first), options={"LMD"})
    r2, out2 = run(to_bytes(second), options={"LMD"})
    offset = KEYS.date_offset_days(r1.subject_pseudonym)
    assert r1.subject_pseudonym == r2.subject_pseudonym and offset < 0
    d1, d2 = read(out1), read(out2)
    assert d1.StudyDate == (date(2024, 5, 1) + timedelta(days=offset)).strftime("%Y%m%d")
    assert d2.StudyDate == (date(2024, 6, 10) + timedelta(days=offset)).strftime("%Y%m%d")
    assert r2.study_date - r1.study_date == timedelta(days=40)
    assert d1.AcquisitionDateTime == (date(2024, 5, 1) + timedelta(days=offset)).strftime("%Y%m%d") + "101010.5+0900"
    assert d1.StudyTime == "101010"
    assert d2.SourceImageSequence[0].StudyDate == d2.StudyDate[:0] + (date(2024, 5, 1) + timedelta(days=offset)).strftime("%Y%m%d")
    assert d1.PatientBirthDate == ""  # Basic Z; LMD does not retain birth dates
    other = base_dataset(patient_id="99999")
    r3, _ = run(to_bytes(other), options={"LMD"})
    assert KEYS.date_offset_days(r3.subject_pseudonym) != offset or r3.subject_pseudonym != r1.subject_pseudonym


def test_same_key_same_mapping_other_key_other_mapping():
    data = to_bytes(base_dataset())
    r1, out1 = run(data)
    r2, out2 = run(data)
    r3, out3 = run(data, keys=OTHER_KEYS)
    assert out1 == out2 and r1.subject_pseudonym == r2.subject_pseudonym
    a, c = read(out1), read(out3)
    assert r3.subject_pseudonym != r1.subject_pseudonym and c.PatientID != a.PatientID
    assert c.SOPInstanceUID != a.SOPInstanceUID and c.StudyInstanceUID != a.StudyInstanceUID
    # Same patient, written with full-width digits at another society: same pseudonym.
    fullwidth = base_dataset(patient_id="１２３４５")
    fullwidth.SpecificCharacterSet = "ISO_IR 192"
    r4, _ = run(to_bytes(fullwidth))
    assert r4.subject_pseudonym == r1.subject_pseudonym


def test_japanese_names_in_iso_2022_ir_87():
    ds = base_dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.ReferringPhysicianName = "Sato^Hanako=佐藤^花子=さとう^はなこ"
    item = Dataset()
    item.CodeMeaning = "胸部ＣＴ"
    ds.DerivationCodeSequence = Sequence([item])
    data = to_bytes(ds)
    assert "山田".encode("iso2022_jp") in data
    report, out = run(data)
    result = read(out)
    assert str(result.PatientName) == report.subject_pseudonym
    assert str(result.ReferringPhysicianName) == ""
    assert result.DerivationCodeSequence[0].CodeMeaning == "胸部ＣＴ"  # kept, decodable
    for text in ("山田", "太郎", "やまだ", "佐藤", "はなこ"):
        assert text.encode("iso2022_jp")[3:-3] not in out
    assert b"Yamada" not in out and b"Sato" not in out


def test_file_paths_are_written_atomically(tmp_path):
    from portal.anonymiser.dicom import Profile, deidentify_dicom

    src = tmp_path / "in.dcm"
    src.write_bytes(to_bytes(base_dataset()))
    dst = tmp_path / "out" / "in.dcm"
    report = deidentify_dicom(src, dst, profile=Profile(institution_code="INST01"), keys=KEYS)
    assert read(dst.read_bytes()).PatientID == report.subject_pseudonym
    assert sorted(p.name for p in dst.parent.iterdir()) == ["in.dcm"]


def test_non_dicom_file_fails_with_a_reason():
    with pytest.raises(DeidError, match="Not a DICOM file"):
        run(b"\x89PNG\r\n\x1a\n" + bytes(300))


def test_truncated_file_fails_with_a_reason(tmp_path):
    data = to_bytes(base_dataset())
    with pytest.raises(DeidError, match="Truncated"):
        run(data[:-10])
    with pytest.raises(DeidError, match=r"Truncated|Malformed"):
        run(data[:200])


def test_malformed_file_fails_with_a_reason():
    data = bytearray(to_bytes(base_dataset()))
    # Corrupt the length of the PatientName element into something absurd.
    index = data.index(b"\x10\x00\x10\x00PN")
    data[index + 6 : index + 8] = b"\xff\xfe"
    with pytest.raises(DeidError):
        run(bytes(data))


def test_missing_patient_id_or_institution_code_fails():
    ds = base_dataset()
    del ds.PatientID
    with pytest.raises(DeidError, match="no PatientID"):
        run(to_bytes(ds))
    with pytest.raises(DeidError, match="institution code"):
        run(to_bytes(base_dataset()), institution="")


def test_deflated_transfer_syntax_is_read_whole_and_cleaned():
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = base_dataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = to_bytes(ds)
    assert b"YAMADA" not in data  # compressed on disk
    report, out = run(data)
    result = read(out)
    assert result.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert result.PatientID == report.subject_pseudonym and result.PixelData == bytes(range(32))
    assert str(result.PatientName) == report.subject_pseudonym


def test_profile_refuses_unsupported_options():
    from portal.anonymiser.dicom import Profile

    assert Profile(options=frozenset({"lmd"})).options == frozenset({"LMD"})
    with pytest.raises(ValueError, match="not supported"):
        Profile(options=frozenset({"SC"}))


def test_big_endian_file_is_handled():
    from pydicom.uid import ExplicitVRBigEndian

    ds = base_dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.add_new(0x00181400, "LO", "device processing")  # X/D -> D
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=False, little_endian=False, enforce_file_format=True)
    report, out = run(buffer.getvalue())
    result = read(out)
    assert result.AcquisitionDeviceProcessingDescription == "ANONYMIZED"
    assert result.Rows == 4 and result.PatientID == report.subject_pseudonym
