"""Who may run a model: ``user.has_perm("ai.run_aimodel", model)`` through guardian and
``ModelAccessBackend`` — grants on a dataset of the same society (where the card says so), approved
light requests, the society's admins and the operator, and nobody else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from portal.ai import services
from portal.ai.models import RUN_PERMISSION
from portal.ai.selectors import may_run
from portal.datasets.models import DatasetRelease
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.ai import AIModelFactory, published_version
from tests.factories.datasets import DatasetFactory, FileSpec, active_grant, make_release

pytestmark = pytest.mark.django_db


@pytest.fixture
def jges(db):  # type: ignore[no-untyped-def]
    return SocietyFactory(slug="jges")


@pytest.fixture
def model(jges):  # type: ignore[no-untyped-def]
    model = AIModelFactory(society=jges, slug="organ", open_to_grant_holders=True)
    published_version(model)
    return model


@pytest.fixture
def release(jges):  # type: ignore[no-untyped-def]
    return make_release(DatasetFactory(society=jges), [FileSpec("s1")], store=False)


def fresh(user):  # type: ignore[no-untyped-def]
    """The user as a new request would load it (nothing cached on the object)."""
    return type(user).objects.get(pk=user.pk)


def test_grant_on_a_dataset_of_the_same_society(model, release):
    holder = UserFactory()
    active_grant([holder], [release])
    assert fresh(holder).has_perm(RUN_PERMISSION, model)
    assert may_run(fresh(holder), model)


def test_grant_holders_need_the_card_to_say_so(model, release):
    holder = UserFactory()
    active_grant([holder], [release])
    model.open_to_grant_holders = False
    model.save()
    assert not may_run(fresh(holder), model)


def test_grant_on_another_society_gives_nothing(model):
    holder = UserFactory()
    other = make_release(DatasetFactory(society=SocietyFactory(slug="jsp")), [FileSpec("s1")], store=False)
    active_grant([holder], [other])
    assert not may_run(fresh(holder), model)


def test_expired_grant_gives_nothing(model, release):
    holder = UserFactory()
    grant = active_grant([holder], [release])
    grant.expires_at = timezone.now() - timedelta(minutes=1)
    grant.save()
    assert not may_run(fresh(holder), model)


def test_revoked_grant_gives_nothing(model, release):
    holder = UserFactory()
    grant = active_grant([holder], [release])
    grant.status = grant.Status.REVOKED
    grant.revoked_at = timezone.now()
    grant.save()
    assert not may_run(fresh(holder), model)


def test_grant_whose_releases_were_all_withdrawn_gives_nothing(model, release):
    holder = UserFactory()
    active_grant([holder], [release])
    DatasetRelease.objects.filter(pk=release.pk).update(
        status=DatasetRelease.Status.WITHDRAWN, withdrawn_at=timezone.now(), withdrawal_reason="試験のため取下げ")
    assert not may_run(fresh(holder), model)


def test_grant_not_naming_the_user_gives_nothing(model, release):
    active_grant([UserFactory()], [release])
    assert not may_run(fresh(UserFactory()), model)


def test_approved_request_gives_the_right_and_revocation_takes_it(jges, model):
    admin = UserFactory()
    SocietyMembershipFactory(society=jges, user=admin, role="admin")
    model.open_to_grant_holders = False
    model.save()
    user = UserFactory()
    request = services.access_request_submit(model=model, user=user, purpose="評価")
    assert not may_run(fresh(user), model)
    services.access_request_decide(request=request, approve=True, by=admin)
    assert may_run(fresh(user), model)
    other = AIModelFactory(society=jges, slug="other")
    assert not may_run(fresh(user), other)  # the permission is on that model only
    services.access_revoke(request=request, reason="終了", by=admin)
    assert not may_run(fresh(user), model)


def test_admins_of_the_society_and_the_operator_may_run(jges, model):
    admin, steward, operator, foreign_admin = UserFactory(), UserFactory(), UserFactory(is_staff=True), UserFactory()
    SocietyMembershipFactory(society=jges, user=admin, role="admin")
    SocietyMembershipFactory(society=jges, user=steward, role="steward")
    SocietyMembershipFactory(society=SocietyFactory(slug="jrs"), user=foreign_admin, role="admin")
    give_totp(operator)
    assert may_run(fresh(admin), model)
    assert may_run(fresh(operator), model)
    assert not may_run(fresh(steward), model)
    assert not may_run(fresh(foreign_admin), model)


def test_anonymous_and_inactive_users_may_not_run(model, release):
    holder = UserFactory(is_active=False)
    active_grant([holder], [release])
    assert not may_run(AnonymousUser(), model)
    assert not may_run(fresh(holder), model)


def test_backend_answers_only_for_its_permission_and_models(model, release):
    from portal.ai.permissions import ModelAccessBackend

    holder = UserFactory()
    active_grant([holder], [release])
    backend = ModelAccessBackend()
    assert backend.has_perm(fresh(holder), RUN_PERMISSION, model)
    assert not backend.has_perm(fresh(holder), "ai.change_aimodel", model)
    assert not backend.has_perm(fresh(holder), RUN_PERMISSION, release)
    assert not backend.has_perm(fresh(holder), RUN_PERMISSION, None)
