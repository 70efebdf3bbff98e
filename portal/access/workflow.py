"""The data-access application state machines: one table each, one helper that performs them.

Two machines move together. ``REQUEST_TRANSITIONS`` moves the application (``AccessRequest``);
``REVIEW_TRANSITIONS`` moves each society's review of it (``SocietyReview``): every society whose
data is requested screens and decides for its own data. The services in
``portal.access.services.requests`` check who may act and what must be filled in, then call
``transition_request`` / ``transition_review``, which refuse any move the tables do not allow and
say which state the object is in and which it would have to be in — changing nothing.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from portal.access.models import AccessRequest, RequestStatus, SocietyReview

R = RequestStatus
V = SocietyReview.Status


class AccessRefused(Exception):
    """The acting user may not do this, or the application is not in a state that allows it."""


class TransitionNotAllowed(AccessRefused):
    """The application (or a society's review of it) is not in a state from which this may be done."""

    def __init__(self, message: str, *, current: str, wanted: tuple[str, ...]) -> None:
        super().__init__(message)
        self.current = current
        self.wanted = wanted


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

REQUEST_EDGES: frozenset[tuple[str, str, str]] = frozenset(
    (action, source, target) for action, edges in REQUEST_TRANSITIONS.items() for source, target in edges.items()
)
REVIEW_EDGES: frozenset[tuple[str, str, str]] = frozenset(
    (action, source, target) for action, edges in REVIEW_TRANSITIONS.items() for source, target in edges.items()
)

APPROVING = frozenset({V.APPROVED, V.APPROVED_WITH_CONDITIONS})
DECIDED = frozenset({V.APPROVED, V.APPROVED_WITH_CONDITIONS, V.REJECTED})


def _refuse(kind: str, labels: type, current: str, edges: dict[str, str]) -> TransitionNotAllowed:
    allowed = ", ".join(str(labels(state).label) for state in edges)
    if kind == "request":
        message = _("This cannot be done while the application is “%(current)s”; it must be %(allowed)s.")
    else:
        message = _("This cannot be done while the society's review is “%(current)s”; it must be %(allowed)s.")
    return TransitionNotAllowed(
        message % {"current": labels(current).label, "allowed": allowed},
        current=current, wanted=tuple(edges),
    )


def request_target(action: str, current: str) -> str:
    edges = REQUEST_TRANSITIONS[action]
    if current not in edges:
        raise _refuse("request", R, current, edges)
    return edges[current]


def review_target(action: str, current: str) -> str:
    edges = REVIEW_TRANSITIONS[action]
    if current not in edges:
        raise _refuse("review", V, current, edges)
    return edges[current]


def transition_request(access_request: AccessRequest, action: str) -> tuple[str, str]:
    """Move an application (locked with select_for_update) along ``action``; return (from, to)."""
    source = access_request.status
    target = request_target(action, source)
    access_request.status = target
    access_request.save(update_fields=["status", "updated_at"])
    return source, target


def transition_review(review: SocietyReview, action: str) -> tuple[str, str]:
    source = review.status
    target = review_target(action, source)
    review.status = target
    review.save(update_fields=["status"])
    return source, target
