"""Who may see and act on a data-access application, and the lists each role works from.

One rule, used by the pages and the API alike (``requests_visible_to`` / ``request_standing``):

- the applicant, the principal investigator and the authorised signatory see their application,
  the comments meant for the applicant, the decisions and the conditions;
- stewards and admins of a society whose data is requested see everything for their society,
  including the security self-assessment and the agreements, once it has been submitted;
- data access committee members of such a society see the application and the reviewers'
  comments once their society's review has reached the committee — not the security
  self-assessment details (REGULATION.md: the self-assessment and contracts go to stewards);
- everybody else sees nothing (the pages answer 404).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from django.db.models import Q, QuerySet

from portal.access.models import AccessRequest, RequestComment, RequestStatus, SocietyReview
from portal.accounts.models import OrganizationMembership, User
from portal.agreements.models import SignedAgreement
from portal.societies.models import SocietyMembership

M = SocietyMembership.Role


def _society_ids(user: User, *roles: str) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(SocietyMembership.objects.filter(user=user, role__in=roles).values_list("society_id", flat=True))


def requests_visible_to(user: User) -> QuerySet[AccessRequest]:
    """Every application ``user`` may open."""
    if not getattr(user, "is_authenticated", False):
        return AccessRequest.objects.none()
    stewarding = SocietyMembership.objects.filter(user=user, role__in=[M.STEWARD, M.ADMIN]).values("society_id")
    committee = SocietyMembership.objects.filter(user=user, role=M.ACCESS_COMMITTEE).values("society_id")
    reviews_for_stewards = SocietyReview.objects.filter(society_id__in=stewarding).values("access_request_id")
    reviews_for_committee = (
        SocietyReview.objects.filter(society_id__in=committee)
        .exclude(status=SocietyReview.Status.SCREENING)
        .values("access_request_id")
    )
    return AccessRequest.objects.filter(
        Q(applicant=user) | Q(principal_investigator=user) | Q(signatory=user)
        | (~Q(status=RequestStatus.DRAFT) & (Q(pk__in=reviews_for_stewards) | Q(pk__in=reviews_for_committee)))
    )


@dataclass
class Standing:
    """What ``user`` is for one application (it is visible to them)."""

    access_request: AccessRequest
    user: User
    _cache: dict = field(default_factory=dict)

    @property
    def is_applicant(self) -> bool:
        r = self.access_request
        return self.user.pk in {r.applicant_id, r.principal_investigator_id}

    @property
    def is_signatory(self) -> bool:
        return self.access_request.signatory_id == self.user.pk

    @cached_property
    def _reviews(self) -> list[SocietyReview]:
        return list(self.access_request.society_reviews.select_related("society").order_by("society__name_ja"))

    @cached_property
    def _memberships(self) -> dict[str, set[int]]:
        rows = SocietyMembership.objects.filter(
            user=self.user, society_id__in=[r.society_id for r in self._reviews]
        ).values_list("role", "society_id")
        result: dict[str, set[int]] = {M.STEWARD: set(), M.ADMIN: set(), M.ACCESS_COMMITTEE: set()}
        for role, society_id in rows:
            result.setdefault(role, set()).add(society_id)
        return result

    @property
    def submitted(self) -> bool:
        return self.access_request.status != RequestStatus.DRAFT

    @property
    def steward_society_ids(self) -> set[int]:
        return self._memberships[M.STEWARD] | self._memberships[M.ADMIN] if self.submitted else set()

    @property
    def admin_society_ids(self) -> set[int]:
        return self._memberships[M.ADMIN] if self.submitted else set()

    @property
    def committee_society_ids(self) -> set[int]:
        return {
            r.society_id for r in self._reviews
            if r.society_id in self._memberships[M.ACCESS_COMMITTEE] and r.status != SocietyReview.Status.SCREENING
        } if self.submitted else set()

    @property
    def is_steward(self) -> bool:
        return bool(self.steward_society_ids)

    @property
    def is_committee(self) -> bool:
        return bool(self.committee_society_ids)

    @property
    def may_see(self) -> bool:
        return self.is_applicant or self.is_signatory or self.is_steward or self.is_committee

    @property
    def may_see_security(self) -> bool:
        """The security self-assessment and agreements: the applicant and the stewards only."""
        return self.is_applicant or self.is_signatory or self.is_steward

    @property
    def reviews(self) -> list[SocietyReview]:
        return self._reviews

    @cached_property
    def recusal_reason(self) -> str:
        return recusal_reason(self.user, self.access_request)

    def comment_audiences(self) -> set[str]:
        A = RequestComment.Audience
        audiences: set[str] = set()
        if self.is_applicant or self.is_signatory:
            audiences.add(A.APPLICANT)
        if self.is_committee:
            audiences |= {A.APPLICANT, A.REVIEWERS}
        if self.is_steward:
            audiences |= {A.APPLICANT, A.REVIEWERS, A.STEWARDS}
        return audiences


def request_standing(user: User, access_request: AccessRequest) -> Standing:
    return Standing(access_request, user)


def recusal_reason(user: User, access_request: AccessRequest) -> str:
    """Why ``user`` may not vote or decide on this application, or "" if they may.

    A member is recused when they belong to the applicant organisation, or are the applicant, the
    principal investigator, the signatory or a named user of the application.
    """
    from django.utils.translation import gettext as _

    r = access_request
    if user.pk in {r.applicant_id, r.principal_investigator_id, r.signatory_id} or r.named_users.filter(
        user=user
    ).exists():
        return _("You are a named user of this application.")
    if OrganizationMembership.objects.filter(user=user, organization_id=r.organization_id).exists():
        return _("You belong to the applicant organisation.")
    return ""


def visible_comments(standing: Standing) -> QuerySet[RequestComment]:
    audiences = standing.comment_audiences()
    comments = standing.access_request.comments.select_related("author", "society").filter(audience__in=audiences)
    if not (standing.is_applicant or standing.is_signatory):
        # Reviewers read the comments of their own societies and those addressed to everybody.
        societies = standing.steward_society_ids | standing.committee_society_ids
        comments = comments.filter(Q(society__isnull=True) | Q(society_id__in=societies))
    return comments


def my_requests(user: User) -> QuerySet[AccessRequest]:
    """The applicant's own applications (as applicant, PI or signatory)."""
    return (
        AccessRequest.objects.filter(Q(applicant=user) | Q(principal_investigator=user) | Q(signatory=user))
        .select_related("organization")
        .order_by("-id")
    )


def steward_queue(user: User) -> QuerySet[SocietyReview]:
    """Reviews awaiting screening in the societies ``user`` stewards."""
    societies = _society_ids(user, M.STEWARD, M.ADMIN)
    return (
        SocietyReview.objects.filter(
            society_id__in=societies, status=SocietyReview.Status.SCREENING,
            access_request__status=RequestStatus.SUBMITTED,
        )
        .select_related("society", "access_request", "access_request__organization")
        .order_by("access_request__submitted_at", "id")
    )


def committee_inbox(user: User) -> QuerySet[SocietyReview]:
    """Reviews with the committees ``user`` sits on, still undecided."""
    societies = _society_ids(user, M.ACCESS_COMMITTEE)
    return (
        SocietyReview.objects.filter(
            society_id__in=societies, status=SocietyReview.Status.COMMITTEE,
            access_request__status__in=[RequestStatus.SUBMITTED, RequestStatus.COMMITTEE_REVIEW],
        )
        .select_related("society", "access_request", "access_request__organization")
        .order_by("access_request__submitted_at", "id")
    )


def countersign_queue(user: User) -> QuerySet:
    """Agreements signed by applicants and awaiting the countersignature of ``user``'s societies."""
    societies = _society_ids(user, M.ADMIN)
    return (
        SignedAgreement.objects.filter(
            society_id__in=societies, status=SignedAgreement.Status.SIGNED,
            access_request__status=RequestStatus.SIGNED,
        )
        .select_related("society", "access_request", "access_request__organization", "template_version")
        .order_by("signed_at", "id")
    )


NEXT_STEPS = {
    RequestStatus.DRAFT: "complete_and_submit",
    RequestStatus.RETURNED: "edit_and_resubmit",
    RequestStatus.SUBMITTED: "wait_screening",
    RequestStatus.COMMITTEE_REVIEW: "wait_committee",
    RequestStatus.APPROVED: "sign",
    RequestStatus.SIGNED: "wait_countersign",
    RequestStatus.GRANTED: "use_and_report",
}
