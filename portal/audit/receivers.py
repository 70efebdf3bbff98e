"""Sign-ins, failed sign-ins and sign-outs, recorded in the audit log.

Django announces these through its auth signals (allauth and the admin both sign in through
``django.contrib.auth``), so listening there is the one place that sees every one of them.
"""

from __future__ import annotations

from typing import Any

from allauth.account.signals import (
    email_confirmed,
    password_changed,
    password_reset,
    user_signed_up,
)
from allauth.mfa.signals import (
    authentication_failed,
    authenticator_added,
    authenticator_removed,
    authenticator_reset,
)
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


# --- Second factor and password events (allauth) ---------------------------------------------

_MFA_ACTIONS = {
    "added": "accounts.mfa_activated",
    "removed": "accounts.mfa_deactivated",
    "reset": "accounts.mfa_recovery_codes_reset",
    "failed": "accounts.mfa_failed",
}


def _mfa_receiver(kind: str):  # type: ignore[no-untyped-def]
    def record(sender: Any, user: Any, authenticator: Any = None, **kwargs: Any) -> None:
        audit_record(
            action=_MFA_ACTIONS[kind],
            actor=user,
            target=user,
            details={"type": getattr(authenticator, "type", "")},
        )

    return record


for _signal, _kind in (
    (authenticator_added, "added"),
    (authenticator_removed, "removed"),
    (authenticator_reset, "reset"),
    (authentication_failed, "failed"),
):
    _signal.connect(_mfa_receiver(_kind), dispatch_uid=f"audit_mfa_{_kind}", weak=False)


@receiver(password_changed, dispatch_uid="audit_password_changed")
def _record_password_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(action="accounts.password_changed", actor=user, target=user)


@receiver(password_reset, dispatch_uid="audit_password_reset")
def _record_password_reset(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(action="accounts.password_reset", actor=user, target=user)


@receiver(user_signed_up, dispatch_uid="audit_signed_up")
def _record_signed_up(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(action="accounts.signed_up", actor=user, target=user)


@receiver(email_confirmed, dispatch_uid="audit_email_confirmed")
def _record_email_confirmed(sender: Any, request: Any, email_address: Any, **kwargs: Any) -> None:
    audit_record(
        action="accounts.email_confirmed",
        actor=email_address.user,
        target=email_address.user,
        details={"email": email_address.email},
    )
