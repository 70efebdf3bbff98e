"""The protocol state machine: one table of allowed transitions, one helper that performs them.

Every transition is named; a service in ``portal.ethics.services`` performs it after its own checks
(who may act, what must be filled in) by calling ``transition``, which refuses any move the table
does not allow and says which state the protocol is in and which it would have to be in.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.ethics.models import END_STATES, Protocol
from portal.ethics.models import ProtocolStatus as S
from portal.lib.workflow import TransitionRefused, Workflow
from portal.lib.workflow import transition as move


class EthicsRefused(Exception):
    """The acting user may not do this, or the protocol is not in a state that allows it."""


class TransitionNotAllowed(TransitionRefused, EthicsRefused):
    """The engine's refusal, in the ethics family: callers catching ``EthicsRefused`` (409) see it too."""


# action -> {from state: to state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "submit": {S.DRAFT: S.SUBMITTED, S.RETURNED: S.SUBMITTED, S.DEFERRED: S.SUBMITTED},
    "return_for_completion": {S.SUBMITTED: S.RETURNED},
    "accept_for_review": {S.SUBMITTED: S.UNDER_REVIEW},
    "decide_approved": {S.UNDER_REVIEW: S.APPROVED, S.AMENDMENT_REVIEW: S.APPROVED},
    "decide_conditions": {S.UNDER_REVIEW: S.CONDITIONS, S.AMENDMENT_REVIEW: S.CONDITIONS},
    "decide_deferred": {S.UNDER_REVIEW: S.DEFERRED, S.AMENDMENT_REVIEW: S.DEFERRED},
    "decide_not_approved": {S.UNDER_REVIEW: S.NOT_APPROVED},
    "decide_not_subject": {S.UNDER_REVIEW: S.NOT_SUBJECT},
    "answer_conditions": {S.CONDITIONS: S.CONDITIONS_ANSWERED},
    "verify_conditions": {S.CONDITIONS_ANSWERED: S.APPROVED},
    "reject_conditions_answer": {S.CONDITIONS_ANSWERED: S.CONDITIONS},
    "permit": {S.APPROVED: S.ACTIVE},
    "deny": {S.APPROVED: S.DENIED},
    "submit_amendment": {S.ACTIVE: S.AMENDMENT_REVIEW},
    "acknowledge_minor_amendment": {S.AMENDMENT_REVIEW: S.ACTIVE},
    "reject_amendment": {S.AMENDMENT_REVIEW: S.ACTIVE},
    "suspend": {S.ACTIVE: S.SUSPENDED, S.AMENDMENT_REVIEW: S.SUSPENDED},
    "resume": {S.SUSPENDED: S.ACTIVE},
    # 終了報告 and 中止報告 end the research; each end state is its own status (see END_STATES).
    "report_completion": {S.ACTIVE: S.COMPLETED, S.SUSPENDED: S.COMPLETED},
    "discontinue": {S.ACTIVE: S.DISCONTINUED, S.AMENDMENT_REVIEW: S.DISCONTINUED, S.SUSPENDED: S.DISCONTINUED},
    "withdraw": {S.DRAFT: S.WITHDRAWN, S.RETURNED: S.WITHDRAWN, S.DEFERRED: S.WITHDRAWN},
}

PROTOCOL = Workflow(
    "ethics.protocol", S, TRANSITIONS, refusal=TransitionNotAllowed,
    refusal_message=_("This cannot be done while the protocol is “%(current)s”; it must be %(allowed)s."),
)
ALL_EDGES: frozenset[tuple[str, str, str]] = PROTOCOL.edges


def target_state(action: str, current: str) -> str:
    return PROTOCOL.target(action, current)


def transition(protocol: Protocol, action: str, **changes: Any) -> tuple[str, str]:
    """Move a protocol (already locked with select_for_update) along ``action``; return (from, to).

    ``changes`` are further fields saved with the new state (the report that ends the research);
    entering an end state stamps ``ended_at``, as the table's constraint requires.
    """
    target = PROTOCOL.target(action, protocol.status)  # refuse before touching any field
    for name, value in changes.items():
        setattr(protocol, name, value)
    fields = [*changes]
    if target in END_STATES:
        protocol.ended_at = timezone.now()
        fields.append("ended_at")
    return move(protocol, PROTOCOL, action, extra_fields=fields)
