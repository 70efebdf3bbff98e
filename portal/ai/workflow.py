"""The states of model versions and access requests: one table of allowed transitions each.

Versions: a draft is published or retired unused; a published version is retired (it stays on the
card, and its jobs keep their results, but nobody can start a new job on it).

Access requests: a society admin approves or rejects a submitted request; the requester withdraws
a request still waiting; an approved request is revoked (the run permission goes with it).
"""

from __future__ import annotations

from portal.ai.models import InferenceJobStatus, ModelAccessRequest, ModelVersion
from portal.lib.workflow import TransitionRefused, Workflow
from portal.lib.workflow import transition as move

V = ModelVersion.Status
R = ModelAccessRequest.Status

# The AI refusals were always ValidationErrors: the engine's refusal is one.
TransitionNotAllowed = TransitionRefused

# action -> {from state: to state}
VERSION_TRANSITIONS: dict[str, dict[str, str]] = {
    "publish": {V.DRAFT: V.PUBLISHED},
    "retire": {V.PUBLISHED: V.RETIRED, V.DRAFT: V.RETIRED},
}

REQUEST_TRANSITIONS: dict[str, dict[str, str]] = {
    "approve": {R.SUBMITTED: R.APPROVED},
    "reject": {R.SUBMITTED: R.REJECTED},
    "withdraw": {R.SUBMITTED: R.WITHDRAWN},
    "revoke": {R.APPROVED: R.REVOKED},
}

VERSION = Workflow("ai.model_version", V, VERSION_TRANSITIONS)
ACCESS_REQUEST = Workflow("ai.model_access_request", R, REQUEST_TRANSITIONS)
J = InferenceJobStatus
# A job may end before its runner marked it running (every item failed, or the runner reported an error).
INFERENCE_JOB = Workflow("ai.inference_job", J, {
    "start": {J.PENDING: J.RUNNING},
    "finish": {J.PENDING: J.FINISHED, J.RUNNING: J.FINISHED},
    "finish_with_failures": {J.PENDING: J.FINISHED_WITH_FAILURES, J.RUNNING: J.FINISHED_WITH_FAILURES},
    "fail": {J.PENDING: J.FAILED, J.RUNNING: J.FAILED},
})
VERSION_EDGES = VERSION.edges
REQUEST_EDGES = ACCESS_REQUEST.edges


def version_target(action: str, current: str) -> str:
    return VERSION.target(action, current)


def request_target(action: str, current: str) -> str:
    return ACCESS_REQUEST.target(action, current)


def version_transition(version: ModelVersion, action: str, *, extra_fields: tuple[str, ...] = ()) -> tuple[str, str]:
    """Move a version (already locked) along ``action``; save; return (from, to)."""
    return move(version, VERSION, action, extra_fields=extra_fields)


def request_transition(
    request: ModelAccessRequest, action: str, *, extra_fields: tuple[str, ...] = ()
) -> tuple[str, str]:
    """Move an access request (already locked) along ``action``; save; return (from, to)."""
    return move(request, ACCESS_REQUEST, action, extra_fields=extra_fields)
