"""What the steps of the data-access application share: its limits and constants, locking,
who holds which role, and the researcher-number rule."""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from portal.access.models import (
    AccessRequest,
    Grant,
    LegalBasis,
    ResearcherNumberKind,
    SocietyReview,
)
from portal.access.workflow import AccessRefused
from portal.accounts.models import OrganizationMembership, User
from portal.lib.numbering import next_reference
from portal.societies.models import Society, SocietyMembership

QUORUM = 2
MAX_PERIOD_DAYS = 3 * 365 + 1  # three years, a leap day included
EXPECTED_OUTPUTS = ("paper", "ai_model", "samd", "other")
JOINT_RESEARCH_BASES = frozenset({LegalBasis.JOINT_USE, LegalBasis.PSEUDONYMISED_JOINT_USE})
LIVE_GRANT_STATES = (Grant.Status.ACTIVE, Grant.Status.PAUSED)
_ATTEMPTS = 5

UPDATABLE_FIELDS = frozenset({
    "organization", "principal_investigator", "signatory", "title", "summary", "purpose", "expected_outputs",
    "legal_basis", "joint_research_number", "joint_research_parties", "joint_research_date", "ethics_protocol",
    "ethics_committee_name", "ethics_approval_number", "ethics_approval_date", "ethics_approval_file",
    "wants_linkage", "processing_level", "environment", "foreign_access", "foreign_country", "period_start",
    "period_end", "pi_title", "pi_researcher_number_kind", "pi_researcher_number", "pi_research_record",
    "head_name", "head_title", "head_email", "security_level",
})
ERAD_RE = re.compile(r"^\d{8}$")
RESEARCHMAP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")
_RESEARCHMAP_PREFIXES = ("https://researchmap.jp/", "http://researchmap.jp/", "researchmap.jp/")
M = SocietyMembership.Role
V = SocietyReview.Status


def _lock(access_request: AccessRequest) -> AccessRequest:
    return AccessRequest.objects.select_for_update().get(pk=access_request.pk)


def _is_applicant(user: User, r: AccessRequest) -> bool:
    return user.pk in {r.applicant_id, r.principal_investigator_id}


def _holds(user: User, society: Society, *roles: str) -> bool:
    return SocietyMembership.objects.filter(user=user, society=society, role__in=roles).exists()


def _review(access_request: AccessRequest, society: Society) -> SocietyReview:
    review = SocietyReview.objects.select_for_update().filter(access_request=access_request, society=society).first()
    if review is None:
        raise AccessRefused(_("This application does not request data of %(society)s.") % {"society": society})
    return review


def _next_reference(year: int) -> str:
    return next_reference(AccessRequest, f"DAR-{year}-", digits=5)


def _requested_societies(access_request: AccessRequest) -> list[Society]:
    ids = access_request.releases.values_list("dataset__society_id", flat=True).distinct()
    return list(Society.objects.filter(pk__in=ids).order_by("pk"))


def clean_researcher_number(kind: str, number: str) -> str:
    """The PI's researcher number as stored: an e-Rad researcher number has 8 digits; a researchmap
    ID (or its researchmap.jp address) is letters, digits, ``_ . -``. Raises ValidationError."""
    number = (number or "").strip()
    if not number:
        return ""
    if kind == ResearcherNumberKind.ERAD:
        number = number.replace("-", "").replace(" ", "")
        if not ERAD_RE.match(number):
            raise ValidationError({"pi_researcher_number": _(
                "An e-Rad researcher number has 8 digits (for example 12345678).")})
        return number
    if kind == ResearcherNumberKind.RESEARCHMAP:
        for prefix in _RESEARCHMAP_PREFIXES:
            if number.lower().startswith(prefix):
                number = number[len(prefix):].strip("/")
        if not RESEARCHMAP_RE.match(number):
            raise ValidationError({"pi_researcher_number": _(
                "A researchmap ID is 3 to 64 letters, digits, “_”, “.” or “-” (for example read0123456).")})
        return number
    raise ValidationError({"pi_researcher_number_kind": _("Choose the kind of researcher number (e-Rad or researchmap).")})


def _user_is_member(user: User | None, organization_id: int | None) -> bool:
    return bool(user) and OrganizationMembership.objects.filter(user=user, organization_id=organization_id).exists()


def _require_steward(by: User, society: Society) -> None:
    if not _holds(by, society, M.STEWARD, M.ADMIN):
        raise AccessRefused(_("Only a data steward of %(society)s can do this.") % {"society": society})
