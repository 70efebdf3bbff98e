"""The one workflow engine: a transition table per stateful model, one refusal, one transition.

An app's ``workflow.py`` declares each of its tables once::

    DATASET = Workflow(
        "datasets.dataset", DatasetStatus,
        {"publish": {S.DRAFT: S.PUBLISHED, S.WITHDRAWN: S.PUBLISHED}, "withdraw": {S.PUBLISHED: S.WITHDRAWN}},
        refusal_message=_("This cannot be done while the dataset is “%(current)s”; it must be %(allowed)s."),
    )

A service locks the object, checks who may act, then calls ``transition(dataset, DATASET, "publish")``,
which refuses with ``TransitionRefused`` (naming the current state and the allowed ones, changing
nothing) or saves the new status and returns ``(from, to)``. A page asks the same table:
``DATASET.allows("withdraw", dataset.status)``. Every table is registered by name as it is built, so
``tests/lib/test_workflow_tables.py`` walks every edge of every table and tries every forbidden move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.db.models import TextChoices
    from django.utils.functional import _StrPromise


class TransitionRefused(ValidationError):
    """The object is not in a state from which this action may be taken.

    A ``ValidationError`` (code ``transition``) carrying ``current`` (the object's state), ``wanted``
    (the states the action may be taken from) and ``action``. ``str()`` is the translated message
    itself, so pages and API errors show it as it is. An app whose callers catch its own refusal
    family gives its table a subclass that also derives from that family (``Workflow(refusal=...)``).
    """

    def __init__(self, message: str, *, current: str, wanted: tuple[str, ...], action: str = "") -> None:
        super().__init__(message, code="transition")
        self.current = current
        self.wanted = wanted
        self.action = action

    def __str__(self) -> str:
        return str(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Copied or pickled (a task's result, a deep copy) with its states, not only its arguments.
        return (_rebuild, (type(self), str(self.message), self.current, self.wanted, self.action))


def _rebuild(
    cls: type[TransitionRefused], message: str, current: str, wanted: tuple[str, ...], action: str
) -> TransitionRefused:
    return cls(message, current=current, wanted=wanted, action=action)


DEFAULT_REFUSAL_MESSAGE = _("This cannot be done while the status is “%(current)s”; it must be %(allowed)s.")

REGISTRY: dict[str, Workflow] = {}


@dataclasses.dataclass(frozen=True, eq=False)
class Workflow:
    """One model's transition table: action → {from state: to state}, over the model's TextChoices."""

    name: str
    states: type[TextChoices]
    table: Mapping[str, Mapping[str, str]]
    refusal_message: str | _StrPromise = DEFAULT_REFUSAL_MESSAGE
    refusal: type[TransitionRefused] = TransitionRefused
    field: str = "status"
    edges: frozenset[tuple[str, str, str]] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        known = set(self.states.values)
        unknown = {s for edges in self.table.values() for pair in edges.items() for s in pair} - known
        if unknown:
            raise ValueError(f"{self.name}: states not in {self.states.__name__}: {sorted(unknown)}")
        if self.name in REGISTRY:
            raise ValueError(f"A workflow named {self.name!r} is already registered.")
        edges = frozenset(
            (action, source, target) for action, moves in self.table.items() for source, target in moves.items()
        )
        object.__setattr__(self, "edges", edges)
        REGISTRY[self.name] = self

    def allows(self, action: str, current: str) -> bool:
        """May ``action`` be taken from ``current``? (What a page offers comes from here.)"""
        return current in self.table[action]

    def actions_from(self, current: str) -> list[str]:
        return [action for action, moves in self.table.items() if current in moves]

    def forbidden(self) -> list[tuple[str, str]]:
        """Every (action, state) pair the table refuses."""
        return [(action, state) for action, moves in self.table.items() for state in self.states.values
                if state not in moves]

    def target(self, action: str, current: str) -> str:
        """The state ``action`` leads to from ``current``, or ``self.refusal`` naming both."""
        moves = self.table[action]
        if current not in moves:
            raise self.refusal(
                str(self.refusal_message) % {
                    "current": self.states(current).label,
                    "allowed": ", ".join(str(self.states(state).label) for state in moves),
                },
                current=current, wanted=tuple(moves), action=action,
            )
        return moves[current]


def _has_field(obj: Any, name: str) -> bool:
    meta = getattr(obj, "_meta", None)
    return meta is not None and any(f.name == name for f in meta.concrete_fields)


def transition(
    obj: Any, workflow: Workflow, action: str, *, extra_fields: Iterable[str] = (), save: bool = True
) -> tuple[str, str]:
    """Move ``obj`` (already locked by the caller) along ``action``; return ``(from, to)``.

    Saves the status, ``updated_at`` where the model has one, and ``extra_fields`` the caller set
    beforehand; ``save=False`` leaves saving to the caller. A refusal changes nothing.
    """
    source = getattr(obj, workflow.field)
    target = workflow.target(action, source)
    setattr(obj, workflow.field, target)
    if save:
        fields = [workflow.field, *extra_fields]
        if _has_field(obj, "updated_at") and "updated_at" not in fields:
            fields.append("updated_at")
        obj.save(update_fields=fields)
    return source, target
