from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from portal.lib import hooks


class LinkageConfig(AppConfig):
    name = "portal.linkage"
    label = "linkage"
    verbose_name = _("Record linkage")

    def ready(self) -> None:
        # Imported here: services import models, which need the app registry ready.
        from portal.linkage import services

        hooks.register("release_built", services.on_release_changed)
        hooks.register("release_withdrawn", services.on_release_changed)
        hooks.register("optout_subject_forget", services.on_optout_subject_forget)
