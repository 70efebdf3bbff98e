from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """django.contrib.admin with the audited site (``portal.core.admin_site``) as the default site."""

    default_site = "portal.core.admin_site.PortalAdminSite"
