from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SocietiesConfig(AppConfig):
    name = "portal.societies"
    label = "societies"
    verbose_name = _("Societies")
