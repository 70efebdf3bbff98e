from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from portal.lib import hooks


class OptOutConfig(AppConfig):
    name = "portal.optout"
    label = "optout"
    verbose_name = _("Opt-out")

    def ready(self) -> None:
        # Imported here: selectors import models, which need the app registry ready.
        from portal.optout import selectors

        hooks.register("dataset_excluded_pseudonyms", selectors.excluded_pseudonyms)
        hooks.register("dataset_has_published_notice", selectors.dataset_has_published_notice)
        hooks.register("dataset_public_notices", selectors.dataset_public_notices)
