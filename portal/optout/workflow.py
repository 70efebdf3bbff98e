"""The opt-out state machines: one table of allowed transitions per model, one helper each.

A notice is drafted, published (and re-published with each new version) and may be withdrawn; a
withdrawn notice stays withdrawn. A request is open until it is closed; while any data holder has
still to confirm deletion it waits in ``awaiting_deletion``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext as _

from portal.optout.models import OptOutNotice, OptOutRequest

N = OptOutNotice.Status
R = OptOutRequest.Status


class OptOutRefused(Exception):
    """The acting user may not do this, or the notice or request is not in a state that allows it."""


class TransitionNotAllowed(OptOutRefused):
    """The object is not in a state from which this action may be taken."""


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


def _target(table: dict[str, dict[str, str]], choices: type[models.TextChoices], action: str, current: str) -> str:
    edges = table[action]
    if current not in edges:
        allowed = ", ".join(str(choices(state).label) for state in edges)
        raise TransitionNotAllowed(
            _("This cannot be done while it is “%(current)s”; it must be %(allowed)s.")
            % {"current": choices(current).label, "allowed": allowed}
        )
    return edges[current]


def notice_transition(notice: OptOutNotice, action: str) -> tuple[str, str]:
    """Move a notice (locked by the caller) along ``action``; the caller saves it."""
    source = notice.status
    notice.status = _target(NOTICE_TRANSITIONS, N, action, source)
    return source, notice.status


def request_transition(request: OptOutRequest, action: str) -> tuple[str, str]:
    """Move a request (locked by the caller) along ``action`` and save its status."""
    source = request.status
    request.status = _target(REQUEST_TRANSITIONS, R, action, source)
    request.save(update_fields=["status"])
    return source, request.status
