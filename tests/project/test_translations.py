"""Every string of the UI is marked for translation and translated into Japanese."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib

from tests.support.ci import require

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "portal" / "locale" / "ja" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _messages(po: polib.POFile) -> set[tuple[str | None, str]]:
    return {(entry.msgctxt, entry.msgid) for entry in po if not entry.obsolete}


def test_translations_ja_catalogue_has_no_untranslated_or_fuzzy_entry():
    po = polib.pofile(str(PO))

    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []


def test_translations_compiled_catalogue_matches_source():
    po = polib.pofile(str(PO))
    mo = polib.mofile(str(MO))

    compiled = {(entry.msgctxt, entry.msgid): entry.msgstr for entry in mo}
    for entry in po:
        if entry.msgid_plural:
            continue
        assert compiled.get((entry.msgctxt, entry.msgid)) == entry.msgstr, entry.msgid


def test_translations_catalogue_covers_every_marked_string(tmp_path):
    """Extract the strings afresh from a copy of the code; none may be missing from the catalogue."""
    require(shutil.which("xgettext") is not None, "needs gettext's xgettext (apt-get install gettext)")
    shutil.copytree(ROOT / "portal", tmp_path / "portal", ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    env = {**os.environ, "DJANGO_DEBUG": "1", "PYTHONPATH": str(tmp_path), "PORTAL_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)

    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ja", "--no-location", "--no-obsolete"],
        cwd=tmp_path, env=env, check=True, capture_output=True,
    )

    fresh = _messages(polib.pofile(str(tmp_path / PO.relative_to(ROOT))))
    committed = _messages(polib.pofile(str(PO)))
    assert sorted(fresh - committed) == [], "run `make messages` and translate the new strings"
