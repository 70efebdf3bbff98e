from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.demo.seed import demo_totp_secret, totp_code


class Command(BaseCommand):
    help = "Print the current two-factor code of a demo account (demo only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.PORTAL_DEMO_ALLOWED:
            raise CommandError("demo_totp runs only with DJANGO_DEBUG=1 or PORTAL_DEMO_ALLOWED=1.")
        email = options["email"].strip().lower()
        if not email.endswith("@demo.example.jp"):
            raise CommandError(f"{email} is not a demo account.")
        period = settings.MFA_TOTP_PERIOD
        remaining = period - int(time.time()) % period
        self.stdout.write(totp_code(demo_totp_secret(email)))
        self.stderr.write(f"valid for {remaining} more seconds")
