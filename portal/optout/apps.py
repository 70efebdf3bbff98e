from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OptOutConfig(AppConfig):
    name = "portal.optout"
    label = "optout"
    verbose_name = _("Opt-out")
