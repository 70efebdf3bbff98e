from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class PortalAccountAdapter(DefaultAccountAdapter):
    """Hook for allauth; e-mail addresses are kept in lower case so that lockout counts per person."""

    def clean_email(self, email: str) -> str:
        return super().clean_email(email).lower()
