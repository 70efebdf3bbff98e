"""The states of model versions and access requests: one table of allowed transitions each.

Versions: a draft is published or retired unused; a published version is retired (it stays on the
card, and its jobs keep their results, but nobody can start a new job on it).

Access requests: a society admin approves or rejects a submitted request; the requester withdraws
a request still waiting; an approved request is revoked (the run permission goes with it).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from portal.ai.models import ModelAccessRequest, ModelVersion

V = ModelVersion.Status
R = ModelAccessRequest.Status


class TransitionNotAllowed(ValidationError):
    """The version or request is not in a state from which this action may be taken."""


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


def _edges(table: dict[str, dict[str, str]]) -> frozenset[tuple[str, str, str]]:
    return frozenset((action, source, target) for action, edges in table.items() for source, target in edges.items())


VERSION_EDGES = _edges(VERSION_TRANSITIONS)
REQUEST_EDGES = _edges(REQUEST_TRANSITIONS)


def _target(table: dict[str, dict[str, str]], choices: type[models.TextChoices], action: str, current: str) -> str:
    edges = table[action]
    if current not in edges:
        allowed = ", ".join(str(choices(state).label) for state in edges)
        raise TransitionNotAllowed(
            _("This cannot be done while the status is “%(current)s”; it must be %(allowed)s.")
            % {"current": choices(current).label, "allowed": allowed},
            code="transition",
        )
    return edges[current]


def version_target(action: str, current: str) -> str:
    return _target(VERSION_TRANSITIONS, V, action, current)


def request_target(action: str, current: str) -> str:
    return _target(REQUEST_TRANSITIONS, R, action, current)


def version_transition(version: ModelVersion, action: str, *, extra_fields: tuple[str, ...] = ()) -> tuple[str, str]:
    """Move a version (already locked) along ``action``; save; return (from, to)."""
    source = version.status
    version.status = version_target(action, source)
    version.save(update_fields=["status", *extra_fields])
    return source, version.status


def request_transition(
    request: ModelAccessRequest, action: str, *, extra_fields: tuple[str, ...] = ()
) -> tuple[str, str]:
    """Move an access request (already locked) along ``action``; save; return (from, to)."""
    source = request.status
    request.status = request_target(action, source)
    request.save(update_fields=["status", *extra_fields])
    return source, request.status
