"""Photos (JPEG, PNG, TIFF): EXIF, XMP, IPTC, comments and embedded thumbnails removed.

Nothing is recompressed: the files are rewritten structure by structure.

- JPEG: the marker segments are copied except the ones that carry metadata. Kept: SOI, SOFn, DHT,
  DAC, DQT, DRI, DNL, SOS and its entropy-coded data (byte for byte), EOI, APP0 JFIF (its
  thumbnail, if any, emptied), APP14 Adobe (the colour transform) and APP2 ICC_PROFILE. Dropped:
  APP1 (EXIF with its thumbnail, XMP), APP13 (IPTC/Photoshop), APP0 JFXX thumbnails, every other
  APPn (MPF, FlashPix, maker segments), COM, and anything after EOI (e.g. MPF's second picture).
  Removing EXIF removes its Orientation: a camera photo stored sideways with an orientation flag
  will be shown sideways. This is accepted (rotating losslessly would need re-arranging the DCT
  blocks); the report counts it as "orientation_lost" when the flag was not "normal".
- PNG: the chunks are copied except tEXt, zTXt, iTXt (comments, and XMP/EXIF/IPTC "raw profiles"),
  eXIf, tIME and every ancillary chunk not on ``PNG_KEEP``; critical chunks other than
  IHDR/PLTE/IDAT/IEND cannot be decoded by anyone and are refused.
- TIFF: each kept directory keeps only the tags needed to decode it (``portal.anonymiser.wsi.DECODE_TAGS``);
  the EXIF and GPS directories, XMP, IPTC, Photoshop, descriptions, make/model/software, date,
  artist and copyright go; reduced-resolution directories (thumbnails) and SubIFDs are removed.
  Strips are copied byte for byte ("recompressed" never appears in the report).

Report actions: "exif", "xmp", "iptc", "comment", "thumbnail", "other_app", "trailing_data",
"orientation_lost" (JPEG); "exif", "xmp", "iptc", "comment", "time", "other_chunk" (PNG); tag kinds
of ``portal.anonymiser.wsi.TAG_KINDS`` and "thumbnail" (TIFF).
"""

from __future__ import annotations

import struct
from typing import IO, Any

from portal.anonymiser.report import DeidError, FileReport
from portal.anonymiser.wsi import (
    IMAGE_DESCRIPTION,
    TiffReader,
    clean_entries,
    is_reduced_resolution,
    open_destination,
    open_source,
    write_tiff,
)

# A JPEG is rewritten in memory; photos are far below this.
MAX_JPEG_BYTES = 512 * 1024 * 1024

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# Ancillary chunks about colour, transparency, pixel size and animation: nothing about a person.
PNG_KEEP = frozenset(
    {b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP", b"mDCv", b"cLLi", b"bKGD", b"hIST",
     b"tRNS", b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT"}
)  # fmt: skip
_PNG_TEXT_KINDS = {
    "xml:com.adobe.xmp": "xmp",
    "raw profile type exif": "exif",
    "raw profile type app1": "exif",
    "raw profile type iptc": "iptc",
    "raw profile type 8bim": "iptc",
    "raw profile type xmp": "xmp",
}

# JPEG markers kept as they are: SOFn, DHT, DAC, DQT, DRI, DNL, DHP, EXP, JPEG-LS SOF55/LSE.
_JPEG_KEEP = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF,
     0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDE, 0xDF, 0xF7, 0xF8}
)  # fmt: skip
_SOS, _EOI, _COM = 0xDA, 0xD9, 0xFE


def strip_photo(src: Any, dst: Any) -> FileReport:
    """Copy the photo ``src`` to ``dst`` without its metadata; DeidError for other formats."""
    with open_source(src) as handle:
        head = handle.read(8)
        handle.seek(0)
        if head[:3] == b"\xff\xd8\xff":
            report = FileReport(kind="photo", media_type="image/jpeg")
            data = handle.read(MAX_JPEG_BYTES + 1)
            if len(data) > MAX_JPEG_BYTES:
                raise DeidError("JPEG too large for a photo")
            output = _strip_jpeg(data, report)
            with open_destination(dst) as out:
                out.write(output)
        elif head == PNG_SIGNATURE:
            report = FileReport(kind="photo", media_type="image/png")
            with open_destination(dst) as out:
                _strip_png(handle, out, report)
        elif head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            report = FileReport(kind="photo", media_type="image/tiff")
            _strip_tiff(handle, dst, report)
        else:
            raise DeidError("unsupported photo format")
    report.changed = bool(report.actions)
    return report


# ---- JPEG --------------------------------------------------------------------------------------


def _strip_jpeg(data: bytes, report: FileReport) -> bytes:
    out = bytearray(b"\xff\xd8")
    size = len(data)
    pos = 2
    while True:
        if pos >= size:
            raise DeidError("truncated JPEG: no end-of-image marker")
        if data[pos] != 0xFF:
            raise DeidError(f"malformed JPEG: a marker was expected at byte {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            raise DeidError("truncated JPEG: no end-of-image marker")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out += b"\xff\xd9"
            if data[pos:].strip(b"\0"):
                report.actions["trailing_data"] += 1
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > size:
            raise DeidError("truncated JPEG: a segment's length is missing")
        length = int.from_bytes(data[pos : pos + 2], "big")
        end = pos + length
        if length < 2 or end > size:
            raise DeidError(f"truncated JPEG: a segment at byte {pos - 2} runs past the end")
        payload = data[pos + 2 : end]
        pos = end
        kept = _jpeg_segment(marker, payload, report)
        if kept is not None:
            out += bytes((0xFF, marker)) + (len(kept) + 2).to_bytes(2, "big") + kept
        if marker == _SOS:
            scan_end = _entropy_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end


def _entropy_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at ``pos`` ends (the next real marker)."""
    size = len(data)
    while True:
        j = data.find(b"\xff", pos)
        if j < 0:
            raise DeidError("truncated JPEG: the scan data has no end")
        k = j
        while k + 1 < size and data[k + 1] == 0xFF:
            k += 1
        if k + 1 >= size:
            raise DeidError("truncated JPEG: the scan data has no end")
        following = data[k + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte, restart marker
            pos = k + 2
            continue
        return j


def _jpeg_segment(marker: int, payload: bytes, report: FileReport) -> bytes | None:
    """The payload to write for this segment, or None to drop it (counted in the report)."""
    if marker in _JPEG_KEEP or marker == _SOS:
        return payload
    if marker == 0xE0:
        if payload.startswith(b"JFIF\0") and len(payload) >= 14:
            if payload[12] or payload[13] or len(payload) > 14:
                report.actions["thumbnail"] += 1
                return payload[:12] + b"\0\0"
            return payload
        report.actions["thumbnail" if payload.startswith(b"JFXX\0") else "other_app"] += 1
        return None
    if marker == 0xEE and payload.startswith(b"Adobe"):
        return payload
    if marker == 0xE2 and payload.startswith(b"ICC_PROFILE\0"):
        return payload
    if marker == 0xE1 and payload.startswith(b"Exif\0"):
        report.actions["exif"] += 1
        thumbnail, orientation = _exif_facts(payload[6:])
        if thumbnail:
            report.actions["thumbnail"] += 1
        if orientation not in (0, 1):
            report.actions["orientation_lost"] += 1
        return None
    if marker == 0xE1 and payload.startswith(b"http://ns.adobe.com/"):
        report.actions["xmp"] += 1
        return None
    if marker == 0xED:
        report.actions["iptc"] += 1
        return None
    if marker == _COM:
        report.actions["comment"] += 1
        return None
    report.actions["other_app"] += 1
    return None


def _exif_facts(tiff: bytes) -> tuple[bool, int]:
    """(has a second directory, i.e. a thumbnail; Orientation or 0) of an EXIF block."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        first = struct.unpack(order + "I", tiff[4:8])[0]
        count = struct.unpack(order + "H", tiff[first : first + 2])[0]
        orientation = 0
        for i in range(count):
            at = first + 2 + 12 * i
            tag, kind = struct.unpack(order + "HH", tiff[at : at + 4])
            if tag == 274 and kind == 3:
                orientation = struct.unpack(order + "H", tiff[at + 8 : at + 10])[0]
        after = first + 2 + 12 * count
        following = struct.unpack(order + "I", tiff[after : after + 4])[0]
        return following != 0, orientation
    except (KeyError, struct.error):
        return False, 0  # a broken EXIF block is dropped all the same


# ---- PNG ---------------------------------------------------------------------------------------


def _strip_png(handle: IO[bytes], out: IO[bytes], report: FileReport) -> None:
    handle.read(8)
    out.write(PNG_SIGNATURE)
    while True:
        head = handle.read(8)
        if len(head) < 8:
            raise DeidError("truncated PNG: no IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        if length > 2**31 - 1:
            raise DeidError("malformed PNG: a chunk is too long")
        keep = kind in PNG_CRITICAL or kind in PNG_KEEP
        if not keep and kind[:1].isupper():
            raise DeidError(f"unsupported PNG: unknown critical chunk {kind.decode('latin-1')!r}")
        if keep:
            out.write(head)
            _copy_exact(handle, out, length + 4)
        else:
            body = _read_exact(handle, length + 4) if kind in (b"tEXt", b"zTXt", b"iTXt") else None
            if body is None:
                _skip_exact(handle, length + 4)
            report.actions[_png_kind(kind, body)] += 1
        if kind == b"IEND":
            if handle.read(1):
                report.actions["trailing_data"] += 1
            return


def _png_kind(kind: bytes, body: bytes | None) -> str:
    if kind == b"eXIf":
        return "exif"
    if kind == b"tIME":
        return "time"
    if body is None:
        return "other_chunk"
    keyword = body.split(b"\0", 1)[0].decode("latin-1").strip().lower()
    return _PNG_TEXT_KINDS.get(keyword, "comment")


def _read_exact(handle: IO[bytes], length: int) -> bytes:
    data = handle.read(length)
    if len(data) != length:
        raise DeidError("truncated PNG: a chunk ends early")
    return data


def _skip_exact(handle: IO[bytes], length: int) -> None:
    while length:
        chunk = handle.read(min(length, 1024 * 1024))
        if not chunk:
            raise DeidError("truncated PNG: a chunk ends early")
        length -= len(chunk)


def _copy_exact(handle: IO[bytes], out: IO[bytes], length: int) -> None:
    while length:
        chunk = handle.read(min(length, 1024 * 1024))
        if not chunk:
            raise DeidError("truncated PNG: a chunk ends early")
        out.write(chunk)
        length -= len(chunk)


# ---- TIFF --------------------------------------------------------------------------------------


def _strip_tiff(handle: IO[bytes], dst: Any, report: FileReport) -> None:
    reader = TiffReader(handle)
    first = reader.directories[0]
    if first.text(IMAGE_DESCRIPTION).startswith("Aperio"):
        raise DeidError("this TIFF is an Aperio whole-slide image: de-identify it as a slide")
    pages = []
    for index, directory in enumerate(reader.directories):
        if index and is_reduced_resolution(directory):
            report.actions["thumbnail"] += 1
            continue
        pages.append((directory, clean_entries(directory, report)))
    with open_destination(dst) as out:
        write_tiff(reader, out, pages)
