"""The administration site, with every change written to the audit log.

Operators can change any table through the admin, including the libraries' tables (a user's
authenticators, e-mail addresses, API tokens). Every ModelAdmin registered on this site is given
``AuditedModelAdminMixin``, so that each addition, change and deletion it logs is also an audit
event, in the same transaction as the change.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from portal.audit.services import audit_record


def _message(message: Any) -> Any:
    if isinstance(message, list):
        return json.loads(json.dumps(message, default=str))
    return str(message)


class AuditedModelAdminMixin:
    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        audit_record(
            action="admin.object_added",
            actor=request.user,
            target=obj,
            details={"change": _message(message)},
        )
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        audit_record(
            action="admin.object_changed",
            actor=request.user,
            target=obj,
            details={"change": _message(message)},
        )
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        for obj in queryset:
            audit_record(action="admin.object_deleted", actor=request.user, target=obj)
        return super().log_deletions(request, queryset)  # type: ignore[misc]


class PortalAdminSite(admin.AdminSite):
    site_header = "Clinical Image Portal"
    site_title = "Clinical Image Portal"

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        base = admin_class or admin.ModelAdmin
        if not issubclass(base, AuditedModelAdminMixin):
            base = type(
                base.__name__, (AuditedModelAdminMixin, base), {"__module__": base.__module__}
            )
        super().register(model_or_iterable, base, **options)
