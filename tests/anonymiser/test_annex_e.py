"""The Annex E table as data, and how options and combined actions resolve."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from portal.anonymiser import annex_e

SHARED = Path("/work/shared/data/dicom-annex-e-table-e1-1.tsv")


def test_table_is_the_shared_file_unchanged_and_fully_parsed():
    if SHARED.exists():
        assert (
            hashlib.sha256(annex_e.TABLE_PATH.read_bytes()).digest()
            == hashlib.sha256(SHARED.read_bytes()).digest()
        )
    table = annex_e.load_table()
    assert table.edition == "2024b"
    assert len(table.rows) == 621
    assert table.option_columns == (
        "SP",
        "UID",
        "DEV",
        "INST",
        "PAT",
        "LFD",
        "LMD",
        "DESC",
        "SC",
        "GR",
    )
    assert set(table.patterns) == {"50xxxxxx", "60xx4000", "60xx3000", "ggggeeee"}
    assert len(table.exact) == 617
    assert table.exact[0x00100010].basic == "Z"
    assert table.exact[0x00080018].options == {"UID": "K"}


@pytest.mark.parametrize(
    ("combined", "single"),
    [
        ("X/Z", "Z"),
        ("X/D", "D"),
        ("Z/D", "D"),
        ("X/Z/D", "D"),
        ("X/Z/U*", "U"),
        ("X", "X"),
        ("Z", "Z"),
        ("D", "D"),
        ("K", "K"),
        ("C", "C"),
        ("U", "U"),
    ],
)
def test_combined_actions_resolve_to_a_valid_single_action(combined, single):
    assert annex_e.simplify(combined) == single


def test_every_basic_action_of_the_table_is_known():
    basics = {row.basic for row in annex_e.load_table().rows}
    assert basics == {"D", "U", "X", "X/D", "X/Z", "X/Z/D", "X/Z/U*", "Z", "Z/D"}
    exact, patterns = annex_e.actions_for(frozenset())
    assert set(exact.values()) == {"D", "U", "X", "Z"}
    assert patterns == {"50xxxxxx": "X", "60xx4000": "X", "60xx3000": "X", "ggggeeee": "X"}


def test_options_override_basic():
    base, _ = annex_e.actions_for(frozenset())
    assert base[0x00080018] == "U"
    assert annex_e.actions_for(frozenset({"UID"}))[0][0x00080018] == "K"
    assert base[0x00080020] == "Z"  # StudyDate
    assert annex_e.actions_for(frozenset({"LMD"}))[0][0x00080020] == "C"
    assert annex_e.actions_for(frozenset({"LFD"}))[0][0x00080020] == "K"
    assert base[0x00080080] == "D"  # InstitutionName X/Z/D
    assert annex_e.actions_for(frozenset({"INST"}))[0][0x00080080] == "K"
    assert base[0x00181000] == "D"  # DeviceSerialNumber X/Z/D
    assert annex_e.actions_for(frozenset({"DEV"}))[0][0x00181000] == "K"
    assert base[0x00101010] == "X"  # PatientAge
    assert annex_e.actions_for(frozenset({"PAT"}))[0][0x00101010] == "K"
    assert annex_e.actions_for(frozenset({"PAT"}))[0][0x00102110] == "C"  # Allergies
    assert base[0x0008103E] == "X"  # SeriesDescription
    assert annex_e.actions_for(frozenset({"DESC"}))[0][0x0008103E] == "C"
    assert annex_e.actions_for(frozenset({"SP"}))[1]["ggggeeee"] == "C"


def test_disagreeing_options_take_the_least_destructive_but_lmd_modifies_dates():
    row = annex_e.Row(tag="00000001", basic="X", options={"DEV": "K", "DESC": "C"})
    assert annex_e.resolve(row, frozenset({"DEV", "DESC"})) == "K"
    row = annex_e.Row(tag="300c0127", basic="D", options={"DEV": "K", "LFD": "K", "LMD": "C"})
    assert annex_e.resolve(row, frozenset({"DEV", "LMD"})) == "C"
    assert annex_e.resolve(row, frozenset({"DEV"})) == "K"


@pytest.mark.parametrize("options", [{"SC"}, {"GR"}, {"NOPE"}, {"LMD", "LFD"}])
def test_unsupported_options_are_refused(options):
    with pytest.raises(ValueError):
        annex_e.validate_options(frozenset(options))


def test_safe_private_list_is_empty_for_now():
    assert annex_e.safe_private() == frozenset()


def test_core_modules_work_without_django_settings():
    # portal/__init__.py loads Celery (which imports Django); the core itself must need no settings.
    code = (
        "import io, portal.anonymiser.annex_e, portal.anonymiser.dicom, portal.anonymiser.pixels\n"
        "from datetime import date\n"
        "from portal.lib.synthetic import synthetic_file\n"
        "from portal.anonymiser.keys import Keys\n"
        "data = synthetic_file('ct', seed=1, study_date=date(2024, 1, 1), subject='P1')[0]\n"
        "r = portal.anonymiser.dicom.deidentify_dicom(io.BytesIO(data), io.BytesIO(),\n"
        "    profile=portal.anonymiser.dicom.Profile(institution_code='X'), keys=Keys(b'k'))\n"
        "assert r.subject_pseudonym\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("annex_e.py", "dicom.py", "pixels.py"):
        source = (Path(annex_e.__file__).parent / name).read_text()
        assert "import django" not in source and "from django" not in source
