"""Whole-slide images: the label and macro pictures and the identifying description fields removed.

Supported: Aperio SVS and generic tiled (pyramidal) TIFF, classic TIFF and BigTIFF. Everything else
(Hamamatsu NDPI, MIRAX .mrxs, DICOM WSI goes to the DICOM handler, ...) is refused with
``DeidError("unsupported whole-slide format: ...")``.

The file is rewritten directory by directory: the pyramid's tiles (and strips) are copied byte for
byte, in chunks, without decoding — the picture is never recompressed and never held whole in
memory. Each kept directory keeps only the tags a reader needs to decode it (``DECODE_TAGS``);
everything else (EXIF and GPS directories, XMP, IPTC, Photoshop, make/model/software, date, artist,
private tags) is dropped and counted.

Aperio SVS (first ImageDescription starts with "Aperio"): the first directory is the full-resolution
level, the second the thumbnail (an overview of the scanned tissue only: kept), then the tiled
reduced levels, then the label and macro pictures. Every stripped (non-tiled) directory other than
the thumbnail, and any directory after the first whose description says "label" or "macro", is
removed — counted as "label" or "macro" when its description says so, else as
"associated_image" — because older scanners do not always say which is which. The description's
``key = value`` fields are kept only when their key is on ``APERIO_KEEP_FIELDS`` (technical
fields: magnification, microns per pixel, stripe width, ...); Filename, Date, Time, User, ScanScope
ID, barcode, and every field not on the list are removed.

Generic tiled TIFF (no Aperio description): the tiled directories are kept, except those whose
description says "label" or "macro" (Ventana BIF's "Label_Image"); every non-tiled directory is
removed (label, macro, thumbnail or a small level alike: a leaked label is worse than a
missing thumbnail). The description is dropped (OME-XML and Philips XML can carry names and the
label itself). SubIFD pyramids (tag 330) are not followed: the tag is dropped and counted.

The TIFF reader and writer here are shared with ``portal.anonymiser.photos`` (TIFF photos).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from portal.anonymiser.report import DeidError, FileReport

# Fields of the Aperio description that say nothing about the patient, the slide's origin or when
# it was scanned. Anything else is removed. (Data: add a technical field here when a scanner needs it.)
APERIO_KEEP_FIELDS = frozenset(
    {
        "AppMag",
        "MPP",
        "StripeWidth",
        "Left",
        "Top",
        "LineCameraSkew",
        "LineAreaXOffset",
        "LineAreaYOffset",
        "Focus Offset",
        "OriginalWidth",
        "Originalheight",
        "OriginalHeight",
        "Filtered",
        "Exposure Time",
        "Exposure Scale",
        "DisplayColor",
        "ICC Profile",
        "Gamma",
    }
)

# Tags a reader needs to decode a directory's picture (baseline, tiling, colour). All others go.
DECODE_TAGS = frozenset(
    {
        254,  # NewSubfileType
        255,  # SubfileType
        256,  # ImageWidth
        257,  # ImageLength
        258,  # BitsPerSample
        259,  # Compression
        262,  # PhotometricInterpretation
        263,  # Threshholding
        266,  # FillOrder
        273,  # StripOffsets
        274,  # Orientation
        277,  # SamplesPerPixel
        278,  # RowsPerStrip
        279,  # StripByteCounts
        280,  # MinSampleValue
        281,  # MaxSampleValue
        282,  # XResolution
        283,  # YResolution
        284,  # PlanarConfiguration
        290,  # GrayResponseUnit
        291,  # GrayResponseCurve
        292,  # T4Options
        293,  # T6Options
        296,  # ResolutionUnit
        301,  # TransferFunction
        317,  # Predictor
        318,  # WhitePoint
        319,  # PrimaryChromaticities
        320,  # ColorMap
        321,  # HalftoneHints
        322,  # TileWidth
        323,  # TileLength
        324,  # TileOffsets
        325,  # TileByteCounts
        332,  # InkSet
        338,  # ExtraSamples
        339,  # SampleFormat
        340,  # SMinSampleValue
        341,  # SMaxSampleValue
        347,  # JPEGTables
        529,  # YCbCrCoefficients
        530,  # YCbCrSubSampling
        531,  # YCbCrPositioning
        532,  # ReferenceBlackWhite
        32997,  # ImageDepth
        32998,  # TileDepth
        34675,  # InterColorProfile (ICC)
    }
)

# How a dropped tag is counted in the report; any other dropped tag counts as "other_tag".
TAG_KINDS = {
    269: "description",  # DocumentName
    270: "description",  # ImageDescription
    285: "description",  # PageName
    271: "device",  # Make
    272: "device",  # Model
    305: "device",  # Software
    316: "device",  # HostComputer
    306: "date",  # DateTime
    315: "author",  # Artist
    33432: "author",  # Copyright
    34665: "exif",  # Exif IFD
    40965: "exif",  # Interoperability IFD
    34853: "gps",  # GPS IFD
    700: "xmp",
    33723: "iptc",
    34377: "photoshop",
    37724: "photoshop",  # ImageSourceData
    330: "subifd",  # SubIFDs (reduced levels or thumbnails in sub-directories)
}

NDPI_TAGS = frozenset({65420, 65421, 65422})

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
               16: 8, 17: 8, 18: 8}  # fmt: skip
_INT_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "l", 13: "I", 16: "Q", 17: "q", 18: "Q"}
_MAX_VALUE_BYTES = 256 * 1024 * 1024
_MAX_DIRECTORIES = 10_000
_CHUNK = 1024 * 1024

STRIP_OFFSETS, STRIP_BYTE_COUNTS, TILE_OFFSETS, TILE_BYTE_COUNTS = 273, 279, 324, 325
IMAGE_DESCRIPTION, NEW_SUBFILE_TYPE, SUBFILE_TYPE, COMPRESSION = 270, 254, 255, 259


# ---- files -------------------------------------------------------------------------------------


@contextmanager
def open_source(src: Any) -> Iterator[IO[bytes]]:
    """A binary, seekable file for ``src`` (a path or an open binary file)."""
    if hasattr(src, "read"):
        yield src
        return
    with open(src, "rb") as handle:
        yield handle


@contextmanager
def open_destination(dst: Any) -> Iterator[IO[bytes]]:
    """A binary file for ``dst`` (a path or an open binary file); a path half-written is removed."""
    if hasattr(dst, "write"):
        yield dst
        return
    path = Path(dst)
    handle = open(path, "wb")  # noqa: SIM115 - closed below, removed on failure
    try:
        yield handle
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    handle.close()


# ---- TIFF reading ------------------------------------------------------------------------------


@dataclass
class Entry:
    tag: int
    type: int
    count: int
    raw: bytes  # the value's bytes, in the file's byte order


@dataclass
class Directory:
    offset: int
    entries: dict[int, Entry]
    order: str  # "<" or ">"

    def ints(self, tag: int) -> list[int]:
        entry = self.entries.get(tag)
        if entry is None:
            return []
        fmt = _INT_FORMATS.get(entry.type)
        if fmt is None:
            raise DeidError(f"malformed TIFF: tag {tag} has non-integer type {entry.type}")
        return list(struct.unpack(f"{self.order}{entry.count}{fmt}", entry.raw))

    def int(self, tag: int, default: int = 0) -> int:
        values = self.ints(tag)
        return values[0] if values else default

    def text(self, tag: int) -> str:
        entry = self.entries.get(tag)
        if entry is None:
            return ""
        return entry.raw.split(b"\0", 1)[0].decode("latin-1")

    @property
    def tiled(self) -> bool:
        return TILE_OFFSETS in self.entries

    def data_tags(self) -> tuple[int, int]:
        """(offsets tag, byte counts tag) of the picture's blocks."""
        if self.tiled:
            pair = (TILE_OFFSETS, TILE_BYTE_COUNTS)
        elif STRIP_OFFSETS in self.entries:
            pair = (STRIP_OFFSETS, STRIP_BYTE_COUNTS)
        else:
            raise DeidError("malformed TIFF: a directory has neither strips nor tiles")
        if pair[1] not in self.entries:
            raise DeidError("malformed TIFF: a directory has offsets without byte counts")
        if len(self.ints(pair[0])) != len(self.ints(pair[1])):
            raise DeidError("malformed TIFF: offsets and byte counts differ in number")
        return pair


class TiffReader:
    """The header and directory chain of a (Big)TIFF file, read without touching the pictures."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        handle.seek(0, 2)
        self.size = handle.tell()
        handle.seek(0)
        header = handle.read(16)
        if header[:2] == b"II":
            self.order = "<"
        elif header[:2] == b"MM":
            self.order = ">"
        else:
            raise DeidError("not a TIFF file")
        if len(header) < 8:
            raise DeidError("truncated TIFF: header incomplete")
        magic = struct.unpack(self.order + "H", header[2:4])[0]
        if magic == 42:
            self.big = False
            first = struct.unpack(self.order + "I", header[4:8])[0]
        elif magic == 43:
            if len(header) < 16:
                raise DeidError("truncated TIFF: header incomplete")
            self.big = True
            first = struct.unpack(self.order + "Q", header[8:16])[0]
        else:
            raise DeidError("not a TIFF file")
        self.directories = self._chain(first)

    def _read_at(self, offset: int, length: int) -> bytes:
        if offset + length > self.size:
            raise DeidError(
                f"truncated TIFF: {length} bytes wanted at {offset}, file is {self.size}"
            )
        self.handle.seek(offset)
        return self.handle.read(length)

    def _chain(self, offset: int) -> list[Directory]:
        directories: list[Directory] = []
        seen: set[int] = set()
        while offset:
            if offset in seen or len(directories) >= _MAX_DIRECTORIES:
                raise DeidError("malformed TIFF: the directory chain loops")
            seen.add(offset)
            directory, offset = self._directory(offset)
            directories.append(directory)
        if not directories:
            raise DeidError("malformed TIFF: no image directory")
        return directories

    def _directory(self, offset: int) -> tuple[Directory, int]:
        o = self.order
        if self.big:
            count = struct.unpack(o + "Q", self._read_at(offset, 8))[0]
            if count > 0xFFFF:
                raise DeidError(f"malformed TIFF: a directory claims {count} entries")
            entry_size, head, inline, count_fmt, off_fmt = 20, 8, 8, "Q", "Q"
        else:
            count = struct.unpack(o + "H", self._read_at(offset, 2))[0]
            entry_size, head, inline, count_fmt, off_fmt = 12, 2, 4, "I", "I"
        body = self._read_at(offset + head, count * entry_size + inline)
        entries: dict[int, Entry] = {}
        for i in range(count):
            item = body[i * entry_size : (i + 1) * entry_size]
            tag, kind = struct.unpack(o + "HH", item[:4])
            number = struct.unpack(o + count_fmt, item[4 : 4 + inline])[0]
            field = item[4 + inline :]
            if kind not in _TYPE_SIZES:
                # An unknown type cannot be decoded, hence cannot be needed: dropped later.
                entries[tag] = Entry(tag, kind, 0, b"")
                continue
            length = _TYPE_SIZES[kind] * number
            if length > _MAX_VALUE_BYTES:
                raise DeidError(f"malformed TIFF: tag {tag} claims {length} bytes")
            if length <= inline:
                raw = field[:length]
            else:
                raw = self._read_at(struct.unpack(o + off_fmt, field)[0], length)
            entries[tag] = Entry(tag, kind, number, raw)
        following = struct.unpack(o + off_fmt, body[count * entry_size :])[0]
        return Directory(offset, entries, o), following


# ---- TIFF writing ------------------------------------------------------------------------------


def clean_entries(
    directory: Directory, report: FileReport, *, keep: frozenset[int] = frozenset()
) -> dict[int, Entry]:
    """The directory's decoding tags (and ``keep``); every other tag counted by kind and dropped."""
    if directory.int(COMPRESSION, 1) == 6:
        raise DeidError("old-style JPEG in TIFF (compression 6) is not supported")
    kept: dict[int, Entry] = {}
    for tag, entry in directory.entries.items():
        if (tag in DECODE_TAGS or tag in keep) and entry.count:
            kept[tag] = entry
        else:
            report.actions[TAG_KINDS.get(tag, "other_tag")] += 1
    return kept


def write_tiff(
    reader: TiffReader, out: IO[bytes], pages: list[tuple[Directory, dict[int, Entry]]]
) -> None:
    """Write ``pages`` (a directory and its final tags) as a new TIFF of the source's flavour.

    The picture blocks are copied byte for byte from the source; their offsets are rewritten.
    ``out`` must be seekable (each directory's link to the next is filled in afterwards).
    """
    o, big = reader.order, reader.big
    inline = 8 if big else 4
    offset_fmt = "Q" if big else "I"
    out.write(b"II" if o == "<" else b"MM")
    if big:
        out.write(struct.pack(o + "HHHQ", 43, 8, 0, 0))
        link_at = 8
    else:
        out.write(struct.pack(o + "HI", 42, 0))
        link_at = 4
    base = out.tell() - (16 if big else 8)
    for directory, entries in pages:
        offsets_tag, counts_tag = directory.data_tags()
        new_offsets = _copy_blocks(
            reader, out, base, big, directory.ints(offsets_tag), directory.ints(counts_tag)
        )
        entries = dict(entries)
        entries[offsets_tag] = Entry(
            offsets_tag,
            16 if big else 4,
            len(new_offsets),
            struct.pack(f"{o}{len(new_offsets)}{'Q' if big else 'I'}", *new_offsets),
        )
        fields: list[bytes] = []
        for tag in sorted(entries):
            entry = entries[tag]
            if len(entry.raw) <= inline:
                fields.append(entry.raw.ljust(inline, b"\0"))
            else:
                _pad(out)
                fields.append(struct.pack(o + offset_fmt, _position(out, base, big)))
                out.write(entry.raw)
        _pad(out)
        here = _position(out, base, big)
        out.write(struct.pack(o + ("Q" if big else "H"), len(entries)))
        for tag, field in zip(sorted(entries), fields, strict=True):
            entry = entries[tag]
            out.write(
                struct.pack(o + ("HHQ" if big else "HHI"), tag, entry.type, entry.count) + field
            )
        next_at = out.tell()
        out.write(b"\0" * inline)
        end = out.tell()
        out.seek(base + link_at)
        out.write(struct.pack(o + offset_fmt, here))
        out.seek(end)
        link_at = next_at - base


def _position(out: IO[bytes], base: int, big: bool) -> int:
    position = out.tell() - base
    if not big and position >= 2**32:
        raise DeidError("the rewritten file would exceed 4 GB, which classic TIFF cannot address")
    return position


def _pad(out: IO[bytes]) -> None:
    if out.tell() % 2:
        out.write(b"\0")


def _copy_blocks(
    reader: TiffReader, out: IO[bytes], base: int, big: bool, offsets: list[int], counts: list[int]
) -> list[int]:
    done: dict[tuple[int, int], int] = {}
    new: list[int] = []
    for offset, count in zip(offsets, counts, strict=True):
        if count == 0:
            new.append(0)
            continue
        if (offset, count) in done:  # a block shared by several tiles stays shared
            new.append(done[(offset, count)])
            continue
        if offset + count > reader.size:
            raise DeidError(
                f"truncated TIFF: a picture block ends at {offset + count}, file is {reader.size}"
            )
        _pad(out)
        position = _position(out, base, big)
        reader.handle.seek(offset)
        left = count
        while left:
            chunk = reader.handle.read(min(left, _CHUNK))
            if not chunk:
                raise DeidError("truncated TIFF: picture data ends early")
            out.write(chunk)
            left -= len(chunk)
        done[(offset, count)] = position
        new.append(position)
    return new


def is_reduced_resolution(directory: Directory) -> bool:
    return bool(directory.int(NEW_SUBFILE_TYPE) & 1) or directory.int(SUBFILE_TYPE) == 2


# ---- whole-slide images ------------------------------------------------------------------------


def clean_aperio_description(text: str) -> tuple[str, list[str]]:
    """(description with only the keep-list's fields, the keys removed)."""
    parts = text.split("|")
    kept = [parts[0]]
    removed: list[str] = []
    for part in parts[1:]:
        key = part.split("=", 1)[0].strip()
        if "=" in part and key in APERIO_KEEP_FIELDS:
            kept.append(part)
        else:
            removed.append(key)
    return "|".join(kept), removed


def _associated_kind(description: str) -> str:
    lowered = description.split("|", 1)[0].lower()  # Aperio: the head, not the fields
    for kind in ("label", "macro"):
        if kind in lowered:
            return kind
    return "associated_image"


def strip_wsi(src: Any, dst: Any) -> FileReport:
    """Copy the slide ``src`` to ``dst`` without its label, macro and identifying fields."""
    report = FileReport(kind="wsi", media_type="image/tiff")
    with open_source(src) as handle:
        head = handle.read(4)
        handle.seek(0)
        if head[:2] not in (b"II", b"MM"):
            raise DeidError("unsupported whole-slide format: not a TIFF file")
        reader = TiffReader(handle)
        directories = reader.directories
        if any(tag in NDPI_TAGS for tag in directories[0].entries):
            raise DeidError("unsupported whole-slide format: Hamamatsu NDPI")
        if not directories[0].tiled:
            raise DeidError("unsupported whole-slide format: the first image is not tiled")
        aperio = directories[0].text(IMAGE_DESCRIPTION).startswith("Aperio")
        pages = (
            _aperio_pages(directories, report) if aperio else _generic_pages(directories, report)
        )
        with open_destination(dst) as out:
            write_tiff(reader, out, pages)
    report.changed = bool(report.actions)
    return report


def _aperio_pages(
    directories: list[Directory], report: FileReport
) -> list[tuple[Directory, dict[int, Entry]]]:
    pages = []
    for index, directory in enumerate(directories):
        description = directory.text(IMAGE_DESCRIPTION)
        kind = _associated_kind(description)
        if index and ((not directory.tiled and index != 1) or kind != "associated_image"):
            report.actions[kind] += 1
            continue
        entries = clean_entries(directory, report, keep=frozenset({IMAGE_DESCRIPTION}))
        if IMAGE_DESCRIPTION in entries:
            cleaned, removed = clean_aperio_description(description)
            for _key in removed:
                report.actions["description_field"] += 1
            raw = cleaned.encode("latin-1") + b"\0"
            entries[IMAGE_DESCRIPTION] = Entry(IMAGE_DESCRIPTION, 2, len(raw), raw)
        pages.append((directory, entries))
    return pages


def _generic_pages(
    directories: list[Directory], report: FileReport
) -> list[tuple[Directory, dict[int, Entry]]]:
    pages = []
    for index, directory in enumerate(directories):
        kind = _associated_kind(directory.text(IMAGE_DESCRIPTION))
        if index and (not directory.tiled or kind != "associated_image"):
            report.actions[kind] += 1
            continue
        pages.append((directory, clean_entries(directory, report)))
    return pages
