"""The portal's one vocabulary of roles, and the one place that says which roles a user holds.

Pages, the API, navigation and the MFA rule all ask ``roles_for``. Roles come from memberships:
society roles from ``SocietyMembership``, institutional roles from ``OrganizationMembership``,
the ethics committee role from ``CommitteeMembership``;
every signed-in person may act as an applicant.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import OrganizationMembership, User


class Role(models.TextChoices):
    OPERATOR = "operator", _("Platform operator")
    AUDITOR = "auditor", _("Auditor")
    SOCIETY_ADMIN = "society_admin", _("Society admin")
    STEWARD = "steward", _("Data steward")
    COMMITTEE_MEMBER = "committee_member", _("Ethics committee member")
    ACCESS_COMMITTEE = "access_committee", _("Data access committee member")
    INSTITUTION_HEAD = "institution_head", _("Head of institution")
    APPLICANT = "applicant", _("Applicant")


# Roles whose holders can approve, release or reveal data: they must sign in with a second factor.
MFA_REQUIRED_ROLES = frozenset(
    {Role.OPERATOR, Role.SOCIETY_ADMIN, Role.STEWARD, Role.COMMITTEE_MEMBER, Role.ACCESS_COMMITTEE, Role.AUDITOR}
)

_ORG_ROLE_TO_ROLE = {
    OrganizationMembership.Role.HEAD: Role.INSTITUTION_HEAD,
    OrganizationMembership.Role.AUDITOR: Role.AUDITOR,
    OrganizationMembership.Role.OPERATOR: Role.OPERATOR,
}
_SOCIETY_ROLE_TO_ROLE = {
    "admin": Role.SOCIETY_ADMIN,
    "steward": Role.STEWARD,
    "access_committee": Role.ACCESS_COMMITTEE,
}


def roles_for(user: User | object) -> frozenset[Role]:
    """The roles ``user`` holds; cached on the user object for the rest of the request."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return frozenset()
    assert isinstance(user, User)
    cached: frozenset[Role] | None = getattr(user, "_portal_roles", None)
    if cached is not None:
        return cached
    roles = {Role.APPLICANT}
    if user.is_staff or user.is_superuser:
        roles.add(Role.OPERATOR)
    for org_role in user.org_memberships.values_list("role", flat=True):
        if org_role in _ORG_ROLE_TO_ROLE:
            roles.add(_ORG_ROLE_TO_ROLE[org_role])
    for society_role in user.society_memberships.values_list("role", flat=True):
        if society_role in _SOCIETY_ROLE_TO_ROLE:
            roles.add(_SOCIETY_ROLE_TO_ROLE[society_role])
    if user.committee_memberships.filter(active=True).exists():
        roles.add(Role.COMMITTEE_MEMBER)
    result = frozenset(roles)
    user._portal_roles = result  # type: ignore[attr-defined]
    return result


def has_role(user: User | object, role: Role) -> bool:
    return role in roles_for(user)


def requires_mfa(user: User | object) -> bool:
    return bool(roles_for(user) & MFA_REQUIRED_ROLES)


def has_mfa(user: User | object) -> bool:
    from allauth.mfa.models import Authenticator

    if not getattr(user, "is_authenticated", False):
        return False
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
