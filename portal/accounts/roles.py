"""The portal's one vocabulary of roles, and the one place that says which roles a user holds.

Pages, the API, navigation and the MFA rule all ask ``roles_for``. Roles come from memberships:
society roles from ``SocietyMembership``, institutional roles from ``OrganizationMembership``,
the ethics committee roles (member, chair, secretariat) from ``CommitteeMembership``;
every signed-in person may act as an applicant.

``badges_for`` is what a person is shown as: their roles exactly, with "applicant" only for a person
who has applied for something (a protocol, data access, an AI model) or holds no other role.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import OrganizationMembership, User


class Role(models.TextChoices):
    OPERATOR = "operator", _("Platform operator")
    AUDITOR = "auditor", _("Auditor")
    SOCIETY_ADMIN = "society_admin", _("Society admin")
    STEWARD = "steward", _("Data steward")
    COMMITTEE_MEMBER = "committee_member", _("Ethics committee member")
    ETHICS_CHAIR = "ethics_chair", _("Ethics committee chair")
    ETHICS_SECRETARIAT = "ethics_secretariat", _("Ethics committee secretariat")
    ACCESS_COMMITTEE = "access_committee", _("Data access committee member")
    INSTITUTION_HEAD = "institution_head", _("Head of institution")
    APPLICANT = "applicant", _("Applicant")


# Roles whose holders can approve, release or reveal data: they must sign in with a second factor.
MFA_REQUIRED_ROLES = frozenset(
    {Role.OPERATOR, Role.SOCIETY_ADMIN, Role.STEWARD, Role.COMMITTEE_MEMBER, Role.ETHICS_CHAIR,
     Role.ETHICS_SECRETARIAT, Role.ACCESS_COMMITTEE, Role.AUDITOR}
)
# Anyone who works in an ethics committee, whatever their seat.
ETHICS_COMMITTEE_ROLES = frozenset({Role.COMMITTEE_MEMBER, Role.ETHICS_CHAIR, Role.ETHICS_SECRETARIAT})

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
_COMMITTEE_ROLE_TO_ROLE = {
    "member": Role.COMMITTEE_MEMBER,
    "chair": Role.ETHICS_CHAIR,
    "secretariat": Role.ETHICS_SECRETARIAT,
}
# A marker row in the committee query meaning "this person has applied for something".
_APPLIED = "_applied"


def _committee_roles_and_applied(user: User) -> set[str]:
    """The person's committee seats and, in the same query, whether they have applied for anything.

    One query, so that exact badges cost nothing more on every page than the roles already did.
    The applications are looked up by model name: accounts sits below the apps that hold them.
    """
    applications = (
        apps.get_model("ethics", "Protocol").objects.filter(principal_investigator=OuterRef("pk")),
        apps.get_model("access", "AccessRequest").objects.filter(applicant=OuterRef("pk")),
        apps.get_model("ai", "ModelAccessRequest").objects.filter(user=OuterRef("pk")),
    )
    applied = Q()
    for application in applications:
        applied |= Exists(application)
    seats = user.committee_memberships.filter(active=True).order_by().values_list("role", flat=True)
    marker = (
        User.objects.filter(applied, pk=user.pk).order_by()
        .values_list(Value(_APPLIED, output_field=CharField()), flat=True)
    )
    return set(seats.union(marker))


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
    seats = _committee_roles_and_applied(user)
    roles.update(_COMMITTEE_ROLE_TO_ROLE[seat] for seat in seats if seat in _COMMITTEE_ROLE_TO_ROLE)
    result = frozenset(roles)
    user._portal_roles = result  # type: ignore[attr-defined]
    user._portal_applied = _APPLIED in seats  # type: ignore[attr-defined]
    return result


def badges_for(user: User | object) -> list[Role]:
    """The roles a person is shown with, in the vocabulary's order.

    Everyone may apply, so ``roles_for`` always holds "applicant"; a badge says it only of a
    person who has applied for something or who holds no other role (a newcomer is here to apply).
    """
    roles = roles_for(user)
    shown = roles - {Role.APPLICANT}
    if Role.APPLICANT in roles and (not shown or getattr(user, "_portal_applied", False)):
        shown |= {Role.APPLICANT}
    return sorted(shown, key=list(Role).index)


def has_role(user: User | object, role: Role) -> bool:
    return role in roles_for(user)


def requires_mfa(user: User | object) -> bool:
    return bool(roles_for(user) & MFA_REQUIRED_ROLES)


def has_mfa(user: User | object) -> bool:
    from allauth.mfa.models import Authenticator

    if not getattr(user, "is_authenticated", False):
        return False
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
