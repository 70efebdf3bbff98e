"""Every registered workflow table, edge by edge: each allowed move lands on its target, each other
(action, state) pair is refused with the engine's refusal and changes nothing. No database: the
objects are in memory. A table is registered when its app's ``workflow`` module builds it, and every
portal app's ``workflow`` module is imported here, so a new table is covered without editing this file.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest
from django.apps import apps

from portal.lib.workflow import REGISTRY, TransitionRefused, Workflow, transition


def _load_workflow_modules() -> list[str]:
    loaded = []
    for config in apps.get_app_configs():
        module = f"{config.name}.workflow"
        if config.name.startswith("portal.") and importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
            loaded.append(module)
    return loaded


MODULES = _load_workflow_modules()
TABLES = sorted(REGISTRY.values(), key=lambda workflow: workflow.name)
EDGES = [(w, action, source, target) for w in TABLES for action, source, target in sorted(w.edges)]
FORBIDDEN = [(w, action, state) for w in TABLES for action, state in w.forbidden()]


class _InMemory:
    """A stand-in for a locked model instance: it records what would be saved."""

    def __init__(self, field: str, state: str) -> None:
        setattr(self, field, state)
        self.saved: list[list[str]] = []

    def save(self, *, update_fields: list[str]) -> None:
        self.saved.append(list(update_fields))


def _id(value: object) -> str:
    return value.name if isinstance(value, Workflow) else str(value)


def test_every_known_table_is_registered():
    assert {
        "access.request", "access.society_review", "access.grant", "access.usage_report",
        "access.grant_amendment", "agreements.template_version", "agreements.signed_agreement",
        "ai.model_access_request", "ai.model_version", "ai.inference_job", "datasets.dataset",
        "datasets.release", "deid.job", "ethics.protocol", "optout.notice", "optout.notice_version",
        "optout.request", "optout.deletion_confirmation",
    } <= set(REGISTRY)


@pytest.mark.parametrize(("workflow", "action", "source", "target"), EDGES, ids=_id)
def test_workflow_edge_lands_on_its_target(workflow, action, source, target):
    obj = _InMemory(workflow.field, source)

    assert workflow.allows(action, source)
    assert transition(obj, workflow, action) == (source, target)
    assert getattr(obj, workflow.field) == target
    assert obj.saved == [[workflow.field]]


@pytest.mark.parametrize(("workflow", "action", "state"), FORBIDDEN, ids=_id)
def test_workflow_forbidden_move_refused_and_unchanged(workflow, action, state):
    obj = _InMemory(workflow.field, state)

    assert not workflow.allows(action, state)
    with pytest.raises(TransitionRefused) as refused:
        transition(obj, workflow, action)

    assert isinstance(refused.value, workflow.refusal)
    assert refused.value.current == state
    assert refused.value.wanted == tuple(workflow.table[action])
    assert refused.value.action == action
    assert f"“{workflow.states(state).label}”" in str(refused.value)
    for wanted in workflow.table[action]:
        assert str(workflow.states(wanted).label) in str(refused.value)
    assert getattr(obj, workflow.field) == state
    assert obj.saved == []


@pytest.mark.parametrize("workflow", TABLES, ids=_id)
def test_workflow_table_names_only_its_model_states(workflow):
    states = {s for _action, source, target in workflow.edges for s in (source, target)}

    assert states <= set(workflow.states.values)
    assert workflow.edges  # a table without edges is a mistake


def test_workflow_refusal_is_a_validation_error_with_the_message_as_text():
    from django.core.exceptions import ValidationError

    refusal = TransitionRefused("not now", current="a", wanted=("b",), action="go")

    assert isinstance(refusal, ValidationError)
    assert str(refusal) == "not now"
    assert refusal.messages == ["not now"]
    assert refusal.code == "transition"


def test_workflow_refusal_survives_copy_and_pickle_with_its_states():
    import copy
    import pickle

    from portal.ethics.workflow import EthicsRefused, TransitionNotAllowed

    refusal = TransitionNotAllowed("not now", current="draft", wanted=("active",), action="permit")

    for clone in (copy.deepcopy(refusal), pickle.loads(pickle.dumps(refusal))):  # noqa: S301 - our own bytes
        assert type(clone) is TransitionNotAllowed
        assert isinstance(clone, EthicsRefused)
        assert (str(clone), clone.current, clone.wanted, clone.action) == ("not now", "draft", ("active",), "permit")


def test_transition_saves_updated_at_where_the_model_has_it_and_nothing_when_told_not_to():
    from portal.datasets.models import Dataset
    from portal.datasets.workflow import DATASET

    saved: list[dict[str, object]] = []
    dataset = Dataset(status="draft")
    dataset.save = lambda **kwargs: saved.append(kwargs)  # type: ignore[method-assign]
    unsaved = Dataset(status="draft")
    unsaved.save = lambda **kwargs: saved.append(kwargs)  # type: ignore[method-assign]

    assert transition(dataset, DATASET, "publish", extra_fields=["published_at"]) == ("draft", "published")
    assert transition(unsaved, DATASET, "publish", save=False) == ("draft", "published")

    assert saved == [{"update_fields": ["status", "published_at", "updated_at"]}]
    assert unsaved.status == "published"
