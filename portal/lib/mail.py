"""E-mail sent once the transaction commits: nothing goes out for a change that rolls back."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction


def mail_after_commit(*, area: str, subject: str, body: str, recipients: Iterable[str]) -> None:
    """Send "[area] subject" to each distinct, non-empty address in ``recipients`` after the commit."""
    addresses = sorted({address for address in recipients if address})
    if not addresses:
        return
    full_subject = f"[{area}] {subject}"
    transaction.on_commit(
        lambda: send_mail(full_subject, body, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
    )
