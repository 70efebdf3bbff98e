"""``deidentify_path`` picks the handler by content; the core modules load without Django."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from PIL import Image

from portal.anonymiser.dispatch import deidentify_path, detect_kind
from portal.anonymiser.keys import Keys
from portal.anonymiser.report import DeidError
from portal.lib.synthetic import synthetic_file

KEYS = Keys(b"unit-test-key")
ROOT = Path(__file__).resolve().parents[2]


class _Profile:
    options = frozenset()
    institution_code = "1310001"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _tiff(*, tiled: bool = False, pages: int = 1, description: str = "") -> bytes:
    buffer = io.BytesIO()
    images = [Image.new("RGB", (64, 64), (200, 100, 50)) for _ in range(pages)]
    kwargs: dict[str, object] = {"format": "TIFF"}
    if description:
        kwargs["description"] = description
    if pages > 1:
        kwargs.update(save_all=True, append_images=images[1:])
    images[0].save(buffer, **kwargs)
    data = buffer.getvalue()
    if tiled:  # rename the first IFD's RowsPerStrip (278) tag to TileWidth (322): enough for detection
        order = "<" if data[:2] == b"II" else ">"
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset:offset + 2])
        raw = bytearray(data)
        for index in range(count):
            at = offset + 2 + 12 * index
            if struct.unpack(order + "H", raw[at:at + 2])[0] == 278:
                raw[at:at + 2] = struct.pack(order + "H", 322)
        data = bytes(raw)
    return data


def test_detects_each_kind(tmp_path):
    jpeg = synthetic_file("endoscopy", seed=1, study_date=date(2024, 1, 1), subject="X")[0]
    png = synthetic_file("ultrasound", seed=1, study_date=date(2024, 1, 1), subject="X")[0]
    dicom = synthetic_file("ct", seed=1, study_date=date(2024, 1, 1), subject="X")[0]
    assert detect_kind(_write(tmp_path / "a.bin", jpeg)) == "photo"
    assert detect_kind(_write(tmp_path / "b", png)) == "photo"
    assert detect_kind(_write(tmp_path / "c.img", dicom)) == "dicom"
    assert detect_kind(_write(tmp_path / "d.tif", _tiff())) == "photo"
    assert detect_kind(_write(tmp_path / "e.tif", _tiff(description="Aperio Image Library v12|Filename = x"))) == "wsi"
    assert detect_kind(_write(tmp_path / "f.tif", _tiff(tiled=True, pages=2))) == "wsi"
    assert detect_kind(_write(tmp_path / "g.tif", _tiff(tiled=True, pages=1))) == "photo"
    assert detect_kind(_write(tmp_path / "h.csv", b"id,age\n1,30\n")) == "table"
    assert detect_kind(_write(tmp_path / "i.dcm", b"\x08\x00\x05\x00")) == "dicom"
    assert detect_kind(_write(tmp_path / "big.svs", b"II+\x00" + b"\0" * 12)) == "wsi"


def test_unknown_content_fails_with_a_reason(tmp_path):
    with pytest.raises(DeidError) as excinfo:
        detect_kind(_write(tmp_path / "x.txt", b"hello"))
    assert excinfo.value.reason == "unsupported file type"


def test_truncated_tiff_fails(tmp_path):
    with pytest.raises(DeidError) as excinfo:
        detect_kind(_write(tmp_path / "t.tif", b"II*\x00\xff\x00\x00\x00"))
    assert excinfo.value.reason.startswith("truncated TIFF")


def test_photo_goes_through_strip_photo_into_a_new_folder(tmp_path):
    jpeg = synthetic_file("endoscopy", seed=2, study_date=date(2024, 1, 1), subject="X")[0]
    report = deidentify_path(_write(tmp_path / "a.jpg", jpeg), tmp_path / "out" / "sub" / "a.jpg",
                             profile=_Profile(), keys=KEYS)
    assert report.kind == "photo"
    assert (tmp_path / "out" / "sub" / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_table_without_roles_fails_and_leaves_no_output(tmp_path):
    with pytest.raises(DeidError) as excinfo:
        deidentify_path(_write(tmp_path / "t.csv", b"id\n1\n"), tmp_path / "o.csv", profile=_Profile(), keys=KEYS)
    assert excinfo.value.reason == "a table needs a role for each column (none were given)"
    assert not (tmp_path / "o.csv").exists()


def test_malformed_dicom_fails_and_leaves_no_output(tmp_path):
    with pytest.raises(DeidError):
        deidentify_path(_write(tmp_path / "x.dcm", b"\0" * 128 + b"DICM" + b"\x02"), tmp_path / "o.dcm",
                        profile=_dicom_profile(), keys=KEYS)
    assert not (tmp_path / "o.dcm").exists()


def _dicom_profile():  # type: ignore[no-untyped-def]
    from portal.deid.services import profile_class

    return profile_class()(options=frozenset(), institution_code="1310001")


def test_dispatch_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # ``portal/__init__`` loads Celery (which may load parts of Django); the core must add no more.
    code = (
        "import sys, portal; before = {m for m in sys.modules if m.startswith('django')}; "
        "import portal.anonymiser.dispatch, portal.anonymiser.report, portal.anonymiser.keys; "
        "added = {m for m in sys.modules if m.startswith('django')} - before; "
        "assert not added, sorted(added)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
