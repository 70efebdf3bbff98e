"""DICOM PS3.15 Annex E, Table E.1-1 as data, and the action each attribute gets under a profile.

The table ships with the portal as ``data/dicom-annex-e-table-e1-1.tsv`` (copied unchanged from the
standard's edition named in its header): one row per attribute, the Basic Application Level
Confidentiality Profile action, then the action under each option where the option changes it.
Nothing here retypes the table; :func:`load_table` parses it.

Rules decided here (the standard leaves them to the implementation):

* **Options override Basic.** When a chosen option's column has an action for a tag, it replaces
  the Basic action.
* **Several chosen options disagree**: the least destructive action wins, in the order
  K (keep) < C (clean) < U < D < Z < X — each option is a deliberate request to retain something,
  and the standard allows each of them on its own. One exception: with Retain Longitudinal
  Temporal Information with Modified Dates (LMD) chosen, an attribute whose LMD action is C gets C
  even if another option says K: keeping a real date would defeat the date modification the job
  asked for (for times and sequences C and K come to the same in ``dicom.py``).
* **Combined actions resolve so that the output stays a valid object.** We cannot know in general
  which IOD (and so which attribute Type) an object follows, so a combined action takes the
  alternative that is valid whatever the Type: X/Z → Z (empty is valid for Type 2 and 3), X/D and
  Z/D and X/Z/D → D (a dummy value of the attribute's VR is valid for Type 1, 2 and 3),
  X/Z/U* → U (sequences of references: kept, with every UID inside them replaced). An attribute
  present with an empty or dummy value carries nothing identifying, while a missing Type 1 or 2
  attribute makes the object invalid and liable to be rejected by the archives it is sent to.
* **Options supported** (:data:`OPTIONS`): LMD, LFD, PAT, DEV, INST, DESC, UID and SP. SP (Retain
  Safe Private) keeps only the private attributes of ``data/safe_private.json`` — a vendor list
  that is EMPTY for now, so SP keeps no private attribute yet. SC (Clean Structured Content) and
  GR (Clean Graphics) are not supported: they require understanding the content (SR trees,
  graphic annotations) rather than a per-attribute action; asking for them raises ``ValueError``.
  LMD and LFD exclude each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
TABLE_PATH = DATA / "dicom-annex-e-table-e1-1.tsv"
SAFE_PRIVATE_PATH = DATA / "safe_private.json"

# Option codes a job may choose, with the DeidentificationMethodCodeSequence code (CID 7050).
OPTION_CODES: dict[str, tuple[str, str]] = {
    "LMD": ("113106", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "LFD": ("113107", "Retain Longitudinal Temporal Information Full Dates Option"),
    "PAT": ("113108", "Retain Patient Characteristics Option"),
    "DEV": ("113109", "Retain Device Identity Option"),
    "INST": ("113112", "Retain Institution Identity Option"),
    "DESC": ("113105", "Clean Descriptors Option"),
    "UID": ("113110", "Retain UIDs Option"),
    "SP": ("113111", "Retain Safe Private Option"),
}
BASIC_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTIONS: frozenset[str] = frozenset(OPTION_CODES)
UNSUPPORTED_OPTIONS: frozenset[str] = frozenset({"SC", "GR"})

SIMPLE_ACTIONS = ("K", "C", "U", "D", "Z", "X")  # least destructive first
_RANK = {action: index for index, action in enumerate(SIMPLE_ACTIONS)}
COMBINED = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "U", "X/Z/U": "U"}


@dataclass(frozen=True)
class Row:
    tag: str  # 8 lower-case hex digits, or a pattern (50xxxxxx, 60xx4000, 60xx3000, gggg eeee)
    basic: str
    options: dict[str, str] = field(default_factory=dict)  # option code -> action


@dataclass(frozen=True)
class Table:
    edition: str
    option_columns: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def exact(self) -> dict[int, Row]:
        return {int(row.tag, 16): row for row in self.rows if _is_exact(row.tag)}

    @property
    def patterns(self) -> dict[str, Row]:
        return {row.tag: row for row in self.rows if not _is_exact(row.tag)}


def _is_exact(tag: str) -> bool:
    return len(tag) == 8 and all(ch in "0123456789abcdef" for ch in tag)


@lru_cache(maxsize=1)
def load_table(path: Path | None = None) -> Table:
    edition = ""
    rows: list[Row] = []
    columns: list[str] = []
    with open(path or TABLE_PATH, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("#"):
                if "edition" in line and not edition:
                    edition = line.split("edition", 1)[1].strip(" .")
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            if not columns:
                columns = cells
                if columns[:2] != ["tag", "basic"]:
                    raise ValueError("The Annex E table must start with the columns tag, basic.")
                continue
            cells += [""] * (len(columns) - len(cells))
            tag = cells[0].strip().lower()
            basic = cells[1].strip()
            options = {
                columns[i]: cells[i].strip() for i in range(2, len(columns)) if cells[i].strip()
            }
            rows.append(Row(tag=tag, basic=basic, options=options))
    return Table(edition=edition, option_columns=tuple(columns[2:]), rows=tuple(rows))


def simplify(action: str) -> str:
    """A combined action reduced to the single action that keeps the object valid (see above)."""
    return COMBINED.get(action, action)


def validate_options(options: frozenset[str] | set[str]) -> frozenset[str]:
    options = frozenset(o.upper() for o in options)
    unsupported = options & UNSUPPORTED_OPTIONS
    if unsupported:
        raise ValueError(f"Option(s) not supported: {', '.join(sorted(unsupported))}.")
    unknown = options - OPTIONS
    if unknown:
        raise ValueError(f"Unknown option(s): {', '.join(sorted(unknown))}.")
    if {"LMD", "LFD"} <= options:
        raise ValueError("LMD (modified dates) and LFD (full dates) exclude each other.")
    return options


def resolve(row: Row, options: frozenset[str]) -> str:
    """The single action for ``row`` under the chosen options (combined actions simplified)."""
    if "LMD" in options and row.options.get("LMD") == "C":
        return "C"
    chosen = [row.options[o] for o in options if o in row.options]
    if not chosen:
        return simplify(row.basic)
    return min((simplify(a) for a in chosen), key=lambda a: _RANK.get(a, len(_RANK)))


@lru_cache(maxsize=64)
def actions_for(options: frozenset[str]) -> tuple[dict[int, str], dict[str, str]]:
    """({tag: action} for the exact rows, {pattern: action} for the pattern rows)."""
    options = validate_options(options)
    table = load_table()
    exact = {int(row.tag, 16): resolve(row, options) for row in table.rows if _is_exact(row.tag)}
    patterns = {row.tag: resolve(row, options) for row in table.rows if not _is_exact(row.tag)}
    return exact, patterns


def row_for(tag: int) -> Row | None:
    return _exact_rows().get(tag)


@lru_cache(maxsize=1)
def _exact_rows() -> dict[int, Row]:
    return load_table().exact


@lru_cache(maxsize=1)
def safe_private() -> frozenset[tuple[int, str, int]]:
    """(group, private creator, element byte) kept under SP. The shipped list is empty."""
    with open(SAFE_PRIVATE_PATH, encoding="utf-8") as handle:
        data = json.load(handle)
    return frozenset(
        (int(entry["group"], 16), entry["creator"].strip().upper(), int(entry["element"], 16) & 0xFF)
        for entry in data.get("attributes", [])
    )
