"""The application and society-review state machines, edge by edge."""

from __future__ import annotations

import pytest
from django.utils import timezone

from portal.access.models import AccessRequest, RequestStatus, SocietyReview
from portal.access.workflow import (
    REQUEST_EDGES,
    REQUEST_TRANSITIONS,
    REVIEW_EDGES,
    REVIEW_TRANSITIONS,
    TransitionNotAllowed,
    transition_request,
    transition_review,
)
from tests.factories import OrganizationMembershipFactory, SocietyFactory, UserFactory
from tests.factories.access import AccessRequestFactory

pytestmark = pytest.mark.django_db

FORBIDDEN_REQUEST = sorted(
    (action, state) for action, edges in REQUEST_TRANSITIONS.items() for state in RequestStatus.values
    if state not in edges
)
FORBIDDEN_REVIEW = sorted(
    (action, state) for action, edges in REVIEW_TRANSITIONS.items() for state in SocietyReview.Status.values
    if state not in edges
)


def _request(status: str) -> AccessRequest:
    request = AccessRequestFactory(status=status)
    OrganizationMembershipFactory(user=request.applicant, organization=request.organization)
    return request


@pytest.mark.parametrize(("action", "source", "target"), sorted(REQUEST_EDGES))
def test_request_edge_allowed(action, source, target):
    request = _request(source)
    assert transition_request(request, action) == (source, target)
    request.refresh_from_db()
    assert request.status == target


@pytest.mark.parametrize(("action", "source"), FORBIDDEN_REQUEST)
def test_request_edge_forbidden_names_states_and_changes_nothing(action, source):
    request = _request(source)
    with pytest.raises(TransitionNotAllowed) as caught:
        transition_request(request, action)
    assert caught.value.current == source
    assert caught.value.wanted == tuple(REQUEST_TRANSITIONS[action])
    message = str(caught.value)
    assert f"“{RequestStatus(source).label}”" in message
    for wanted in REQUEST_TRANSITIONS[action]:
        assert str(RequestStatus(wanted).label) in message
    request.refresh_from_db()
    assert request.status == source


def _review(status: str) -> SocietyReview:
    # Screened and decided already, so that every edge passes the database's constraints (a
    # review past screening names who screened it, a decided one who decided it).
    reviewer = UserFactory()
    return SocietyReview.objects.create(
        access_request=_request(RequestStatus.SUBMITTED), society=SocietyFactory(), status=status,
        screened_by=reviewer, screened_at=timezone.now(), decided_by=reviewer, decided_at=timezone.now(),
    )


@pytest.mark.parametrize(("action", "source", "target"), sorted(REVIEW_EDGES))
def test_review_edge_allowed(action, source, target):
    review = _review(source)
    assert transition_review(review, action) == (source, target)
    review.refresh_from_db()
    assert review.status == target


@pytest.mark.parametrize(("action", "source"), FORBIDDEN_REVIEW)
def test_review_edge_forbidden_names_states_and_changes_nothing(action, source):
    review = _review(source)
    with pytest.raises(TransitionNotAllowed) as caught:
        transition_review(review, action)
    assert caught.value.current == source
    message = str(caught.value)
    assert f"“{SocietyReview.Status(source).label}”" in message
    for wanted in REVIEW_TRANSITIONS[action]:
        assert str(SocietyReview.Status(wanted).label) in message
    review.refresh_from_db()
    assert review.status == source


def test_every_request_state_is_reachable_or_initial():
    targets = {target for _action, _source, target in REQUEST_EDGES}
    assert set(RequestStatus.values) - targets == {RequestStatus.DRAFT, RequestStatus.ENDING}


def test_security_items_cover_every_category_with_unique_keys():
    from portal.access.security_items import CATEGORY_LABELS, SECURITY_ITEMS

    keys = [item.key for item in SECURITY_ITEMS]
    assert len(keys) == len(set(keys))
    assert {item.category for item in SECURITY_ITEMS} == set(CATEGORY_LABELS)
    assert all(item.label_ja and item.label_en for item in SECURITY_ITEMS)
