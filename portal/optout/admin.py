"""Opt-out records in the operator's admin, read-only: every change goes through the services."""

from __future__ import annotations

from django.contrib import admin

from portal.core.admin_readonly import ReadOnlyAdmin
from portal.optout.models import DeletionConfirmation, OptOutNotice, OptOutRequest


@admin.register(OptOutNotice)
class OptOutNoticeAdmin(ReadOnlyAdmin):
    list_display = ["reference", "society", "protocol", "status", "first_published_at", "withdrawn_at"]
    list_filter = ["status", "society"]
    search_fields = ["reference"]


@admin.register(OptOutRequest)
class OptOutRequestAdmin(ReadOnlyAdmin):
    list_display = ["reference", "society", "received_at", "extent", "status", "requester_notified_at"]
    list_filter = ["status", "society", "extent"]
    search_fields = ["reference", "subject_pseudonym"]


@admin.register(DeletionConfirmation)
class DeletionConfirmationAdmin(ReadOnlyAdmin):
    list_display = ["request", "release", "grant", "holder", "status", "notified_at", "confirmed_at"]
    list_filter = ["status"]
