"""The data-access application state machines: one table each, one helper that performs them.

Two machines move together. ``REQUEST_TRANSITIONS`` moves the application (``AccessRequest``);
``REVIEW_TRANSITIONS`` moves each society's review of it (``SocietyReview``): every society whose
data is requested screens and decides for its own data. The services in
``portal.access.services.requests`` check who may act and what must be filled in, then call
``transition_request`` / ``transition_review``, which refuse any move the tables do not allow and
say which state the object is in and which it would have to be in — changing nothing.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.access.models import (
    AccessRequest,
    Grant,
    GrantAmendment,
    RequestStatus,
    SocietyReview,
    UsageReport,
)
from portal.lib.workflow import TransitionRefused, Workflow
from portal.lib.workflow import transition as move

R = RequestStatus
V = SocietyReview.Status


class AccessRefused(Exception):
    """The acting user may not do this, or the application is not in a state that allows it."""


class TransitionNotAllowed(TransitionRefused, AccessRefused):
    """The engine's refusal, in the access family: callers catching ``AccessRefused`` (409) see it too."""


# action -> {from state: to state}
REQUEST_TRANSITIONS: dict[str, dict[str, str]] = {
    "submit": {R.DRAFT: R.SUBMITTED, R.RETURNED: R.SUBMITTED},
    # A steward sends the whole application back while their society is still screening it.
    "return": {R.SUBMITTED: R.RETURNED},
    # Every society has screened: the application is with the committees.
    "to_committee": {R.SUBMITTED: R.COMMITTEE_REVIEW},
    # Every society has decided: at least one approved / all rejected.
    "approve": {R.COMMITTEE_REVIEW: R.APPROVED},
    "reject": {R.COMMITTEE_REVIEW: R.REJECTED},
    "sign": {R.APPROVED: R.SIGNED},
    # Every approving society has countersigned.
    "grant": {R.SIGNED: R.GRANTED},
    "revoke": {R.GRANTED: R.REVOKED, R.ENDING: R.REVOKED},
    "close": {R.GRANTED: R.CLOSED, R.ENDING: R.CLOSED},
    "withdraw": {
        R.DRAFT: R.WITHDRAWN, R.SUBMITTED: R.WITHDRAWN, R.RETURNED: R.WITHDRAWN,
        R.COMMITTEE_REVIEW: R.WITHDRAWN, R.APPROVED: R.WITHDRAWN, R.SIGNED: R.WITHDRAWN,
    },
}

REVIEW_TRANSITIONS: dict[str, dict[str, str]] = {
    "screen": {V.SCREENING: V.COMMITTEE},
    # Returning keeps the review in screening; the application itself goes back to the applicant.
    "return": {V.SCREENING: V.SCREENING},
    "vote": {V.COMMITTEE: V.COMMITTEE},
    "decide_approved": {V.COMMITTEE: V.APPROVED},
    "decide_conditions": {V.COMMITTEE: V.APPROVED_WITH_CONDITIONS},
    "decide_rejected": {V.COMMITTEE: V.REJECTED},
    # On resubmission after a return every society screens the changed application again.
    "rescreen": {
        V.SCREENING: V.SCREENING, V.COMMITTEE: V.SCREENING, V.APPROVED: V.SCREENING,
        V.APPROVED_WITH_CONDITIONS: V.SCREENING, V.REJECTED: V.SCREENING,
    },
}

REQUEST = Workflow(
    "access.request", R, REQUEST_TRANSITIONS, refusal=TransitionNotAllowed,
    refusal_message=_("This cannot be done while the application is “%(current)s”; it must be %(allowed)s."),
)
REVIEW = Workflow(
    "access.society_review", V, REVIEW_TRANSITIONS, refusal=TransitionNotAllowed,
    refusal_message=_("This cannot be done while the society's review is “%(current)s”; it must be %(allowed)s."),
)
REQUEST_EDGES: frozenset[tuple[str, str, str]] = REQUEST.edges
REVIEW_EDGES: frozenset[tuple[str, str, str]] = REVIEW.edges

G = Grant.Status
GRANT = Workflow("access.grant", G, {
    # What the grant rests on lapsed (a new lapse while paused only updates the reasons), or holds again.
    "pause": {G.ACTIVE: G.PAUSED, G.PAUSED: G.PAUSED},
    "resume": {G.PAUSED: G.ACTIVE},
    "revoke": {G.ACTIVE: G.REVOKED, G.PAUSED: G.REVOKED},
    "end": {G.ACTIVE: G.ENDED, G.PAUSED: G.ENDED},
    "expire": {G.ACTIVE: G.EXPIRED, G.PAUSED: G.EXPIRED},
})

U = UsageReport.Status
USAGE_REPORT = Workflow("access.usage_report", U, {
    "submit": {U.DUE: U.SUBMITTED},
    # The second of the principal investigator's and the head's confirmations.
    "confirm": {U.SUBMITTED: U.CONFIRMED},
    # Straight from submitted only on a grant with no application behind it (usage_report_accept).
    "accept": {U.SUBMITTED: U.ACCEPTED, U.CONFIRMED: U.ACCEPTED},
})

A = GrantAmendment.Status
# A removal of users alone is created ``recorded``: nothing to decide.
AMENDMENT = Workflow("access.grant_amendment", A, {
    "approve": {A.SUBMITTED: A.APPROVED},
    "reject": {A.SUBMITTED: A.REJECTED},
})

APPROVING = frozenset({V.APPROVED, V.APPROVED_WITH_CONDITIONS})
DECIDED = frozenset({V.APPROVED, V.APPROVED_WITH_CONDITIONS, V.REJECTED})


def request_target(action: str, current: str) -> str:
    return REQUEST.target(action, current)


def review_target(action: str, current: str) -> str:
    return REVIEW.target(action, current)


def transition_request(access_request: AccessRequest, action: str) -> tuple[str, str]:
    """Move an application (locked with select_for_update) along ``action``; return (from, to)."""
    return move(access_request, REQUEST, action)


def transition_review(review: SocietyReview, action: str) -> tuple[str, str]:
    return move(review, REVIEW, action)
