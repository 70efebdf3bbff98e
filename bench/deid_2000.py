#!/usr/bin/env python
"""How fast the DICOM Basic Profile runs over 2,000 CT-like files, against pydicom and the peers.

Generates, in a temporary folder, N CT-like files (default 2,000): 512x512, 16-bit, explicit VR
little endian, patient/study/equipment attributes, one in four with a sequence nested two deep and
one in three with a private block. Then, one process, files per second for:

(a) pydicom reading and writing each file unchanged (the practical limit);
(b) ``portal.anonymiser.dicom.deidentify_dicom`` with the Basic Profile;
(c) dicognito and (d) deid (pydicom's ``deid`` package), where installed ("not installed"
    otherwise; neither is a dependency of the portal).

and the ratios to (a). Needs no database.

Measured on this project's 2-core machine (2,000 files, dicognito 0.19.0 and deid 0.4.13 installed in
a separate virtual environment): (a) 427 files/s, (b) 375 files/s (0.88 of a), (c) 182 files/s
(0.43), (d) 34 files/s (0.08). The machine is shared and noisy: (b)/(a) ranged 0.85-0.88 over runs.

    python bench/deid_2000.py
    python bench/deid_2000.py --files 200
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from portal.anonymiser.dicom import Profile, deidentify_dicom
from portal.anonymiser.keys import Keys


def make_file(path: Path, index: int, pixels: bytes) -> None:
    rng = random.Random(index)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PatientID = f"P{index // 100:06d}"
    ds.PatientName = f"TEST^PATIENT{index // 100}"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = rng.choice("MF")
    ds.PatientAge = "064Y"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240501"
    ds.StudyTime = ds.SeriesTime = "101010"
    ds.AccessionNumber = f"A{index:08d}"
    ds.StudyID = "1"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ds.InstitutionName = "Synthetic Hospital"
    ds.InstitutionAddress = "1-1 Test, Tokyo"
    ds.ReferringPhysicianName = "DOC^TOR"
    ds.StationName = "CT01"
    ds.StudyDescription = "CHEST CT"
    ds.SeriesDescription = "AXIAL 1mm"
    ds.DeviceSerialNumber = "SN1234"
    ds.ProtocolName = "CHEST"
    ds.OperatorsName = "OPER^ATOR"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = index
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.ImagePositionPatient = [0, 0, -index]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    if index % 4 == 0:
        inner = Dataset()
        inner.ReferencedSOPClassUID = ds.SOPClassUID
        inner.ReferencedSOPInstanceUID = generate_uid()
        middle = Dataset()
        middle.ReferencedSOPInstanceUID = generate_uid()
        middle.ReferencedImageSequence = Sequence([inner])
        middle.CodeMeaning = "nested"
        ds.SourceImageSequence = Sequence([middle])
        request = Dataset()
        request.RequestedProcedureDescription = "CT CHEST"
        request.AccessionNumber = ds.AccessionNumber
        ds.RequestAttributesSequence = Sequence([request])
    if index % 3 == 0:
        block = ds.private_block(0x0019, "ACME PRIVATE", create=True)
        block.add_new(0x10, "LO", f"private {index}")
        block.add_new(0x11, "DS", "1.5")
        block.add_new(0x12, "OB", bytes(64))
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels
    ds.save_as(path, enforce_file_format=True)


def run(name: str, files: list[Path], out: Path, action: Callable[[Path, Path], None]) -> float:
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    for path in files:
        action(path, out / path.name)
    elapsed = time.perf_counter() - started
    rate = len(files) / elapsed
    print(f"{name:<42} {rate:8.1f} files/s  ({elapsed:.2f} s)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000, help="files to generate (default 2,000)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="deid-bench-"))
    try:
        source = workdir / "src"
        source.mkdir()
        pixels = bytes(random.Random(0).randbytes(512 * 512 * 2))
        started = time.perf_counter()
        files = []
        for index in range(args.files):
            path = source / f"{index:06d}.dcm"
            make_file(path, index, pixels)
            files.append(path)
        print(f"generated {len(files)} files in {time.perf_counter() - started:.1f} s")

        def plain(src: Path, dst: Path) -> None:
            pydicom.dcmread(src).save_as(dst)

        profile = Profile(institution_code="BENCH")
        keys = Keys(b"bench-key")

        def ours(src: Path, dst: Path) -> None:
            deidentify_dicom(src, dst, profile=profile, keys=keys)

        rates = {"a": run("(a) pydicom read+write, unchanged", files, workdir / "a", plain)}
        rates["b"] = run("(b) portal deidentify_dicom, Basic", files, workdir / "b", ours)
        try:
            from dicognito.anonymizer import Anonymizer

            anonymizer = Anonymizer()

            def dicognito(src: Path, dst: Path) -> None:
                ds = pydicom.dcmread(src)
                anonymizer.anonymize(ds)
                ds.save_as(dst)

            rates["c"] = run("(c) dicognito", files, workdir / "c", dicognito)
        except ImportError:
            print(f"{'(c) dicognito':<42} not installed")
        try:
            os.environ.setdefault("MESSAGELEVEL", "-3")  # deid's own logger: errors only
            from deid.dicom import get_identifiers, replace_identifiers  # type: ignore[import-not-found]

            def deid_one(src: Path, dst: Path) -> None:
                items = get_identifiers([str(src)])
                replace_identifiers(dicom_files=[str(src)], ids=items, save=True, output_folder=str(dst.parent), overwrite=True)

            rates["d"] = run("(d) deid", files, workdir / "d", deid_one)
        except ImportError:
            print(f"{'(d) deid':<42} not installed")
        for key, label in (("b", "portal"), ("c", "dicognito"), ("d", "deid")):
            if key in rates:
                print(f"ratio {label} / pydicom: {rates[key] / rates['a']:.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
