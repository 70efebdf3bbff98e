from django.urls import path

from portal.audit.api import AuditEventList

urlpatterns = [path("audit/events/", AuditEventList.as_view(), name="api-audit-events")]
