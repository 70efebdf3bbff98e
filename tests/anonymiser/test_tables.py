"""Tables: every column has a role; IDs pseudonymised, dates shifted per subject, ages over 89 generalised."""

from __future__ import annotations

import codecs
import io
from datetime import date, timedelta

import pytest

from portal.anonymiser.keys import Keys
from portal.anonymiser.report import DeidError
from portal.anonymiser.tables import deidentify_table

KEYS = Keys(b"tests-table-key")
INSTITUTION = "1310001"
ROLES = {
    "patient_id": "pseudonymise",
    "name": "drop",
    "visit": "shift_date",
    "birth": "shift_date",
    "age": "generalise_age",
    "finding": "keep",
}


def _run(text: str | bytes, roles=ROLES, keys=KEYS):
    source = text.encode() if isinstance(text, str) else text
    out = io.BytesIO()
    report = deidentify_table(
        io.BytesIO(source), out, roles=roles, keys=keys, institution_code=INSTITUTION
    )
    return out.getvalue(), report


def _shifted(value: str, patient: str, layout: str, keys=KEYS) -> str:
    pseudonym = keys.pseudonym(institution_code=INSTITUTION, patient_id=patient)
    parts = value.replace("-", "").replace("/", "")
    day = date(int(parts[:4]), int(parts[4:6]), int(parts[6:]))
    return (day + timedelta(days=keys.date_offset_days(pseudonym))).strftime(layout)


SOURCE = (
    "patient_id,name,visit,birth,age,finding\r\n"
    'P-001,山田 太郎,2024-01-15,19300402,93,"nodule, 8 mm"\r\n'
    "P-002,Suzuki Hanako,2024/02/29,,45.5,normal\r\n"
    "Ｐ００１,山田 太郎,2024-03-01,19300402,90+,\r\n"
    "P-003,,,,,\r\n"
)


def test_every_role_applied():
    output, report = _run(SOURCE)

    p1 = KEYS.pseudonym(institution_code=INSTITUTION, patient_id="P-001")
    p2 = KEYS.pseudonym(institution_code=INSTITUTION, patient_id="P-002")
    p3 = KEYS.pseudonym(institution_code=INSTITUTION, patient_id="P-003")
    assert output.decode() == (
        "patient_id,visit,birth,age,finding\r\n"
        f"{p1},{_shifted('2024-01-15', 'P-001', '%Y-%m-%d')},"
        f'{_shifted("19300402", "P-001", "%Y%m%d")},90+,"nodule, 8 mm"\r\n'
        f"{p2},{_shifted('2024/02/29', 'P-002', '%Y/%m/%d')},,45.5,normal\r\n"
        f"{p1},{_shifted('2024-03-01', 'P-001', '%Y-%m-%d')},"
        f"{_shifted('19300402', 'P-001', '%Y%m%d')},90+,\r\n"
        f"{p3},,,,\r\n"
    )
    assert report.kind == "table"
    assert report.changed is True
    assert report.media_type == "text/csv"
    assert dict(report.actions) == {
        "row": 4,
        "pseudonymised": 4,
        "date_shifted": 5,
        "age_generalised": 1,
        "dropped_column": 1,
    }


def test_same_subject_same_pseudonym_and_offset_across_files_and_differently_with_another_key():
    first, _ = _run(SOURCE)
    second, _ = _run(
        "patient_id,visit\r\nP 001,2024-01-15\r\n",
        roles={"patient_id": "pseudonymise", "visit": "shift_date"},
    )
    other, _ = _run(SOURCE, keys=Keys(b"another-key"))

    first_row = first.decode().splitlines()[1].split(",")
    assert second.decode().splitlines()[1].split(",") == first_row[:2]
    assert other.decode().splitlines()[1].split(",")[0] != first_row[0]
    offset = (date.fromisoformat(first_row[1]) - date(2024, 1, 15)).days
    pseudonym = KEYS.pseudonym(institution_code=INSTITUTION, patient_id="P-001")
    assert offset == KEYS.date_offset_days(pseudonym)
    assert offset < 0


def test_utf8_bom_read_and_kept():
    output, _ = _run(codecs.BOM_UTF8 + "finding\r\n肺結節\r\n".encode(), roles={"finding": "keep"})
    assert output == codecs.BOM_UTF8 + "finding\r\n肺結節\r\n".encode()


def test_shift_jis_read_and_written_as_utf8_with_bom():
    output, report = _run("finding\r\n肺結節\r\n".encode("cp932"), roles={"finding": "keep"})
    assert output == codecs.BOM_UTF8 + "finding\r\n肺結節\r\n".encode()
    assert report.changed is False


def test_unsupported_encoding_refused():
    with pytest.raises(DeidError) as caught:
        _run("finding\r\nx\r\n".encode("utf-16"), roles={"finding": "keep"})
    assert caught.value.reason == "unsupported table encoding: UTF-16 (save the table as UTF-8)"


def test_columns_without_role_refused_and_no_output_left(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("patient_id,name,diagnosis,visit\r\nP1,X,Y,2024-01-01\r\n")
    target = tmp_path / "out.csv"
    with pytest.raises(DeidError) as caught:
        deidentify_table(
            source, target, roles={"patient_id": "pseudonymise", "visit": "shift_date"},
            keys=KEYS, institution_code=INSTITUTION,
        )  # fmt: skip
    assert caught.value.reason == "columns without a role: name, diagnosis"
    assert not target.exists()


def test_role_for_a_missing_column_refused():
    with pytest.raises(DeidError) as caught:
        _run("finding\r\nx\r\n", roles={"finding": "keep", "patinet_id": "pseudonymise"})
    assert caught.value.reason == "roles given for columns the table does not have: patinet_id"


def test_unknown_role_refused():
    with pytest.raises(DeidError) as caught:
        _run("finding\r\nx\r\n", roles={"finding": "hash"})
    assert caught.value.reason == "unknown column roles: hash"


def test_dates_need_exactly_one_patient_column():
    with pytest.raises(DeidError) as caught:
        _run("visit\r\n2024-01-01\r\n", roles={"visit": "shift_date"})
    assert caught.value.reason == (
        "shifting dates needs exactly one column with the role pseudonymise (the patient ID); "
        "the table has 0"
    )
    with pytest.raises(DeidError) as caught:
        _run(
            "a,b,visit\r\nP1,P2,2024-01-01\r\n",
            roles={"a": "pseudonymise", "b": "pseudonymise", "visit": "shift_date"},
        )
    assert caught.value.reason.endswith("the table has 2")


def test_two_pseudonymised_columns_allowed_without_dates():
    output, report = _run("a,b\r\nP1,P2\r\n", roles={"a": "pseudonymise", "b": "pseudonymise"})
    assert output.decode() == (
        f"a,b\r\n{KEYS.pseudonym(institution_code=INSTITUTION, patient_id='P1')},"
        f"{KEYS.pseudonym(institution_code=INSTITUTION, patient_id='P2')}\r\n"
    )
    assert report.actions["pseudonymised"] == 2


@pytest.mark.parametrize("value", ["2024-02-30", "15/01/2024", "2024-1-5", "yesterday"])
def test_bad_date_refused_naming_row_and_column(value):
    with pytest.raises(DeidError) as caught:
        _run(
            f"patient_id,visit\r\nP1,2024-01-01\r\nP2,{value}\r\n",
            roles={"patient_id": "pseudonymise", "visit": "shift_date"},
        )
    assert caught.value.reason == (
        f"row 3, column 'visit': {value!r} is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)"
    )


def test_date_without_patient_refused():
    with pytest.raises(DeidError) as caught:
        _run(
            "patient_id,visit\r\n,2024-01-01\r\n",
            roles={"patient_id": "pseudonymise", "visit": "shift_date"},
        )
    assert caught.value.reason == "row 2, column 'visit': a date without a patient ID"


@pytest.mark.parametrize("value", ["45歳", "-3", "old", "NaN"])
def test_bad_age_refused_naming_row_and_column(value):
    with pytest.raises(DeidError) as caught:
        _run(f"age\r\n50\r\n60\r\n{value}\r\n", roles={"age": "generalise_age"})
    assert caught.value.reason == f"row 4, column 'age': {value!r} is not an age in years"


def test_ages_at_the_limit():
    output, report = _run(
        "age\r\n89\r\n89.5\r\n90\r\n120\r\n0\r\n", roles={"age": "generalise_age"}
    )
    assert output.decode() == "age\r\n89\r\n90+\r\n90+\r\n90+\r\n0\r\n"
    assert report.actions["age_generalised"] == 3


def test_row_with_wrong_number_of_cells_refused():
    with pytest.raises(DeidError) as caught:
        _run("a,b\r\n1,2\r\n1,2,3\r\n", roles={"a": "keep", "b": "keep"})
    assert caught.value.reason == "row 3 has 3 cells, the header has 2"


def test_multiline_cell_counts_as_one_row():
    with pytest.raises(DeidError) as caught:
        _run(
            'note,age\r\n"two\r\nlines",50\r\nx,old\r\n',
            roles={"note": "keep", "age": "generalise_age"},
        )
    assert caught.value.reason == "row 3, column 'age': 'old' is not an age in years"


def test_empty_table_and_duplicate_columns_refused():
    with pytest.raises(DeidError) as caught:
        _run("", roles={})
    assert caught.value.reason == "the table is empty: a header row is required"
    with pytest.raises(DeidError) as caught:
        _run("a,a\r\n1,2\r\n", roles={"a": "keep"})
    assert caught.value.reason == "columns named more than once: a"


def test_keep_only_table_unchanged():
    output, report = _run("a,b\r\n1,2\r\n", roles={"a": "keep", "b": "keep"})
    assert output == b"a,b\r\n1,2\r\n"
    assert report.changed is False
    assert dict(report.actions) == {"row": 1}


def test_invalid_utf8_after_the_start_refused(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"a\r\n" + b"x\r\n" * 40_000 + b"\xff\r\n")
    target = tmp_path / "out.csv"
    with pytest.raises(DeidError) as caught:
        deidentify_table(
            source, target, roles={"a": "keep"}, keys=KEYS, institution_code=INSTITUTION
        )
    assert caught.value.reason.startswith("the table is not valid utf-8 text")
    assert not target.exists()
