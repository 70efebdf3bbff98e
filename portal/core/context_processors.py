"""The navigation each role sees, built once per request from ``roles_for``.

The bar holds everyone's links, then one menu per area (my work, reviews, society management,
platform, account) that a user has any link in; each menu is a ``<details>`` element, so it opens
without JavaScript and keeps the bar to one line however many roles a person holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.accounts.roles import ETHICS_COMMITTEE_ROLES, Role, badges_for, roles_for


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url_name: str
    roles: frozenset[Role] | None  # None: everyone, signed in or not

    @property
    def url(self) -> str:
        return reverse(self.url_name)


A = frozenset({Role.APPLICANT})
MANAGERS = frozenset({Role.SOCIETY_ADMIN, Role.OPERATOR})
SOCIETY_STAFF = frozenset({Role.SOCIETY_ADMIN, Role.STEWARD, Role.OPERATOR})

# Everyone's links, always shown in the bar.
NAVIGATION = (
    NavItem(_("Home"), "home", None),
    NavItem(_("Societies"), "societies:list", None),
    NavItem(_("Research ethics committees"), "committees:list", None),
    NavItem(_("Dataset catalogue"), "catalogue:list", None),
    NavItem(_("Opt-out notices"), "optout_public:list", None),
    NavItem(_("AI models"), "ai:model_list", None),
)


@dataclass(frozen=True)
class NavGroup:
    """A menu of the bar that opens to its links (shown only when the user may use one of them)."""

    key: str
    label: str | Promise
    items: tuple[NavItem, ...]


NAVIGATION_GROUPS = (
    NavGroup("work", _("My work"), (
        NavItem(_("My work"), "dashboard", A),
        NavItem(_("Protocols"), "ethics:protocol_list", A),
        NavItem(_("Data-access applications"), "access:request_list", A),
        NavItem(_("My grants"), "access:grant_list", A),
        NavItem(_("Usage reports"), "access:report_list", A),
        NavItem(_("My AI jobs"), "ai:job_list", A),
    )),
    NavGroup("review", pgettext_lazy("navigation", "Reviews"), (
        NavItem(_("Review inbox"), "ethics:inbox", ETHICS_COMMITTEE_ROLES),
        # The chair may do the secretariat's work as well (ethics.services._require_secretariat).
        NavItem(_("Ethics secretariat queue"), "ethics:secretariat_queue",
                frozenset({Role.ETHICS_SECRETARIAT, Role.ETHICS_CHAIR})),
        NavItem(_("Awaiting permission"), "ethics:head_queue", frozenset({Role.INSTITUTION_HEAD})),
        NavItem(_("Data-access applications to screen"), "access:steward_queue", frozenset({Role.STEWARD, Role.SOCIETY_ADMIN})),
        NavItem(_("Data access committee inbox"), "access:committee_inbox", frozenset({Role.ACCESS_COMMITTEE})),
        NavItem(_("Usage reports to review"), "access:report_review", SOCIETY_STAFF),
    )),
    NavGroup("society", _("Society management"), (
        NavItem(_("Manage datasets"), "datasets:list", MANAGERS),
        NavItem(_("Anonymisation jobs"), "deid:list", MANAGERS),
        NavItem(_("Opt-out notices (management)"), "optout:notice_list", MANAGERS),
        NavItem(_("Opt-out requests"), "optout:request_list", SOCIETY_STAFF),
        NavItem(_("Record linkage across societies"), "linkage:search", MANAGERS),
        NavItem(_("Agreement templates"), "agreements:template_list", MANAGERS),
        NavItem(_("Provision records"), "access:provision_list", SOCIETY_STAFF),
        NavItem(_("Data access overview"), "access:society_overview_index", SOCIETY_STAFF),
        NavItem(_("Manage AI models"), "ai:manage", MANAGERS),
    )),
    NavGroup("platform", _("Platform"), (
        NavItem(_("Linkage approvals"), "linkage:approval_list", frozenset({Role.OPERATOR})),
        NavItem(_("Audit log"), "audit:event_list", frozenset({Role.AUDITOR, Role.OPERATOR})),
        NavItem(_("Administration"), "admin:index", frozenset({Role.OPERATOR})),
    )),
    NavGroup("account", _("Account"), (
        NavItem(_("API tokens"), "accounts:token_list", A),
        NavItem(_("Two-Factor Authentication"), "mfa_index", A),
        NavItem(_("API documentation"), "api-docs", None),
    )),
)


def navigation(request: HttpRequest) -> dict[str, object]:
    roles = roles_for(request.user)

    def allowed(item: NavItem) -> bool:
        return item.roles is None or bool(item.roles & roles)

    items = [item for item in NAVIGATION if allowed(item)]
    groups = []
    for group in NAVIGATION_GROUPS:
        links = [item for item in group.items if allowed(item)]
        # The API documentation alone does not make an "Account" menu for a visitor.
        if any(item.roles is not None for item in links):
            groups.append((group, links))
    return {"nav_items": items, "nav_groups": groups, "user_roles": badges_for(request.user)}
