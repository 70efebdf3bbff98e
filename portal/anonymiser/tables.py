"""Tables (CSV): every column given a role, identifiers pseudonymised or dropped, dates shifted.

Roles (``ROLES``):

- ``pseudonymise``: the patient ID → the society-common pseudonym (``Keys.pseudonym`` with the
  job's institution code). With any ``shift_date`` column there must be exactly one: it names the
  subject whose date offset applies to the row.
- ``drop``: the column is removed.
- ``shift_date``: YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD shifted by the subject's
  ``Keys.date_offset_days`` (the same offset as the subject's DICOM dates), written back in the
  same format.
- ``generalise_age``: ages over 89 become "90+" (whole or decimal numbers of years; "90+" stays).
- ``keep``: copied unchanged.

A column without a role, a role naming no column, a date or age that cannot be read, a row with
the wrong number of cells: each is refused with ``DeidError`` naming the row and the column (row 1
is the header, as a spreadsheet numbers them). Empty cells stay empty.

Input: UTF-8 with or without BOM; Shift_JIS (cp932) is recognised when the start of the file is
not UTF-8 but is valid cp932. Output: UTF-8, with a BOM when the input had one or was Shift_JIS
(spreadsheet programs in Japan need it to read UTF-8). The file is read and written row by row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from portal.anonymiser.keys import Keys
from portal.anonymiser.report import DeidError, FileReport
from portal.anonymiser.wsi import open_destination, open_source

PSEUDONYMISE, DROP, SHIFT_DATE, GENERALISE_AGE, KEEP = (
    "pseudonymise",
    "drop",
    "shift_date",
    "generalise_age",
    "keep",
)
ROLES = (PSEUDONYMISE, DROP, SHIFT_DATE, GENERALISE_AGE, KEEP)
AGE_LIMIT = 89
AGE_TOP = "90+"

_DATE_FORMATS = (
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), "{:04d}-{:02d}-{:02d}"),
    (re.compile(r"^(\d{4})/(\d{2})/(\d{2})$"), "{:04d}/{:02d}/{:02d}"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "{:04d}{:02d}{:02d}"),
)
_SNIFF_BYTES = 64 * 1024


def deidentify_table(
    src: Any, dst: Any, *, roles: dict[str, str], keys: Keys, institution_code: str
) -> FileReport:
    """Copy the CSV ``src`` to ``dst`` with each column treated by its role."""
    report = FileReport(kind="table", media_type="text/csv")
    unknown_roles = sorted({role for role in roles.values() if role not in ROLES})
    if unknown_roles:
        raise DeidError(f"unknown column roles: {', '.join(unknown_roles)}")
    with open_source(src) as raw:
        encoding, bom = _encoding(raw)
        text = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict")
        try:
            reader = csv.reader(text)
            header = _header(reader, roles)
            column_roles = [roles[name] for name in header]
            patient = column_roles.index(PSEUDONYMISE) if SHIFT_DATE in column_roles else None
            with open_destination(dst) as out_raw:
                out = io.TextIOWrapper(
                    out_raw,
                    encoding="utf-8-sig" if bom else "utf-8",
                    newline="",
                    write_through=True,
                )
                try:
                    writer = csv.writer(out, lineterminator="\r\n")
                    writer.writerow(
                        [n for n, r in zip(header, column_roles, strict=True) if r != DROP]
                    )
                    _rows(
                        reader,
                        writer,
                        header,
                        column_roles,
                        patient,
                        keys,
                        institution_code,
                        report,
                    )
                    out.flush()
                finally:
                    out.detach()
        except UnicodeDecodeError as error:
            raise DeidError(
                f"the table is not valid {encoding} text (byte {error.start} of a line)"
            ) from error
        except csv.Error as error:
            raise DeidError(f"malformed CSV: {error}") from error
        finally:
            text.detach()
    report.actions["dropped_column"] = column_roles.count(DROP)
    report.actions = +report.actions  # zero counts out
    report.changed = any(role != KEEP for role in column_roles)
    return report


def _encoding(raw: IO[bytes]) -> tuple[str, bool]:
    """(Python codec, whether the output gets a BOM), from the start of the file."""
    start = raw.read(_SNIFF_BYTES)
    raw.seek(0)
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DeidError("unsupported table encoding: UTF-16 (save the table as UTF-8)")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(start, final=len(start) < _SNIFF_BYTES)
        return "utf-8", False
    except UnicodeDecodeError:
        pass
    try:
        start.decode("cp932")
    except UnicodeDecodeError:
        try:  # the sample may end inside a two-byte character
            start[:-1].decode("cp932")
        except UnicodeDecodeError:
            raise DeidError("unsupported table encoding: neither UTF-8 nor Shift_JIS") from None
    return "cp932", True


def _header(reader: Any, roles: dict[str, str]) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise DeidError("the table is empty: a header row is required") from None
    if not any(header):
        raise DeidError("the table has no header row")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DeidError(f"columns named more than once: {', '.join(duplicates)}")
    without = [name for name in header if name not in roles]
    if without:
        raise DeidError(f"columns without a role: {', '.join(without)}")
    absent = sorted(set(roles) - set(header))
    if absent:
        raise DeidError(f"roles given for columns the table does not have: {', '.join(absent)}")
    column_roles = [roles[name] for name in header]
    if SHIFT_DATE in column_roles and column_roles.count(PSEUDONYMISE) != 1:
        raise DeidError(
            "shifting dates needs exactly one column with the role pseudonymise (the patient ID); "
            f"the table has {column_roles.count(PSEUDONYMISE)}"
        )
    return header


def _rows(
    reader: Any,
    writer: Any,
    header: list[str],
    column_roles: list[str],
    patient: int | None,
    keys: Keys,
    institution_code: str,
    report: FileReport,
) -> None:
    width = len(header)
    pseudonyms: dict[str, str] = {}
    row = 1  # records as a spreadsheet numbers them: the header is row 1
    for cells in reader:
        row += 1
        if not cells or (len(cells) == 1 and not cells[0].strip() and width > 1):
            continue  # a blank line
        if len(cells) != width:
            raise DeidError(f"row {row} has {len(cells)} cells, the header has {width}")
        subject = ""
        if patient is not None and cells[patient].strip():
            subject = _pseudonym(
                cells[patient], keys, institution_code, pseudonyms, row, header[patient]
            )
        out: list[str] = []
        for index, (value, role) in enumerate(zip(cells, column_roles, strict=True)):
            if role == DROP:
                continue
            if role == KEEP or not value.strip():
                out.append(value)
            elif role == PSEUDONYMISE:
                out.append(
                    _pseudonym(value, keys, institution_code, pseudonyms, row, header[index])
                )
                report.actions["pseudonymised"] += 1
            elif role == SHIFT_DATE:
                if not subject:
                    raise DeidError(
                        f"row {row}, column {header[index]!r}: a date without a patient ID"
                    )
                out.append(_shift(value, keys.date_offset_days(subject), row, header[index]))
                report.actions["date_shifted"] += 1
            else:
                generalised = _age(value, row, header[index])
                report.actions["age_generalised"] += generalised != value
                out.append(generalised)
        writer.writerow(out)
        report.actions["row"] += 1


def _pseudonym(
    value: str, keys: Keys, institution_code: str, cache: dict[str, str], row: int, column: str
) -> str:
    if value not in cache:
        try:
            cache[value] = keys.pseudonym(institution_code=institution_code, patient_id=value)
        except ValueError as error:
            raise DeidError(f"row {row}, column {column!r}: {error}") from error
    return cache[value]


def _shift(value: str, offset: int, row: int, column: str) -> str:
    text = value.strip()
    for pattern, layout in _DATE_FORMATS:
        match = pattern.match(text)
        if match:
            try:
                day = date(*(int(part) for part in match.groups()))
            except ValueError:
                break
            moved = day + timedelta(days=offset)
            return layout.format(moved.year, moved.month, moved.day)
    raise DeidError(
        f"row {row}, column {column!r}: {value!r} is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)"
    )


def _age(value: str, row: int, column: str) -> str:
    text = value.strip()
    if text == AGE_TOP:
        return value
    try:
        years = Decimal(text)
    except InvalidOperation:
        years = None
    if years is None or not years.is_finite() or years < 0:
        raise DeidError(f"row {row}, column {column!r}: {value!r} is not an age in years")
    return AGE_TOP if years > AGE_LIMIT else value
