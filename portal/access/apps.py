from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from portal.lib import hooks


class AccessConfig(AppConfig):
    name = "portal.access"
    label = "access"
    verbose_name = _("Data access")

    def ready(self) -> None:
        # Imported here: selectors import models, which need the app registry ready.
        from portal.access import selectors

        hooks.register("release_holders", selectors.active_grants_holding)
        hooks.register("release_subjects_visible", selectors.user_has_active_grant_on)
