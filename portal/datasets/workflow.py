"""The dataset state machine: one table of allowed transitions, one helper that performs them.

A withdrawn dataset may be published again (after the same checks as the first time): withdrawal
is how a society takes a dataset off the catalogue while a problem is fixed, and the releases and
their history stay where they are.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from portal.datasets.models import Dataset
from portal.datasets.models import DatasetReleaseStatus as RS
from portal.datasets.models import DatasetStatus as S
from portal.lib.workflow import TransitionRefused, Workflow
from portal.lib.workflow import transition as move

# The datasets' refusal was always a ValidationError: the engine's refusal is one.
TransitionNotAllowed = TransitionRefused

# action -> {from state: to state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "publish": {S.DRAFT: S.PUBLISHED, S.WITHDRAWN: S.PUBLISHED},
    "withdraw": {S.PUBLISHED: S.WITHDRAWN},
}

DATASET = Workflow(
    "datasets.dataset", S, TRANSITIONS,
    refusal_message=_("This cannot be done while the dataset is “%(current)s”; it must be %(allowed)s."),
)
ALL_EDGES: frozenset[tuple[str, str, str]] = DATASET.edges

# A withdrawn release stays withdrawn: its grants' holders are told to delete it.
RELEASE = Workflow("datasets.release", RS, {"withdraw": {RS.AVAILABLE: RS.WITHDRAWN}})


def target_state(action: str, current: str) -> str:
    return DATASET.target(action, current)


def transition(dataset: Dataset, action: str, *, extra_fields: tuple[str, ...] = ()) -> tuple[str, str]:
    """Move a dataset (already locked with select_for_update) along ``action``; return (from, to)."""
    return move(dataset, DATASET, action, extra_fields=extra_fields)
