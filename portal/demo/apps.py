from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo data (``manage.py seed_demo``): the top layer, it may import every app and nothing
    imports it. It has no models."""

    name = "portal.demo"
    label = "demo"
    verbose_name = _("Demo data")
