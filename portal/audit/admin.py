"""The audit log in the Django admin: read-only, for operators who are already there.

Auditors use their own page (``audit:event_list``), which pages by id; the admin pages by OFFSET
and counts, so here the count is capped and the action filter lists recent actions only, to keep
the changelist usable on a log of millions of events.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from portal.audit.models import EVENT_FIELDS, AuditEvent
from portal.audit.selectors import audit_action_choices

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows: enough pages to browse, never a full-table COUNT."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self.object_list[:COUNT_CAP].count()  # type: ignore[union-attr, no-any-return]


class RecentActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(action, action) for action in audit_action_choices()]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> QuerySet[AuditEvent]:
        value = self.value()
        return queryset.filter(action=value) if value else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "actor_email", "ip", "action", "target_type", "target_id")
    list_filter = (RecentActionFilter,)
    search_fields = ("=actor_email", "=target_id")
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-id",)
    actions = None
    readonly_fields = EVENT_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
