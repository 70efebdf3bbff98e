"""The one way the portal writes a CSV file that a person opens: UTF-8 with a byte-order mark,
CRLF lines, and no cell a spreadsheet would run as a formula.

Excel in Japan assumes Shift_JIS unless the file starts with a byte-order mark. A cell starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be taken as a formula (spreadsheet
or CSV injection): such a text cell is prefixed with a single quote, the OWASP rule, so an
applicant's title or an uploaded file name such as ``=HYPERLINK(...)`` reaches the society's staff
as text. Numbers are written as they are (a negative number is not text and runs nothing).

Rows are written one at a time, so an export of any length can be streamed.

Not for data files that tools read (the anonymiser's rewritten tables, a release manifest for the
download loop): there the quote would change the data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows it as text: a formula-like string gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """csv.writer writes into this and gets the line back, so each row can be yielded."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The byte-order mark, then one CSV line per row (the first row is usually the header)."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield BOM
    for row in rows:
        yield writer.writerow([safe_cell(value) for value in row])


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """The whole file as one string, for small files served at once."""
    return "".join(csv_lines(rows))


def csv_response(rows: Iterable[Iterable[Any]], *, filename: str) -> StreamingHttpResponse:
    """A streamed download of ``rows`` as ``filename`` (ASCII)."""
    return StreamingHttpResponse(
        (line.encode("utf-8") for line in csv_lines(rows)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
