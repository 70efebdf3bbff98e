from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "portal.audit"
    label = "audit"
    verbose_name = _("Audit log")

    def ready(self) -> None:
        from portal.audit import receivers  # noqa: F401  (login, failed login and logout events)
