"""The opt-out state machines, edge by edge: every allowed move and every forbidden one."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone

from portal.optout.models import OptOutNotice, OptOutRequest
from portal.optout.workflow import (
    NOTICE_TRANSITIONS,
    REQUEST_TRANSITIONS,
    TransitionNotAllowed,
    notice_transition,
    request_transition,
)
from tests.factories import SocietyFactory, UserFactory

NOTICE_CASES = list(itertools.product(NOTICE_TRANSITIONS, OptOutNotice.Status.values))
REQUEST_CASES = list(itertools.product(REQUEST_TRANSITIONS, OptOutRequest.Status.values))


def test_tables_name_only_known_states():
    for table, states in ((NOTICE_TRANSITIONS, OptOutNotice.Status.values),
                          (REQUEST_TRANSITIONS, OptOutRequest.Status.values)):
        for edges in table.values():
            assert set(edges) <= set(states)
            assert set(edges.values()) <= set(states)


@pytest.mark.parametrize(("action", "state"), NOTICE_CASES)
def test_notice_transition(action, state):
    notice = OptOutNotice(status=state)
    allowed = NOTICE_TRANSITIONS[action]
    if state in allowed:
        assert notice_transition(notice, action) == (state, allowed[state])
        assert notice.status == allowed[state]
    else:
        with pytest.raises(TransitionNotAllowed):
            notice_transition(notice, action)
        assert notice.status == state


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "state"), REQUEST_CASES)
def test_request_transition(action, state):
    request = OptOutRequest.objects.create(
        reference="REQ-TEST-1", society=SocietyFactory(), subject_pseudonym="0" * 32, received_at=timezone.now(),
        channel="phone", requester_type="subject", identity_verification="照合", extent="future_only",
        action_taken="stop_use", status=state, handled_by=UserFactory(),
    )
    allowed = REQUEST_TRANSITIONS[action]
    if state in allowed:
        assert request_transition(request, action) == (state, allowed[state])
        request.refresh_from_db()
        assert request.status == allowed[state]
    else:
        with pytest.raises(TransitionNotAllowed):
            request_transition(request, action)
        request.refresh_from_db()
        assert request.status == state


def test_closed_request_is_final():
    assert not any(OptOutRequest.Status.CLOSED in edges for edges in REQUEST_TRANSITIONS.values())


def test_withdrawn_notice_is_final():
    assert not any(OptOutNotice.Status.WITHDRAWN in edges for edges in NOTICE_TRANSITIONS.values())
