"""How django-axes finds the e-mail address a failed sign-in tried."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def attempted_email(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    # allauth authenticates with {"email": ..., "password": ...}; its form posts the field "login".
    value = (credentials or {}).get("email") or (credentials or {}).get("username")
    if not value and request is not None:
        value = request.POST.get("login") or request.POST.get("email")
    return value.strip().lower() if isinstance(value, str) else None
