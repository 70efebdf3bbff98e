"""``manage.py audit_verify``: prove that the audit log is intact, or name the first bad event."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit.verify import verify_chain


class Command(BaseCommand):
    help = (
        "Walk the audit chain from the first event, recomputing every hash; exit non-zero naming "
        "the first event that was changed, removed or inserted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--chunk-size", type=int, default=5000, help="Events read per query (default 5000)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        started = time.monotonic()

        def progress(checked: int) -> None:
            rate = checked / max(time.monotonic() - started, 1e-9)
            self.stderr.write(f"… {checked} events checked ({rate:,.0f}/s)")

        report = verify_chain(
            chunk_size=options["chunk_size"], progress=progress if verbosity > 1 else None
        )
        if not report.ok:
            raise CommandError(
                f"Audit chain broken at event #{report.bad_event_id}: {report.problem}. "
                f"{report.checked} events before it are intact."
            )
        self.stdout.write(self.style.SUCCESS(f"OK: {report.checked} events checked, chain intact."))
