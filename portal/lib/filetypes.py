"""Recognising uploaded documents by their content, not by the name or type the browser sent."""

from __future__ import annotations

import zipfile
from typing import IO

PDF = "application/pdf"
OLE_OFFICE = "application/x-ole-storage"  # legacy .doc / .xls / .ppt
OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def detect_document_type(head: bytes, handle: IO[bytes]) -> str | None:
    """The media type of a PDF or office document, or None for anything else."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return OLE_OFFICE
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return None
        finally:
            handle.seek(0)
        if "[Content_Types].xml" not in names:
            return None
        for prefix, media_type in OOXML.items():
            if any(name.startswith(prefix) for name in names):
                return media_type
    return None
