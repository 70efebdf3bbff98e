"""Photos: EXIF, XMP, IPTC, comments and thumbnails removed from JPEG, PNG and TIFF, nothing recompressed."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from portal.anonymiser.photos import strip_photo
from portal.anonymiser.report import DeidError
from portal.lib.synthetic import synthetic_picture
from tests.anonymiser.test_wsi import ASCII, UNDEFINED, Page, build_tiff, synthetic_svs

# ---- JPEG ----------------------------------------------------------------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """An EXIF block: IFD0 (Make, Orientation 6), IFD1 holding a JPEG thumbnail."""
    make = b"SMITH-CAMERA\0"
    ifd0_at = 8
    ifd0 = 2 + 2 * 12 + 4
    make_at = ifd0_at + ifd0
    ifd1_at = make_at + len(make) + (len(make) % 2)
    ifd1 = 2 + 2 * 12 + 4
    thumb_at = ifd1_at + ifd1
    tiff = b"II*\0" + struct.pack("<I", ifd0_at)
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 271, 2, len(make), make_at)
    tiff += struct.pack("<HHIHH", 274, 3, 1, 6, 0)
    tiff += struct.pack("<I", ifd1_at)
    tiff += make + b"\0" * (len(make) % 2)
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 513, 4, 1, thumb_at)
    tiff += struct.pack("<HHII", 514, 4, 1, len(thumbnail))
    tiff += struct.pack("<I", 0)
    tiff += thumbnail
    return b"Exif\0\0" + tiff


def _jpeg(**options) -> bytes:
    buffer = io.BytesIO()
    synthetic_picture("endoscopy", seed=3, size=64).save(
        buffer, format="JPEG", quality=85, **options
    )
    return buffer.getvalue()


def _scan_data(jpeg: bytes) -> bytes:
    """Everything from the (only) SOS marker of a baseline JPEG to the end: the compressed picture."""
    return jpeg[jpeg.rindex(b"\xff\xda") :]


def _metadata_jpeg() -> bytes:
    plain = _jpeg()
    thumbnail = _jpeg()
    inserted = (
        _segment(0xE1, _exif_with_thumbnail(thumbnail))
        + _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>SMITH-XMP</x:xmpmeta>")
        + _segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0c\x1c\x02\x05\0\x08SMITH-IP")
        + _segment(0xFE, b"Patient SMITH JOHN")
        + _segment(0xE2, b"MPF\0II*\0SMITH-MPF")
        + _segment(0xE2, b"ICC_PROFILE\0\x01\x01fake-profile")
        + _segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01")
    )
    # After SOI and the JFIF APP0 Pillow writes; and a second picture glued after EOI (as MPF does)
    jfif_end = 4 + int.from_bytes(plain[4:6], "big")
    return plain[:jfif_end] + inserted + plain[jfif_end:] + b"SMITH-TRAILER"


def test_jpeg_metadata_removed_scan_data_identical():
    source = _metadata_jpeg()
    out = io.BytesIO()

    report = strip_photo(io.BytesIO(source), out)

    result = out.getvalue()
    assert b"SMITH" not in result
    assert b"Exif" not in result
    assert b"ICC_PROFILE\0\x01\x01fake-profile" in result
    assert b"Adobe\0\x64" in result
    assert result.startswith(b"\xff\xd8\xff\xe0\x00\x10JFIF\0")
    assert _scan_data(result) == _scan_data(source).removesuffix(b"SMITH-TRAILER")
    assert report.kind == "photo"
    assert report.media_type == "image/jpeg"
    assert report.changed is True
    assert dict(report.actions) == {
        "exif": 1,
        "thumbnail": 1,
        "orientation_lost": 1,
        "xmp": 1,
        "iptc": 1,
        "comment": 1,
        "other_app": 1,
        "trailing_data": 1,
    }


def test_jpeg_pixels_unchanged():
    out = io.BytesIO()
    strip_photo(io.BytesIO(_metadata_jpeg()), out)
    assert Image.open(out).tobytes() == Image.open(io.BytesIO(_jpeg())).tobytes()


def test_jpeg_progressive_keeps_every_scan():
    source = _jpeg(progressive=True, comment=b"SMITH")
    out = io.BytesIO()

    report = strip_photo(io.BytesIO(source), out)

    assert source.count(b"\xff\xda") > 1
    assert out.getvalue().count(b"\xff\xda") == source.count(b"\xff\xda")
    assert b"SMITH" not in out.getvalue()
    assert dict(report.actions) == {"comment": 1}
    assert Image.open(out).tobytes() == Image.open(io.BytesIO(source)).tobytes()


def test_jpeg_restart_markers_kept():
    source = _jpeg(restart_marker_blocks=1)
    out = io.BytesIO()

    report = strip_photo(io.BytesIO(source), out)

    assert b"\xff\xdd" in source
    assert out.getvalue() == source
    assert report.changed is False
    assert dict(report.actions) == {}


def test_jpeg_jfif_thumbnail_emptied():
    plain = _jpeg()
    jfif_end = 4 + int.from_bytes(plain[4:6], "big")
    payload = plain[6:jfif_end]
    with_thumbnail = _segment(0xE0, payload[:12] + b"\x01\x01" + b"\x10\x20\x30")
    jfxx = _segment(0xE0, b"JFXX\0\x13" + b"\x01\x01" + b"\x10\x20\x30")
    source = plain[:2] + with_thumbnail + jfxx + plain[jfif_end:]
    out = io.BytesIO()

    report = strip_photo(io.BytesIO(source), out)

    assert out.getvalue() == plain
    assert dict(report.actions) == {"thumbnail": 2}


def test_jpeg_truncated_refused_and_no_output_left(tmp_path):
    source = _jpeg()
    target = tmp_path / "out.jpg"
    with pytest.raises(DeidError) as caught:
        strip_photo(io.BytesIO(source[: len(source) // 2]), target)
    assert caught.value.reason == "truncated JPEG: the scan data has no end"
    assert not target.exists()


def test_jpeg_paths(tmp_path):
    source = tmp_path / "in.jpg"
    source.write_bytes(_metadata_jpeg())
    target = tmp_path / "out.jpg"

    strip_photo(source, target)

    assert b"SMITH" not in target.read_bytes()


# ---- PNG -----------------------------------------------------------------------------------------


def _chunks(png: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        kinds.append(kind)
        pos += 12 + length
    return kinds


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_text_exif_time_removed():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SMITH JOHN")
    info.add_text("Author", "Dr SMITH", zip=True)
    info.add_itxt("Description", "スミス SMITH")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>SMITH</x:xmpmeta>")
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 1, 2, 3, 4, 5))
    info.add(b"prVt", b"SMITH private")
    exif = Image.Exif()
    exif[271] = "SMITH-CAMERA"
    picture = synthetic_picture("ultrasound", seed=1, size=48)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=info, exif=exif, dpi=(72, 72))
    source = buffer.getvalue()
    out = io.BytesIO()

    report = strip_photo(io.BytesIO(source), out)

    assert b"SMITH" not in out.getvalue()
    assert _chunks(out.getvalue()) == [b"IHDR", b"pHYs", b"IDAT", b"IEND"]
    assert Image.open(out).tobytes() == picture.tobytes()
    assert report.media_type == "image/png"
    assert dict(report.actions) == {
        "comment": 3,
        "xmp": 1,
        "time": 1,
        "other_chunk": 1,
        "exif": 1,
    }


def test_png_unknown_critical_chunk_refused():
    buffer = io.BytesIO()
    synthetic_picture("ultrasound", seed=1, size=32).save(buffer, format="PNG")
    png = buffer.getvalue()
    source = png[:33] + _chunk(b"ABCD", b"x") + png[33:]
    with pytest.raises(DeidError) as caught:
        strip_photo(io.BytesIO(source), io.BytesIO())
    assert caught.value.reason == "unsupported PNG: unknown critical chunk 'ABCD'"


def test_png_truncated_refused():
    buffer = io.BytesIO()
    synthetic_picture("ultrasound", seed=1, size=32).save(buffer, format="PNG")
    with pytest.raises(DeidError) as caught:
        strip_photo(io.BytesIO(buffer.getvalue()[:-30]), io.BytesIO())
    assert caught.value.reason == "truncated PNG: a chunk ends early"


# ---- TIFF ----------------------------------------------------------------------------------------


def test_tiff_metadata_and_thumbnail_removed_strips_kept():
    pixels = synthetic_picture("dermatology", seed=2, size=32).tobytes()
    page = Page(32, 32, [pixels])
    page.tags = {
        270: (ASCII, "Patient SMITH JOHN"),
        271: (ASCII, "SMITH-CAMERA"),
        272: (ASCII, "Model SMITH"),
        305: (ASCII, "Software SMITH"),
        306: (ASCII, "2024:01:02 03:04:05"),
        315: (ASCII, "Dr SMITH"),
        316: (ASCII, "SMITH-PC"),
        33432: (ASCII, "(c) SMITH"),
        700: (1, b"<x:xmpmeta>SMITH</x:xmpmeta>"),
        33723: (UNDEFINED, b"IPTC SMITH"),
        34377: (UNDEFINED, b"8BIM SMITH"),
        282: (5, [(72, 1)]),
        283: (5, [(72, 1)]),
        296: (3, 2),
    }
    page.blobs = {34665: b"EXIF SMITH " * 3, 34853: b"GPS SMITH "}
    thumbnail = Page(8, 8, [b"THUMB-SMITH " * 16])
    thumbnail.tags = {254: (4, 1)}
    source = build_tiff([page, thumbnail])
    out = io.BytesIO()

    report = strip_photo(io.BytesIO(source), out)

    result = out.getvalue()
    assert b"SMITH" not in result
    picture = Image.open(io.BytesIO(result))
    assert picture.n_frames == 1
    assert picture.tobytes() == pixels
    assert picture.info["dpi"] == (72, 72)
    assert sorted(picture.tag_v2) == [
        256,
        257,
        258,
        259,
        262,
        273,
        277,
        278,
        279,
        282,
        283,
        284,
        296,
    ]
    assert report.media_type == "image/tiff"
    assert dict(report.actions) == {
        "description": 1,
        "device": 4,
        "date": 1,
        "author": 2,
        "xmp": 1,
        "iptc": 1,
        "photoshop": 1,
        "exif": 1,
        "gps": 1,
        "thumbnail": 1,
    }


def test_tiff_from_pillow_lzw():
    picture = synthetic_picture("dermatology", seed=4, size=40)
    buffer = io.BytesIO()
    picture.save(
        buffer, format="TIFF", compression="tiff_lzw", description="SMITH", tiffinfo={271: "SMITH"}
    )
    out = io.BytesIO()

    strip_photo(io.BytesIO(buffer.getvalue()), out)

    assert b"SMITH" not in out.getvalue()
    assert Image.open(out).tobytes() == picture.tobytes()


def test_tiff_slide_refused_as_photo():
    with pytest.raises(DeidError) as caught:
        strip_photo(io.BytesIO(synthetic_svs()), io.BytesIO())
    assert (
        caught.value.reason == "this TIFF is an Aperio whole-slide image: de-identify it as a slide"
    )


# ---- other formats and the core's independence from Django ---------------------------------------


def test_unsupported_format_refused(tmp_path):
    buffer = io.BytesIO()
    synthetic_picture("endoscopy", seed=1, size=32).save(buffer, format="GIF")
    target = tmp_path / "out.gif"
    with pytest.raises(DeidError) as caught:
        strip_photo(io.BytesIO(buffer.getvalue()), target)
    assert caught.value.reason == "unsupported photo format"
    assert not target.exists()


def test_core_modules_import_without_django():
    # The ``portal`` package itself loads django.conf (for its Celery app); these modules add no
    # Django module to that, and work without DJANGO_SETTINGS_MODULE.
    code = (
        "import io, sys, portal; before = {m for m in sys.modules if m.startswith('django')}; "
        "import portal.anonymiser.photos, portal.anonymiser.wsi, portal.anonymiser.tables; "
        "after = {m for m in sys.modules if m.startswith('django')}; "
        "from PIL import Image; b = io.BytesIO(); Image.new('RGB', (4, 4)).save(b, 'PNG'); "
        "portal.anonymiser.photos.strip_photo(io.BytesIO(b.getvalue()), io.BytesIO()); "
        "sys.exit(sorted(after - before) or 0)"
    )
    env = {"PATH": "/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
