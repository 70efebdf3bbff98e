"""Grants (minimal): who holds which release now, and the operator creating grants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from portal.access.models import Grant
from portal.access.selectors import active_grants_holding, user_has_active_grant_on
from portal.access.services.grants import grant_create
from portal.audit.models import AuditEvent
from tests.factories import UserFactory, give_totp
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp", is_staff=True, is_superuser=True)
    give_totp(user)
    return user


@pytest.fixture
def releases(db):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(slug="ds")
    return [make_release(dataset, [FileSpec("a" * 32)], store=False),
            make_release(dataset, [FileSpec("b" * 32)], store=False)]


def test_active_grants_holding_ignores_expired_paused_and_future_grants(releases):
    first, second = releases
    user = UserFactory()
    live = active_grant([user], [first, second])
    active_grant([user], [first], days=-1)
    paused = active_grant([user], [first])
    Grant.objects.filter(pk=paused.pk).update(status=Grant.Status.PAUSED)
    future = active_grant([user], [first])
    Grant.objects.filter(pk=future.pk).update(starts_at=timezone.now() + timedelta(days=1))

    assert list(active_grants_holding([first.pk])) == [live]
    assert list(active_grants_holding([first.pk, second.pk])) == [live]  # each grant once
    assert list(active_grants_holding([])) == []


def test_user_has_active_grant_on(releases, outsider):
    first, second = releases
    holder = UserFactory()
    active_grant([holder], [first])

    assert user_has_active_grant_on(holder, first) is True
    assert user_has_active_grant_on(holder, second) is False
    assert user_has_active_grant_on(outsider, first) is False


def test_grant_create_by_operator_numbers_and_audits(operator, releases):
    holder = UserFactory(email="holder@company.example.jp")
    expires = timezone.now() + timedelta(days=30)

    grant = grant_create(users=[holder], releases=releases, expires_at=expires, by=operator)

    assert grant.reference == f"G-{timezone.localdate().year}-00001"
    assert list(grant.users.all()) == [holder]
    assert sorted(r.pk for r in grant.releases.all()) == sorted(r.pk for r in releases)
    assert grant.is_active()
    event = AuditEvent.objects.get(action="access.grant_created")
    assert event.details["users"] == ["holder@company.example.jp"]
    second = grant_create(users=[holder], releases=releases[:1], expires_at=expires, by=operator)
    assert second.reference == f"G-{timezone.localdate().year}-00002"


def test_grant_create_refused_for_non_operators_and_bad_input(operator, society_admin, releases):
    holder = UserFactory()
    later = timezone.now() + timedelta(days=1)
    events = AuditEvent.objects.count()

    with pytest.raises(PermissionDenied):
        grant_create(users=[holder], releases=releases, expires_at=later, by=society_admin)
    with pytest.raises(ValidationError):
        grant_create(users=[], releases=releases, expires_at=later, by=operator)
    with pytest.raises(ValidationError):
        grant_create(users=[holder], releases=[], expires_at=later, by=operator)
    with pytest.raises(ValidationError):
        grant_create(users=[holder], releases=releases, expires_at=timezone.now() - timedelta(days=1), by=operator)

    assert Grant.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_admin_add_goes_through_the_service(client, operator, releases):
    holder = UserFactory()
    client.force_login(operator)
    expires = timezone.localtime() + timedelta(days=10)

    response = client.post(reverse("admin:access_grant_add"), {
        "users": [holder.pk], "releases": [releases[0].pk],
        "expires_at_0": expires.strftime("%Y-%m-%d"), "expires_at_1": expires.strftime("%H:%M:%S"),
    })

    grant = Grant.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert grant.reference.startswith("G-")
    assert grant.created_by == operator
    assert list(grant.users.all()) == [holder]
    assert AuditEvent.objects.filter(action="access.grant_created").count() == 1
    assert client.get(reverse("admin:access_grant_change", args=[grant.pk])).status_code == 200
