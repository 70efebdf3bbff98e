from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.demo.seed import seed_demo


class Command(BaseCommand):
    help = "Load the demo societies, institutions and one account per role (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.PORTAL_DEMO_ALLOWED:
            raise CommandError(
                "Demo accounts have published passwords; seed_demo runs only with DJANGO_DEBUG=1 "
                "or PORTAL_DEMO_ALLOWED=1."
            )
        accounts = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data is loaded. Demo accounts:"))
        width = max(len(account.email) for account in accounts)
        for account in accounts:
            mfa = f"  TOTP secret {account.totp_secret}" if account.totp_secret else ""
            self.stdout.write(
                f"  {account.email:<{width}}  {account.role_ja} / {account.role_en}{mfa}"
            )
        self.stdout.write(f"Password for every demo account: {accounts[0].password}")
        self.stdout.write(
            "Accounts with a TOTP secret sign in with a second factor: "
            "`python manage.py demo_totp EMAIL` prints the current code."
        )
