"""The protocol state machine: every allowed edge works, every other move is refused."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.ethics.models import END_STATES, Protocol, ProtocolStatus
from portal.ethics.workflow import ALL_EDGES, TRANSITIONS, TransitionNotAllowed, transition
from tests.factories import OrganizationFactory, UserFactory
from tests.factories.ethics import EthicsCommitteeFactory

FORBIDDEN = sorted(
    (action, state)
    for action, edges in TRANSITIONS.items()
    for state in ProtocolStatus.values
    if state not in edges
)


# The report that ends the research travels with the move into 中止 or 終了 (the table's constraint).
REPORTED_ENDS = {ProtocolStatus.DISCONTINUED, ProtocolStatus.COMPLETED}


def _protocol(status: str) -> Protocol:
    ended = status in END_STATES
    return Protocol.objects.create(
        committee=EthicsCommitteeFactory(), principal_investigator=UserFactory(),
        institution=OrganizationFactory(), status=status,
        ended_at=timezone.now() if ended else None,
        end_report="報告" if status in REPORTED_ENDS else "",
    )


@pytest.mark.parametrize(("action", "source", "target"), sorted(ALL_EDGES))
def test_workflow_allowed_edge(db, action, source, target):
    protocol = _protocol(source)
    changes = {"end_report": "終了・中止の報告"} if target in REPORTED_ENDS else {}

    assert transition(protocol, action, **changes) == (source, target)

    protocol.refresh_from_db()
    assert protocol.status == target
    assert (protocol.ended_at is not None) == (target in END_STATES)
    assert protocol.end_report == changes.get("end_report", "")


def test_workflow_end_states_are_named_and_never_left():
    assert {ProtocolStatus(s).value for s in END_STATES} == {
        "withdrawn", "not_approved", "denied", "discontinued", "completed", "not_subject",
    }
    assert "closed" not in ProtocolStatus.values
    assert not any(source in END_STATES for edges in TRANSITIONS.values() for source in edges)


def test_workflow_withdraw_and_discontinue_reach_their_own_end_states():
    assert set(TRANSITIONS["withdraw"].values()) == {ProtocolStatus.WITHDRAWN}
    assert set(TRANSITIONS["discontinue"].values()) == {ProtocolStatus.DISCONTINUED}
    assert set(TRANSITIONS["report_completion"].values()) == {ProtocolStatus.COMPLETED}


def test_protocol_discontinued_without_report_refused_by_database(db):
    protocol = _protocol(ProtocolStatus.ACTIVE)

    with pytest.raises(IntegrityError), transaction.atomic():
        transition(protocol, "discontinue")

    assert Protocol.objects.get(pk=protocol.pk).status == ProtocolStatus.ACTIVE


def test_protocol_end_state_without_ended_at_refused_by_database(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Protocol.objects.create(
            committee=EthicsCommitteeFactory(), principal_investigator=UserFactory(),
            institution=OrganizationFactory(), status=ProtocolStatus.WITHDRAWN,
        )

    assert not Protocol.objects.exists()


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
