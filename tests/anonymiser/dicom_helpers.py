"""Building small DICOM files for the de-identification tests."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from portal.anonymiser.dicom import Profile, deidentify_dicom
from portal.anonymiser.keys import Keys

SOP_INSTANCE = "1.2.392.200036.9116.2.6.1.48.1211418863.1225184712.380696"
STUDY = "1.2.392.200036.9116.2.6.1.48.1211418863.1225183167.375775"
KEYS = Keys(b"test-key-one")
OTHER_KEYS = Keys(b"test-key-two")


def base_dataset(*, patient_id: str = "12345", implicit: bool = False) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = SOP_INSTANCE
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "HOSPITALPACS"
    ds = FileDataset("", {}, file_meta=meta, preamble=b"LEAKPREAMBLE".ljust(128, b"\0"))
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = SOP_INSTANCE
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = STUDY + ".1"
    ds.PatientID = patient_id
    ds.PatientName = "YAMADA^TARO"
    ds.PatientBirthDate = "19600102"
    ds.PatientSex = "M"
    ds.PatientAge = "064Y"
    ds.StudyDate = "20240501"
    ds.SeriesDate = "20240501"
    ds.AcquisitionDateTime = "20240501101010.5+0900"
    ds.StudyTime = "101010"
    ds.Modality = "CT"
    ds.AccessionNumber = "ACC001"
    ds.InstitutionName = "Tokyo Hospital"
    ds.StationName = "CT01"
    ds.DeviceSerialNumber = "SN1234"
    ds.StudyDescription = "CHEST CT"
    ds.SeriesDescription = "AXIAL"
    ds.ReferringPhysicianName = "DOC^TOR"
    ds.OperatorsName = "OPER^ATOR"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(32))
    return ds


def nested(ds: Dataset) -> None:
    """SourceImageSequence > item > ReferencedImageSequence > item, with identifiers at each level."""
    inner = Dataset()
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inner.ReferencedSOPInstanceUID = SOP_INSTANCE
    inner.PatientName = "INNER^NAME"
    inner.InstitutionName = "Inner Hospital"
    middle = Dataset()
    middle.ReferencedSOPInstanceUID = STUDY + ".9"
    middle.ReferencedImageSequence = Sequence([inner])
    middle.StudyDate = "20240501"
    middle.OperatorsName = "MIDDLE^OPERATOR"
    ds.SourceImageSequence = Sequence([middle])


def to_bytes(ds: FileDataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def run(data: bytes, *, options=(), keys: Keys = KEYS, institution: str = "INST01", rules=None):
    out = io.BytesIO()
    report = deidentify_dicom(
        io.BytesIO(data), out, profile=Profile(frozenset(options), institution_code=institution),
        keys=keys, burned_in_rules=rules,
    )
    return report, out.getvalue()
