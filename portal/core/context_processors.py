"""The navigation each role sees, built once per request from ``roles_for``."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Role, roles_for


@dataclass(frozen=True)
class NavItem:
    label: str | Promise
    url_name: str
    roles: frozenset[Role] | None  # None: everyone, signed in or not

    @property
    def url(self) -> str:
        return reverse(self.url_name)


NAVIGATION = (
    NavItem(_("Home"), "home", None),
    NavItem(_("Societies"), "societies:list", None),
    NavItem(_("Research ethics committees"), "committees:list", None),
    NavItem(_("Datasets"), "catalogue:list", None),
    NavItem(_("Opt-out notices"), "optout_public:list", None),
    NavItem(_("My work"), "dashboard", frozenset({Role.APPLICANT})),
    NavItem(_("Protocols"), "ethics:protocol_list", frozenset({Role.APPLICANT})),
    NavItem(_("Review inbox"), "ethics:inbox", frozenset({Role.COMMITTEE_MEMBER})),
    NavItem(_("Awaiting permission"), "ethics:head_queue", frozenset({Role.INSTITUTION_HEAD})),
    NavItem(_("Manage datasets"), "datasets:list", frozenset({Role.SOCIETY_ADMIN, Role.OPERATOR})),
    NavItem(_("Anonymisation jobs"), "deid:list", frozenset({Role.SOCIETY_ADMIN, Role.OPERATOR})),
    NavItem(_("Opt-out notices (management)"), "optout:notice_list", frozenset({Role.SOCIETY_ADMIN, Role.OPERATOR})),
    NavItem(_("Opt-out requests"), "optout:request_list", frozenset({Role.SOCIETY_ADMIN, Role.STEWARD, Role.OPERATOR})),
    NavItem(_("Record linkage"), "linkage:search", frozenset({Role.SOCIETY_ADMIN, Role.OPERATOR})),
    NavItem(_("Linkage approvals"), "linkage:approval_list", frozenset({Role.OPERATOR})),
    NavItem(_("Data-access applications"), "access:request_list", frozenset({Role.APPLICANT})),
    NavItem(_("My grants"), "access:grant_list", frozenset({Role.APPLICANT})),
    NavItem(_("Usage reports"), "access:report_list", frozenset({Role.APPLICANT})),
    NavItem(_("Screening queue"), "access:steward_queue", frozenset({Role.STEWARD, Role.SOCIETY_ADMIN})),
    NavItem(_("Access committee inbox"), "access:committee_inbox", frozenset({Role.ACCESS_COMMITTEE})),
    NavItem(_("Usage reports to review"), "access:report_review",
            frozenset({Role.SOCIETY_ADMIN, Role.STEWARD, Role.OPERATOR})),
    NavItem(_("Provision records"), "access:provision_list",
            frozenset({Role.SOCIETY_ADMIN, Role.STEWARD, Role.OPERATOR})),
    NavItem(_("Data access overview"), "access:society_overview_index",
            frozenset({Role.SOCIETY_ADMIN, Role.STEWARD, Role.OPERATOR})),
    NavItem(_("Agreement templates"), "agreements:template_list", frozenset({Role.SOCIETY_ADMIN, Role.OPERATOR})),
    NavItem(_("Audit log"), "audit:event_list", frozenset({Role.AUDITOR, Role.OPERATOR})),
    NavItem(_("API tokens"), "accounts:token_list", frozenset({Role.APPLICANT})),
    NavItem(_("Account security"), "mfa_index", frozenset({Role.APPLICANT})),
    NavItem(_("API documentation"), "api-docs", None),
    NavItem(_("Administration"), "admin:index", frozenset({Role.OPERATOR})),
)


def navigation(request: HttpRequest) -> dict[str, object]:
    roles = roles_for(request.user)
    items = [item for item in NAVIGATION if item.roles is None or item.roles & roles]
    return {"nav_items": items, "user_roles": sorted(roles, key=list(Role).index)}
