"""Choose the de-identification handler for one file by its content, and run it.

Plain Python (no Django): the management command, the Celery tasks and the de-identification
stations call ``deidentify_path``. The handlers are imported lazily so that this module loads even
where only some of them are installed.

How a file is recognised (content first, the name only for CSV):

- DICOM: the ``DICM`` marker after the 128-byte preamble, or a ``.dcm`` name (a file without the
  preamble is then read by pydicom, which refuses what is not DICOM);
- whole-slide image: a TIFF (classic or BigTIFF) whose first image description starts with
  ``Aperio``, or whose first image is tiled (TileWidth) and which holds more than one image (a
  pyramid); BigTIFF is always treated as a slide;
- photo: JPEG, PNG, or any other TIFF;
- table: a ``.csv`` name (with ``table_roles``; without them the file fails, naming the reason);
- anything else fails with ``DeidError("unsupported file type")``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from portal.anonymiser.report import DeidError, FileReport

KIND_DICOM = "dicom"
KIND_WSI = "wsi"
KIND_PHOTO = "photo"
KIND_TABLE = "table"

_TIFF_DESCRIPTION = 270
_TIFF_TILE_WIDTH = 322


def _tiff_first_ifd(head: bytes, handle: Any) -> tuple[str, bool, bool]:
    """(image description, tiled, more than one image) of a classic TIFF's first IFD."""
    order = "<" if head[:2] == b"II" else ">"
    handle.seek(4)
    (offset,) = struct.unpack(order + "I", handle.read(4))
    handle.seek(offset)
    raw = handle.read(2)
    if len(raw) != 2:
        raise DeidError("truncated TIFF: the first image directory is missing")
    (count,) = struct.unpack(order + "H", raw)
    entries = handle.read(12 * count)
    if len(entries) != 12 * count:
        raise DeidError("truncated TIFF: the first image directory is cut short")
    description = ""
    tiled = False
    for index in range(count):
        tag, kind, number, value = struct.unpack(order + "HHI4s", entries[12 * index: 12 * index + 12])
        if tag == _TIFF_TILE_WIDTH:
            tiled = True
        elif tag == _TIFF_DESCRIPTION and kind == 2:
            if number <= 4:
                text = value[:number]
            else:
                (where,) = struct.unpack(order + "I", value)
                position = handle.tell()
                handle.seek(where)
                text = handle.read(min(number, 4096))
                handle.seek(position)
            description = text.rstrip(b"\0").decode("latin-1")
    raw_next = handle.read(4)
    more = len(raw_next) == 4 and struct.unpack(order + "I", raw_next)[0] != 0
    return description, tiled, more


def detect_kind(src: Path) -> str:
    """``dicom``, ``wsi``, ``photo`` or ``table`` for ``src``; DeidError when none applies."""
    with open(src, "rb") as handle:
        head = handle.read(132)
        if len(head) >= 132 and head[128:132] == b"DICM":
            return KIND_DICOM
        if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n":
            return KIND_PHOTO
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            description, tiled, more = _tiff_first_ifd(head, handle)
            if description.startswith("Aperio") or (tiled and more):
                return KIND_WSI
            return KIND_PHOTO
        if head[:4] in (b"II+\x00", b"MM\x00+"):
            return KIND_WSI
    suffix = src.suffix.lower()
    if suffix == ".dcm":
        return KIND_DICOM
    if suffix == ".csv":
        return KIND_TABLE
    raise DeidError("unsupported file type")


def deidentify_path(
    src: Path, dst: Path, *, profile: Any, keys: Any, table_roles: dict[str, str] | None = None,
    burned_in_reviewed: bool = False,
) -> FileReport:
    """De-identify ``src`` into ``dst`` (whose folder is created) with the handler its content calls for.

    ``profile`` is a ``portal.anonymiser.annex_e.Profile`` (its ``institution_code`` also serves the
    tables); ``keys`` a ``portal.anonymiser.keys.Keys``. Raises ``DeidError`` for a file that cannot be
    handled; ``dst`` is then removed so that no partial output remains. ``burned_in_reviewed``
    (DICOM only) waives the hold-back of an object with burned-in text no rule covers, after review.
    """
    src, dst = Path(src), Path(dst)
    kind = detect_kind(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if kind == KIND_DICOM:
            from portal.anonymiser.dicom import deidentify_dicom

            return deidentify_dicom(src, dst, profile=profile, keys=keys, burned_in_reviewed=burned_in_reviewed)
        if kind == KIND_WSI:
            from portal.anonymiser.wsi import strip_wsi

            return strip_wsi(src, dst)
        if kind == KIND_PHOTO:
            from portal.anonymiser.photos import strip_photo

            return strip_photo(src, dst)
        if not table_roles:
            raise DeidError("a table needs a role for each column (none were given)")
        from portal.anonymiser.tables import deidentify_table

        return deidentify_table(
            src, dst, roles=dict(table_roles), keys=keys,
            institution_code=getattr(profile, "institution_code", ""),
        )
    except DeidError:
        dst.unlink(missing_ok=True)
        raise
    except Exception as error:  # a handler's unexpected failure is still this one file's failure
        dst.unlink(missing_ok=True)
        raise DeidError(f"{kind}: {type(error).__name__}: {error}") from error
