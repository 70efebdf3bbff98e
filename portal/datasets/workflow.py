"""The dataset state machine: one table of allowed transitions, one helper that performs them.

A withdrawn dataset may be published again (after the same checks as the first time): withdrawal
is how a society takes a dataset off the catalogue while a problem is fixed, and the releases and
their history stay where they are.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from portal.datasets.models import Dataset
from portal.datasets.models import DatasetStatus as S


class TransitionNotAllowed(ValidationError):
    """The dataset is not in a state from which this action may be taken."""


# action -> {from state: to state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "publish": {S.DRAFT: S.PUBLISHED, S.WITHDRAWN: S.PUBLISHED},
    "withdraw": {S.PUBLISHED: S.WITHDRAWN},
}

ALL_EDGES: frozenset[tuple[str, str, str]] = frozenset(
    (action, source, target) for action, edges in TRANSITIONS.items() for source, target in edges.items()
)


def target_state(action: str, current: str) -> str:
    edges = TRANSITIONS[action]
    if current not in edges:
        allowed = ", ".join(str(S(state).label) for state in edges)
        raise TransitionNotAllowed(
            _("This cannot be done while the dataset is “%(current)s”; it must be %(allowed)s.")
            % {"current": S(current).label, "allowed": allowed},
            code="transition",
        )
    return edges[current]


def transition(dataset: Dataset, action: str, *, extra_fields: tuple[str, ...] = ()) -> tuple[str, str]:
    """Move a dataset (already locked with select_for_update) along ``action``; return (from, to)."""
    source = dataset.status
    target = target_state(action, source)
    dataset.status = target
    dataset.save(update_fields=["status", "updated_at", *extra_fields])
    return source, target
