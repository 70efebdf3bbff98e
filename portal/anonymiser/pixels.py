"""Burned-in text: rules as data, and masking of uncompressed pixel data while it is copied.

Rules live in ``burned_in_rules.json`` next to this module (see its ``_comment``): per modality and
manufacturer, rectangles (fractions of the image or pixels) set to 0 in every frame. Adding a rule
is adding an object to that file.

Masking works on the PixelData bytes as they stream from the source to the destination, a band of
whole rows at a time, so a 1 GB multi-frame object never sits in memory. It handles native
(uncompressed) data with BitsAllocated a multiple of 8, any samples per pixel, either planar
configuration. Compressed (encapsulated) pixel data cannot be masked without decoding and
re-encoding it, so an object that needs masking and is compressed is held back (see ``dicom.py``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

RULES_PATH = Path(__file__).resolve().parent / "burned_in_rules.json"
CHUNK = 1 << 20  # bytes copied at a time


@dataclass(frozen=True)
class Rule:
    name: str
    modality: str
    manufacturer: re.Pattern[str] | None
    model: re.Pattern[str] | None
    rows: int | None
    columns: int | None
    regions: tuple[dict[str, Any], ...]

    def matches(self, *, modality: str, manufacturer: str, model: str, rows: int, columns: int) -> bool:
        if self.modality != modality.strip().upper():
            return False
        if self.manufacturer and not self.manufacturer.search(manufacturer or ""):
            return False
        if self.model and not self.model.search(model or ""):
            return False
        if self.rows is not None and self.rows != rows:
            return False
        return self.columns is None or self.columns == columns

    def rectangles(self, rows: int, columns: int) -> list[tuple[int, int, int, int]]:
        """(top, left, bottom, right) in pixels, bottom/right exclusive, clipped to the image."""
        boxes = []
        for region in self.regions:
            if region.get("units", "fraction") == "pixels":
                top, left = int(region["top"]), int(region["left"])
                bottom, right = int(region["bottom"]), int(region["right"])
            else:
                # Fractions round outwards: a band of 8% covers at least 8% of the rows.
                top = int(float(region["top"]) * rows)
                left = int(float(region["left"]) * columns)
                bottom = math.ceil(float(region["bottom"]) * rows)
                right = math.ceil(float(region["right"]) * columns)
            top, bottom = max(0, top), min(rows, bottom)
            left, right = max(0, left), min(columns, right)
            if bottom > top and right > left:
                boxes.append((top, left, bottom, right))
        return boxes


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    assume_burned_in_when_absent: frozenset[str]

    def find(self, *, modality: str, manufacturer: str = "", model: str = "", rows: int = 0, columns: int = 0) -> Rule | None:
        for rule in self.rules:
            if rule.matches(modality=modality, manufacturer=manufacturer, model=model, rows=rows, columns=columns):
                return rule
        return None


def _pattern(text: str | None) -> re.Pattern[str] | None:
    return re.compile(text, re.IGNORECASE) if text else None


def load_rules(path: Path | str | None = None, data: dict[str, Any] | None = None) -> Rules:
    """The rules of ``path`` (default: the shipped ``burned_in_rules.json``) or of ``data``."""
    if data is None:
        with open(path or RULES_PATH, encoding="utf-8") as handle:
            data = json.load(handle)
    rules = tuple(
        Rule(
            name=item.get("name", ""),
            modality=item["modality"].strip().upper(),
            manufacturer=_pattern(item.get("manufacturer")),
            model=_pattern(item.get("model")),
            rows=item.get("rows"),
            columns=item.get("columns"),
            regions=tuple(item["regions"]),
        )
        for item in data.get("rules", [])
    )
    assume = frozenset(m.strip().upper() for m in data.get("assume_burned_in_when_absent", []))
    return Rules(rules=rules, assume_burned_in_when_absent=assume)


def _read_exactly(src: BinaryIO, size: int) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise EOFError(f"expected {size} bytes, found {len(data)}")
    return data


def copy_chunks(src: BinaryIO, dst: BinaryIO, length: int) -> None:
    """Copy ``length`` bytes from ``src`` to ``dst``, a chunk at a time."""
    remaining = length
    while remaining:
        block = _read_exactly(src, min(CHUNK, remaining))
        dst.write(block)
        remaining -= len(block)


@dataclass(frozen=True)
class Geometry:
    rows: int
    columns: int
    samples: int
    bits_allocated: int
    planar: int  # PlanarConfiguration: 0 = RGBRGB..., 1 = RR..GG..BB..
    frames: int

    @property
    def maskable(self) -> bool:
        return (
            self.rows > 0 and self.columns > 0 and self.samples > 0 and self.frames > 0
            and self.bits_allocated > 0 and self.bits_allocated % 8 == 0
        )

    @property
    def line_bytes(self) -> int:
        """Bytes of one line: a row of all samples (planar 0) or a row of one sample plane."""
        per_pixel = self.bits_allocated // 8 * (self.samples if self.planar == 0 else 1)
        return self.columns * per_pixel

    @property
    def lines(self) -> int:
        return self.rows * (1 if self.planar == 0 else self.samples) * self.frames

    @property
    def pixel_bytes(self) -> int:
        return self.line_bytes * self.lines


def copy_masked(
    src: BinaryIO, dst: BinaryIO, length: int, geometry: Geometry, boxes: list[tuple[int, int, int, int]]
) -> int:
    """Copy native pixel data, zeroing ``boxes`` in every frame; returns the lines masked.

    Reads whole lines, at most about ``CHUNK`` bytes at a time; bytes past the last frame (the
    padding byte of an odd length) are copied unchanged.
    """
    if length < geometry.pixel_bytes:
        raise EOFError(
            f"the pixel data holds {length} bytes, {geometry.pixel_bytes} expected for its frames"
        )
    line_bytes = geometry.line_bytes
    per_pixel = line_bytes // geometry.columns
    lines_per_chunk = max(1, CHUNK // line_bytes)
    masked = 0
    # For every image row, the byte ranges (within a line) to clear.
    clear: dict[int, list[tuple[int, int]]] = {}
    for top, left, bottom, right in boxes:
        for row in range(top, bottom):
            clear.setdefault(row, []).append((left * per_pixel, right * per_pixel))
    line = 0
    total = geometry.lines
    while line < total:
        count = min(lines_per_chunk, total - line)
        block = bytearray(_read_exactly(src, count * line_bytes))
        for index in range(count):
            ranges = clear.get((line + index) % geometry.rows)
            if ranges:
                base = index * line_bytes
                for start, end in ranges:
                    block[base + start : base + end] = bytes(end - start)
                masked += 1
        dst.write(block)
        line += count
    copy_chunks(src, dst, length - geometry.pixel_bytes)
    return masked
