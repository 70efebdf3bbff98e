"""The opt-out state machines: one table of allowed transitions per model, one helper each.

A notice is drafted, published (and re-published with each new version) and may be withdrawn; a
withdrawn notice stays withdrawn. A request is open until it is closed; while any data holder has
still to confirm deletion it waits in ``awaiting_deletion``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.lib.workflow import TransitionRefused, Workflow
from portal.lib.workflow import transition as move
from portal.optout.models import (
    DeletionConfirmationStatus,
    OptOutNotice,
    OptOutNoticeVersionStatus,
    OptOutRequest,
)

N = OptOutNotice.Status
R = OptOutRequest.Status
V = OptOutNoticeVersionStatus


class OptOutRefused(Exception):
    """The acting user may not do this, or the notice or request is not in a state that allows it."""


class TransitionNotAllowed(TransitionRefused, OptOutRefused):
    """The engine's refusal, in the opt-out family: callers catching ``OptOutRefused`` (409) see it too."""


# action -> {from state: to state}
NOTICE_TRANSITIONS: dict[str, dict[str, str]] = {
    "publish": {N.DRAFT: N.PUBLISHED, N.PUBLISHED: N.PUBLISHED},
    "withdraw": {N.DRAFT: N.WITHDRAWN, N.PUBLISHED: N.WITHDRAWN},
}

REQUEST_TRANSITIONS: dict[str, dict[str, str]] = {
    # Recording a request that asks for deletion from releases held under grants.
    "await_deletion": {R.OPEN: R.AWAITING_DELETION},
    # The last holder confirmed deletion.
    "deletions_confirmed": {R.AWAITING_DELETION: R.OPEN},
    "close": {R.OPEN: R.CLOSED},
}


_MESSAGE = _("This cannot be done while it is “%(current)s”; it must be %(allowed)s.")
NOTICE = Workflow("optout.notice", N, NOTICE_TRANSITIONS, refusal=TransitionNotAllowed, refusal_message=_MESSAGE)
REQUEST = Workflow("optout.request", R, REQUEST_TRANSITIONS, refusal=TransitionNotAllowed, refusal_message=_MESSAGE)
# A draft version is published with its notice and superseded when the next one is published.
NOTICE_VERSION = Workflow("optout.notice_version", V, {
    "publish": {V.DRAFT: V.PUBLISHED},
    "supersede": {V.PUBLISHED: V.SUPERSEDED},
}, refusal=TransitionNotAllowed, refusal_message=_MESSAGE)
D = DeletionConfirmationStatus
DELETION_CONFIRMATION = Workflow("optout.deletion_confirmation", D, {"confirm": {D.PENDING: D.CONFIRMED}},
                                 refusal=TransitionNotAllowed, refusal_message=_MESSAGE)


def notice_transition(notice: OptOutNotice, action: str) -> tuple[str, str]:
    """Move a notice (locked by the caller) along ``action``; the caller saves it."""
    return move(notice, NOTICE, action, save=False)


def request_transition(request: OptOutRequest, action: str) -> tuple[str, str]:
    """Move a request (locked by the caller) along ``action`` and save its status."""
    return move(request, REQUEST, action)
