"""Who the user is for a protocol: the one answer the ethics pages and the review API ask.

A protocol is fetched through ``protocols_visible_to`` so that outsiders get 404; ``_standing``
answers 403 to people who may see it but not act in the role a page needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from portal.accounts.models import OrganizationMembership, User
from portal.ethics import services
from portal.ethics.models import (
    CommitteeMembership,
    Protocol,
    ProtocolVersion,
    Review,
)
from portal.ethics.selectors import protocols_visible_to
from portal.ethics.workflow import TransitionNotAllowed

# The state machine refuses with its own exception; to the person both mean "not now, not you".
REFUSALS = (services.EthicsRefused, TransitionNotAllowed)


# --- Who the user is for this protocol -----------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    protocol: Protocol
    user: User

    @cached_property
    def membership(self) -> CommitteeMembership | None:
        return CommitteeMembership.objects.filter(
            committee_id=self.protocol.committee_id, user=self.user, active=True
        ).first()

    @property
    def is_applicant(self) -> bool:
        return self.protocol.principal_investigator_id == self.user.pk

    @property
    def is_member(self) -> bool:
        return self.membership is not None

    @property
    def is_chair(self) -> bool:
        return self.membership is not None and self.membership.role == CommitteeMembership.Role.CHAIR

    @property
    def is_secretariat(self) -> bool:
        # The chair may do the secretariat's work as well (services._require_secretariat).
        return self.membership is not None and self.membership.role in {
            CommitteeMembership.Role.SECRETARIAT, CommitteeMembership.Role.CHAIR,
        }

    @cached_property
    def is_head(self) -> bool:
        return OrganizationMembership.objects.filter(
            user=self.user, organization_id=self.protocol.institution_id, role=OrganizationMembership.Role.HEAD
        ).exists()


def _visible_protocol(request: HttpRequest, pk: int) -> Protocol:
    return get_object_or_404(
        protocols_visible_to(request.user).select_related("committee", "institution", "principal_investigator"),
        pk=pk,
    )


def _standing(request: HttpRequest, pk: int, allowed: Callable[[Standing], bool]) -> Standing:
    standing = Standing(_visible_protocol(request, pk), request.user)  # type: ignore[arg-type]
    if not allowed(standing):
        raise PermissionDenied
    return standing


def _visible_versions(standing: Standing) -> QuerySet[ProtocolVersion]:
    """The applicant sees their drafts; everybody else only what was submitted."""
    versions = standing.protocol.versions.order_by("number")
    return versions if standing.is_applicant else versions.filter(submitted_at__isnull=False)


def _review_of(standing: Standing) -> Review:
    review = (
        Review.objects.filter(version__protocol=standing.protocol)
        .select_related("version__protocol__committee", "decision")
        .order_by("-version__number").first()
    )
    if review is None:
        raise Http404
    return review
