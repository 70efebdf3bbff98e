"""The one CSV writer: byte-order mark, CRLF lines, formula-like text cells neutralised, streamed."""

from __future__ import annotations

import csv
import io
import itertools

import pytest

from portal.lib.csvexport import csv_lines, csv_response, csv_text, safe_cell


@pytest.mark.parametrize("hostile", ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tX", "\rX"])
def test_safe_cell_prefixes_a_formula_start_with_a_quote(hostile):
    assert safe_cell(hostile) == "'" + hostile


@pytest.mark.parametrize("value", ["胃生検", "a=b", "", " =1", 3, -2, 0.5, None])
def test_safe_cell_keeps_text_and_numbers_that_run_nothing(value):
    assert safe_cell(value) == value


def test_csv_text_starts_with_the_bom_and_reads_back():
    text = csv_text([["名前", "値"], ["=1+1", -2], ['a,"b"', "x\ny"]])

    assert text.startswith("\ufeff名前,値\r\n")
    assert list(csv.reader(io.StringIO(text.removeprefix("\ufeff")))) == [
        ["名前", "値"], ["'=1+1", "-2"], ['a,"b"', "x\ny"]]


def test_csv_lines_stream_row_by_row():
    endless = ([n] for n in itertools.count())

    assert list(itertools.islice(csv_lines(endless), 3)) == ["\ufeff", "0\r\n", "1\r\n"]


def test_csv_response_is_a_streamed_utf8_attachment():
    response = csv_response([["@x"]], filename="export.csv")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="export.csv"'
    assert b"".join(response.streaming_content) == "\ufeff'@x\r\n".encode()


# Files for tools, not for people's spreadsheets: a quote would change the data they carry.
DATA_FILE_WRITERS = {
    "portal/lib/csvexport.py",  # the one writer itself
    "portal/access/grant_views.py",  # a release's TSV manifest, read by the download loop
    "portal/demo/datasets.py",  # the demo's import manifests
    "portal/anonymiser/tables.py",  # the anonymiser's rewritten research tables
}


def test_no_other_module_writes_csv_by_itself():
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    writers = {
        path.relative_to(root).as_posix()
        for path in (root / "portal").rglob("*.py")
        if "csv.writer(" in (text := path.read_text(encoding="utf-8")) or "csv.DictWriter(" in text
    }

    assert writers <= DATA_FILE_WRITERS, sorted(writers - DATA_FILE_WRITERS)
