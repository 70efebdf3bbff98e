"""DRF permissions built on the role vocabulary."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portal.accounts.roles import Role, has_mfa, has_role, requires_mfa


class IsAuthenticatedWithMFA(BasePermission):
    """The default for every endpoint: signed in, and with a second factor where the role needs one."""

    message = _("Set up two-factor authentication before using the API with this account.")

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return not requires_mfa(user) or has_mfa(user)


class HasRole(IsAuthenticatedWithMFA):
    """``HasRole.of(Role.AUDITOR)`` allows holders of that role only."""

    role: Role

    @classmethod
    def of(cls, role: Role) -> type[HasRole]:
        return type(f"Has{role.name.title()}Role", (cls,), {"role": role})

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and has_role(request.user, self.role)
