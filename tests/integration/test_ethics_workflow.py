"""The protocol state machine: every allowed edge works, every other move is refused."""

from __future__ import annotations

import pytest

from portal.ethics.models import Protocol, ProtocolStatus
from portal.ethics.workflow import ALL_EDGES, TRANSITIONS, TransitionNotAllowed, transition
from tests.factories import OrganizationFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory

FORBIDDEN = sorted(
    (action, state)
    for action, edges in TRANSITIONS.items()
    for state in ProtocolStatus.values
    if state not in edges
)


def _protocol(status: str) -> Protocol:
    return Protocol.objects.create(
        committee=EthicsCommitteeFactory(), principal_investigator=UserFactory(),
        institution=OrganizationFactory(), status=status,
    )


@pytest.mark.parametrize(("action", "source", "target"), sorted(ALL_EDGES))
def test_workflow_allowed_edge(db, action, source, target):
    protocol = _protocol(source)

    assert transition(protocol, action) == (source, target)

    protocol.refresh_from_db()
    assert protocol.status == target


@pytest.mark.parametrize(("action", "state"), FORBIDDEN)
def test_workflow_forbidden_edge_refused_and_unchanged(db, action, state):
    protocol = _protocol(state)

    with pytest.raises(TransitionNotAllowed):
        transition(protocol, action)

    protocol.refresh_from_db()
    assert protocol.status == state


def test_workflow_refusal_names_current_and_allowed_states(db):
    protocol = _protocol(ProtocolStatus.DRAFT)

    with pytest.raises(TransitionNotAllowed) as refused:
        transition(protocol, "permit")

    assert "下書き" in str(refused.value) or "Draft" in str(refused.value)


def test_workflow_every_state_is_reachable_from_draft():
    reachable = {ProtocolStatus.DRAFT.value}
    frontier = [ProtocolStatus.DRAFT.value]
    while frontier:
        state = frontier.pop()
        for edges in TRANSITIONS.values():
            target = edges.get(state)
            if target and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(ProtocolStatus.values)
