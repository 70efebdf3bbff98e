"""Whole-slide images: a synthetic Aperio SVS and generic tiled TIFFs lose label, macro and names."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import pytest
from PIL import Image

from portal.anonymiser.report import DeidError
from portal.anonymiser.wsi import (
    APERIO_KEEP_FIELDS,
    TiffReader,
    clean_aperio_description,
    strip_wsi,
)

ASCII, SHORT, LONG, RATIONAL, UNDEFINED, LONG8 = 2, 3, 4, 5, 7, 16

APERIO_HEAD = "Aperio Image Library v12.0.5\r\n512x512 [0,100 512x512] (256x256) RAW/RGB Q=70"
APERIO_FIELDS = (
    "|AppMag = 20|StripeWidth = 2040|ScanScope ID = SS1302|Filename = SMITH-JOHN-0042"
    "|Date = 12/29/09|Time = 09:59:15|Time Zone = GMT+09:00|User = b414003d-95c6-48b0"
    "|Parmset = HOSPITAL-A|MPP = 0.4990|Left = 25.691574|Top = 23.449873|Barcode = 12-3456"
    "|ImageID = 1004486"
)


# ---- a minimal TIFF writer for the tests ---------------------------------------------------------


@dataclass
class Page:
    width: int
    height: int
    blocks: list[bytes]
    tiled: bool = False
    tile: int = 256
    tags: dict[int, tuple[int, object]] = field(default_factory=dict)  # tag -> (type, value)
    # tag -> bytes put at the end of the file, the tag holding its offset (an EXIF or GPS IFD)
    blobs: dict[int, bytes] = field(default_factory=dict)


def _pack_values(order: str, kind: int, value: object) -> tuple[int, bytes]:
    if kind == ASCII:
        raw = str(value).encode("latin-1") + b"\0"
        return len(raw), raw
    if kind == UNDEFINED or kind == 1:
        raw = bytes(value)  # type: ignore[arg-type]
        return len(raw), raw
    values = list(value) if isinstance(value, list | tuple) else [value]
    if kind == RATIONAL:
        return len(values), b"".join(struct.pack(order + "II", n, d) for n, d in values)
    fmt = {SHORT: "H", LONG: "I", LONG8: "Q"}[kind]
    return len(values), struct.pack(f"{order}{len(values)}{fmt}", *values)


def build_tiff(pages: list[Page], *, big: bool = False, order: str = "<") -> bytes:
    out = io.BytesIO()
    out.write(b"II" if order == "<" else b"MM")
    out.write(struct.pack(order + ("HHHQ" if big else "HI"), *((43, 8, 0, 0) if big else (42, 0))))
    link_at = 8 if big else 4
    inline = 8 if big else 4
    offset_kind = LONG8 if big else LONG
    for page in pages:
        offsets = []
        for block in page.blocks:
            offsets.append(out.tell())
            out.write(block)
            if out.tell() % 2:
                out.write(b"\0")
        tags = {
            256: (LONG, page.width),
            257: (LONG, page.height),
            258: (SHORT, [8, 8, 8]),
            259: (SHORT, 1),
            262: (SHORT, 2),
            277: (SHORT, 3),
            284: (SHORT, 1),
        }
        if page.tiled:
            tags.update(
                {
                    322: (SHORT, page.tile),
                    323: (SHORT, page.tile),
                    324: (offset_kind, offsets),
                    325: (LONG, [len(b) for b in page.blocks]),
                }
            )
        else:
            tags.update(
                {
                    273: (offset_kind, offsets),
                    278: (LONG, page.height),
                    279: (LONG, [len(b) for b in page.blocks]),
                }
            )
        tags.update(page.tags)
        blob_at: dict[int, int] = {}
        for tag, blob in page.blobs.items():
            blob_at[tag] = out.tell()
            out.write(blob)
            if out.tell() % 2:
                out.write(b"\0")
            tags[tag] = (LONG, blob_at[tag])
        fields = []
        for tag in sorted(tags):
            kind, value = tags[tag]
            count, raw = _pack_values(order, kind, value)
            if len(raw) > inline:
                fields.append(
                    (tag, kind, count, struct.pack(order + ("Q" if big else "I"), out.tell()))
                )
                out.write(raw)
                if out.tell() % 2:
                    out.write(b"\0")
            else:
                fields.append((tag, kind, count, raw.ljust(inline, b"\0")))
        here = out.tell()
        out.write(struct.pack(order + ("Q" if big else "H"), len(fields)))
        for tag, kind, count, value in fields:
            out.write(struct.pack(order + ("HHQ" if big else "HHI"), tag, kind, count) + value)
        next_at = out.tell()
        out.write(b"\0" * inline)
        end = out.tell()
        out.seek(link_at)
        out.write(struct.pack(order + ("Q" if big else "I"), here))
        out.seek(end)
        link_at = next_at
    return out.getvalue()


def _tile(seed: int, size: int = 256) -> bytes:
    return bytes((seed + i * 7) % 251 for i in range(size * size * 3))


def _picture_with_text(text: bytes, width: int, height: int) -> bytes:
    raw = (text * (width * height * 3 // len(text) + 1))[: width * height * 3]
    return raw


def synthetic_svs(*, big: bool = False, order: str = "<", name_associated: bool = True) -> bytes:
    """Full level (4 tiles), thumbnail, a reduced level (1 tile), label and macro."""
    description = APERIO_HEAD + APERIO_FIELDS
    identifying = {
        271: (ASCII, "ScanScope"),
        305: (ASCII, "ScanScope Console SMITH-PC"),
        306: (ASCII, "2009:12:29 09:59:15"),
        700: (1, b"<x:xmpmeta>SMITH-JOHN-XMP</x:xmpmeta>"),
    }
    full = Page(512, 512, [_tile(n) for n in range(4)], tiled=True)
    full.tags = {270: (ASCII, description), **identifying}
    thumbnail = Page(64, 64, [_tile(9, 64)[: 64 * 64 * 3]])
    thumbnail.tags = {
        270: (ASCII, "Aperio Image Library v12.0.5\r\n512x512 -> 64x64 - " + APERIO_FIELDS)
    }
    level = Page(256, 256, [_tile(5)], tiled=True)
    level.tags = {270: (ASCII, APERIO_HEAD.replace("512x512 [", "256x256 [") + APERIO_FIELDS)}
    label = Page(64, 32, [_picture_with_text(b"LABEL-SMITH-JOHN ", 64, 32)])
    label.tags = {
        254: (LONG, 1),
        270: (ASCII, "Aperio Image Library v12.0.5\r\nlabel 64x32" if name_associated else ""),
    }
    macro = Page(96, 32, [_picture_with_text(b"MACRO-SMITH-JOHN ", 96, 32)])
    macro.tags = {
        254: (LONG, 9),
        270: (ASCII, "Aperio Image Library v12.0.5\r\nmacro 96x32" if name_associated else ""),
    }
    return build_tiff([full, thumbnail, level, label, macro], big=big, order=order)


def _tiles(data: bytes) -> list[list[bytes]]:
    reader = TiffReader(io.BytesIO(data))
    result = []
    for directory in reader.directories:
        offsets_tag, counts_tag = directory.data_tags()
        result.append(
            [
                data[o : o + c]
                for o, c in zip(
                    directory.ints(offsets_tag), directory.ints(counts_tag), strict=True
                )
            ]
        )
    return result


def _descriptions(data: bytes) -> list[str]:
    return [d.text(270) for d in TiffReader(io.BytesIO(data)).directories]


# ---- Aperio SVS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("big", "order"), [(False, "<"), (False, ">"), (True, "<")])
def test_svs_label_and_macro_removed_tiles_kept(big, order):
    source = synthetic_svs(big=big, order=order)
    out = io.BytesIO()

    report = strip_wsi(io.BytesIO(source), out)

    result = out.getvalue()
    assert result[:2] == (b"II" if order == "<" else b"MM")
    assert TiffReader(io.BytesIO(result)).big is big
    assert b"LABEL-SMITH-JOHN" not in result
    assert b"MACRO-SMITH-JOHN" not in result
    assert b"SMITH" not in result
    source_tiles = _tiles(source)
    assert _tiles(result) == [source_tiles[0], source_tiles[1], source_tiles[2]]
    kept_fields = "|AppMag = 20|StripeWidth = 2040|MPP = 0.4990|Left = 25.691574|Top = 23.449873"
    assert _descriptions(result) == [
        APERIO_HEAD + kept_fields,
        "Aperio Image Library v12.0.5\r\n512x512 -> 64x64 - " + kept_fields,
        APERIO_HEAD.replace("512x512 [", "256x256 [") + kept_fields,
    ]
    assert report.kind == "wsi"
    assert report.changed is True
    assert report.media_type == "image/tiff"
    assert dict(report.actions) == {
        "label": 1,
        "macro": 1,
        # Scanscope ID, Filename, Date, Time, Time Zone, User, Parmset, Barcode, ImageID × 3 pages
        "description_field": 27,
        "device": 2,
        "date": 1,
        "xmp": 1,
    }


def test_svs_output_decodes_to_the_same_pixels():
    source = synthetic_svs()
    out = io.BytesIO()
    strip_wsi(io.BytesIO(source), out)
    before = Image.open(io.BytesIO(source))
    after = Image.open(io.BytesIO(out.getvalue()))
    assert after.n_frames == 3
    assert after.size == (512, 512)
    assert after.tobytes() == before.tobytes()
    before.seek(2)
    after.seek(2)
    assert after.tobytes() == before.tobytes()


def test_svs_unnamed_associated_images_removed_by_position():
    source = synthetic_svs(name_associated=False)
    out = io.BytesIO()

    report = strip_wsi(io.BytesIO(source), out)

    assert len(TiffReader(io.BytesIO(out.getvalue())).directories) == 3
    assert report.actions["associated_image"] == 2
    assert "label" not in report.actions
    assert b"SMITH" not in out.getvalue()


def test_svs_written_to_a_path(tmp_path):
    source = tmp_path / "slide.svs"
    source.write_bytes(synthetic_svs())
    target = tmp_path / "out.svs"

    strip_wsi(source, target)

    assert len(TiffReader(io.BytesIO(target.read_bytes())).directories) == 3


def test_clean_aperio_description_keeps_only_the_keep_list():
    cleaned, removed = clean_aperio_description("Aperio X\r\nhead|MPP = 0.25|Filename = a|Foo = b")
    assert cleaned == "Aperio X\r\nhead|MPP = 0.25"
    assert removed == ["Filename", "Foo"]
    assert "Filename" not in APERIO_KEEP_FIELDS
    assert "Date" not in APERIO_KEEP_FIELDS


# ---- generic tiled TIFF --------------------------------------------------------------------------


def test_generic_tiled_tiff_drops_untiled_images_and_identifying_tags():
    full = Page(256, 256, [_tile(1)], tiled=True)
    full.tags = {
        270: (ASCII, "<OME>Name=SMITH JOHN</OME>"),
        315: (ASCII, "Dr SMITH"),
        33723: (UNDEFINED, b"IPTC SMITH"),
    }
    full.blobs = {34665: b"EXIF-SMITH" * 4}
    label = Page(32, 32, [_picture_with_text(b"SMITH ", 32, 32)])
    label.tags = {270: (ASCII, "Label image")}
    thumb = Page(32, 32, [_picture_with_text(b"THUMB ", 32, 32)])
    source = build_tiff([full, label, thumb])
    out = io.BytesIO()

    report = strip_wsi(io.BytesIO(source), out)

    result = out.getvalue()
    assert b"SMITH" not in result
    assert b"THUMB" not in result
    assert _tiles(result) == [_tiles(source)[0]]
    assert _descriptions(result) == [""]
    assert dict(report.actions) == {
        "description": 1,
        "author": 1,
        "iptc": 1,
        "exif": 1,
        "label": 1,
        "associated_image": 1,
    }


# ---- refusals ------------------------------------------------------------------------------------


def test_ndpi_refused():
    page = Page(256, 256, [_tile(1)], tiled=True)
    page.tags = {65420: (LONG, 1)}
    with pytest.raises(DeidError) as caught:
        strip_wsi(io.BytesIO(build_tiff([page])), io.BytesIO())
    assert caught.value.reason == "unsupported whole-slide format: Hamamatsu NDPI"


def test_non_tiff_refused():
    with pytest.raises(DeidError) as caught:
        strip_wsi(io.BytesIO(b"\xff\xd8\xff\xe0 not a slide"), io.BytesIO())
    assert caught.value.reason == "unsupported whole-slide format: not a TIFF file"


def test_untiled_tiff_refused():
    with pytest.raises(DeidError) as caught:
        strip_wsi(io.BytesIO(build_tiff([Page(8, 8, [bytes(192)])])), io.BytesIO())
    assert caught.value.reason == "unsupported whole-slide format: the first image is not tiled"


def test_truncated_svs_refused_and_no_output_left(tmp_path):
    source = synthetic_svs()
    # Cut inside the tiles of the first level: its directory sits after them, so chop the tail
    # of the file but keep the header pointing at it: the first directory is beyond the end.
    target = tmp_path / "out.svs"
    with pytest.raises(DeidError) as caught:
        strip_wsi(io.BytesIO(source[: len(source) // 2]), target)
    assert caught.value.reason.startswith("truncated TIFF")
    assert not target.exists()


def test_looping_directory_chain_refused():
    source = bytearray(build_tiff([Page(256, 256, [_tile(1)], tiled=True)]))
    first = struct.unpack("<I", source[4:8])[0]
    count = struct.unpack("<H", source[first : first + 2])[0]
    next_at = first + 2 + 12 * count
    source[next_at : next_at + 4] = struct.pack("<I", first)
    with pytest.raises(DeidError) as caught:
        strip_wsi(io.BytesIO(bytes(source)), io.BytesIO())
    assert caught.value.reason == "malformed TIFF: the directory chain loops"


def test_generic_tiled_label_removed_by_its_description():
    full = Page(256, 256, [_tile(1)], tiled=True)
    label = Page(256, 256, [_picture_with_text(b"SMITH ", 256, 256)], tiled=True)
    label.tags = {270: (ASCII, "Label_Image")}
    level = Page(256, 256, [_tile(2)], tiled=True)
    source = build_tiff([full, label, level])
    out = io.BytesIO()

    report = strip_wsi(io.BytesIO(source), out)

    assert b"SMITH" not in out.getvalue()
    tiles = _tiles(source)
    assert _tiles(out.getvalue()) == [tiles[0], tiles[2]]
    assert dict(report.actions) == {"label": 1}


def test_svs_level_kept_when_a_field_mentions_label():
    source = synthetic_svs().replace(b"Filename = SMITH-JOHN-0042", b"Filename = label-macro-042")
    out = io.BytesIO()

    report = strip_wsi(io.BytesIO(source), out)

    assert len(TiffReader(io.BytesIO(out.getvalue())).directories) == 3
    assert (report.actions["label"], report.actions["macro"]) == (1, 1)
