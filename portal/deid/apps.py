from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from portal.lib import hooks


class DeidConfig(AppConfig):
    name = "portal.deid"
    label = "deid"
    verbose_name = _("Anonymisation")

    def ready(self) -> None:
        # Imported here: selectors import models, which need the app registry ready.
        from portal.deid import selectors

        hooks.register("release_build_report", selectors.deid_report_for_release)
        hooks.register("protocol_released_data", selectors.deid_reports_for_protocol)
