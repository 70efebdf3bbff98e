"""De-identify a folder tree (or one file) into another with the same relative layout.

    python manage.py deidentify SRC DST --institution CODE [--profile basic] [--option LMD ...]
        [--table-roles roles.json]

Prints one line per file and a summary (counts per status and per action); exits with status 1
when any file failed. The key is ``settings.PORTAL_PSEUDONYM_KEY``. Nothing is written to the
database: this is the de-identification station's tool, e.g. before an import. Without
``--institution`` it refuses before reading or writing anything (as the job form requires the
code): every pseudonym is derived from it, so every DICOM file and table would fail one by one.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.anonymiser.report import DeidError


def _files_under(src: Path) -> list[tuple[Path, Path]]:
    """(path, path relative to ``src``) of every file under ``src`` (or ``src`` itself), hidden ones skipped, sorted."""
    if src.is_file():
        return [(src, Path(src.name))]
    files = []
    for folder, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                path = Path(folder) / name
                files.append((path, path.relative_to(src)))
    return files


class Command(BaseCommand):
    help = "De-identify every file under SRC into DST (same relative layout)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("src")
        parser.add_argument("dst")
        parser.add_argument("--profile", default="basic", choices=["basic"])
        parser.add_argument("--option", action="append", default=[], dest="options",
                            help="An Annex E option code (repeatable): LMD, LFD, PAT, DEV, INST, DESC, UID, SP.")
        parser.add_argument("--institution", default="",
                            help="Institution code (required): with the patient ID it derives each pseudonym.")
        parser.add_argument("--table-roles", default="",
                            help='A JSON file: {"file.csv" or "*": {"column": "role"}}.')

    def handle(self, *args: Any, **options: Any) -> None:
        from portal.anonymiser.annex_e import OPTIONS
        from portal.anonymiser.dispatch import deidentify_path
        from portal.anonymiser.keys import Keys
        from portal.deid.services import profile_class

        if not options["institution"].strip():
            raise CommandError(
                "--institution is required: every pseudonymous subject ID is derived from the institution "
                "code and the patient ID (e.g. --institution 1310001). Nothing was written."
            )
        src, dst = Path(options["src"]).resolve(), Path(options["dst"]).resolve()
        if not src.exists():
            raise CommandError(f"{src} does not exist.")
        if dst == src or src in dst.parents:
            raise CommandError("DST must lie outside SRC.")
        unknown = sorted(set(options["options"]) - set(OPTIONS))
        if unknown:
            raise CommandError(f"Unknown options: {', '.join(unknown)} (known: {', '.join(sorted(OPTIONS))}).")
        roles: dict[str, dict[str, str]] = {}
        if options["table_roles"]:
            roles = json.loads(Path(options["table_roles"]).read_text(encoding="utf-8"))
        profile = profile_class()(options=frozenset(options["options"]), institution_code=options["institution"])
        keys = Keys(settings.PORTAL_PSEUDONYM_KEY.encode())

        files = _files_under(src)
        statuses: Counter[str] = Counter()
        actions: Counter[str] = Counter()
        for number, (path, relative) in enumerate(files, start=1):
            table_roles = roles.get(relative.as_posix()) or roles.get(relative.name) or roles.get("*")
            try:
                report = deidentify_path(path, dst / relative, profile=profile, keys=keys, table_roles=table_roles)
            except DeidError as error:
                status, detail = "failed", error.reason
            else:
                actions.update(report.actions)
                if report.held_back:
                    status, detail = "held_back", report.reason
                    (dst / relative).unlink(missing_ok=True)
                else:
                    status, detail = ("changed" if report.changed else "unchanged"), report.kind
            statuses[status] += 1
            self.stdout.write(f"[{number}/{len(files)}] {status:<9} {relative.as_posix()}" + (f" ({detail})" if detail else ""))
        self.stdout.write("Summary: " + ", ".join(
            f"{status} {statuses[status]}" for status in ("changed", "unchanged", "held_back", "failed")
        ))
        if actions:
            self.stdout.write("Actions: " + ", ".join(f"{code} {count}" for code, count in sorted(actions.items())))
        if statuses["failed"]:
            raise CommandError(f"{statuses['failed']} of {len(files)} files failed.", returncode=1)
