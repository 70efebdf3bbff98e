from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from portal.lib import hooks


class AIConfig(AppConfig):
    name = "portal.ai"
    label = "ai"
    verbose_name = _("Hosted AI models")

    def ready(self) -> None:
        # Imported here: services import models, which need the app registry ready.
        from portal.ai import services

        hooks.register("release_withdrawn", services.provenance_release_withdrawn)
        hooks.register("optout_request_recorded", services.provenance_subjects_opted_out)
