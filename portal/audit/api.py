"""The audit log over the API, for auditors' scripts: the same filters as the page, by cursor."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from portal.accounts.permissions import IsAuthenticatedWithMFA
from portal.audit.forms import AuditEventFilterForm
from portal.audit.models import EVENT_FIELDS, AuditEvent
from portal.audit.selectors import PAGE_SIZE, audit_event_list, audit_log_readable_by


class CanReadAuditLog(IsAuthenticatedWithMFA):
    """Auditors and platform operators (with their second factor, as for every endpoint)."""

    message = _("Only auditors and platform operators may read the audit log.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and audit_log_readable_by(request.user)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = list(EVENT_FIELDS)
        read_only_fields = fields


class AuditEventCursorPagination(CursorPagination):
    # Cursors by id: no COUNT and no OFFSET, however long the log.
    ordering = "-id"
    page_size = PAGE_SIZE


class AuditEventFilterBackend(BaseFilterBackend):
    """The page's filter form applied to query parameters; bad values answer 400."""

    _parameters = (
        (
            "actor",
            None,
            "An e-mail address, or the start of one followed by `*` (e.g. `tanaka@*`).",
        ),
        ("action", None, "An action, exactly (e.g. `accounts.login`)."),
        ("target_type", None, "The target's model label (e.g. `accounts.user`)."),
        ("target_id", None, "The target's id, exactly."),
        (
            "since",
            "date-time",
            "Events at or after this time; without an offset it is read as Japan time.",
        ),
        (
            "until",
            "date-time",
            "Events before this time; without an offset it is read as Japan time.",
        ),
    )

    def filter_queryset(
        self, request: Request, queryset: QuerySet[AuditEvent], view: Any
    ) -> QuerySet[AuditEvent]:
        form = AuditEventFilterForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(
                {
                    name: [str(message) for message in messages]
                    for name, messages in form.errors.items()
                }
            )
        return audit_event_list(filters=form.filters(), events=queryset)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": {"type": "string", **({"format": fmt} if fmt else {})},
            }
            for name, fmt, description in self._parameters
        ]


class AuditEventList(generics.ListAPIView):
    """Audit events, newest first, with the hashes that chain them (auditors and operators)."""

    permission_classes = [CanReadAuditLog]
    serializer_class = AuditEventSerializer
    pagination_class = AuditEventCursorPagination
    filter_backends = [AuditEventFilterBackend]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.all()
