"""The operator sees whose e-mail copies are still pending or failed (read-only: services send)."""

from django.contrib import admin

from portal.core.admin_readonly import ReadOnlyAdmin
from portal.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "recipient", "area", "subject", "mail_status", "mail_attempts", "mail_sent_at")
    list_filter = ("mail_status", "area")
    list_select_related = ("recipient",)
    search_fields = ("recipient__email", "subject")
    date_hierarchy = "created_at"
