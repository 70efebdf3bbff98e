"""Read-only admin views of the anonymisation jobs (changes go through the services and pages)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.deid.models import DeidFileResult, DeidJob


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DeidJob)
class DeidJobAdmin(_ReadOnly):
    list_display = ("id", "society", "dataset", "status", "done", "total", "failed", "held_back", "created_at")
    list_filter = ("status", "source_kind")
    list_select_related = ("society", "dataset")


@admin.register(DeidFileResult)
class DeidFileResultAdmin(_ReadOnly):
    list_display = ("job", "source_path", "kind", "status", "size")
    list_filter = ("status", "kind")
    search_fields = ("source_path",)
