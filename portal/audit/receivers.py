"""Sign-ins, failed sign-ins and sign-outs, recorded in the audit log.

Django announces these through its auth signals (allauth and the admin both sign in through
``django.contrib.auth``), so listening there is the one place that sees every one of them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from portal.accounts.lockout import attempted_email
from portal.audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_login")
def _record_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_record(action="accounts.login", actor=user, target=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _record_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    email = attempted_email(request, credentials) if request is not None else None
    audit_record(
        action="accounts.login_failed",
        actor=None,
        actor_email=email or "",
        details={"locked_out": bool(getattr(request, "axes_locked_out", False))},
    )


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _record_logout(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(action="accounts.logout", actor=user, target=user)
