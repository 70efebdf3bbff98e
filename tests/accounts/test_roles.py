from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from portal.accounts.roles import Role, has_mfa, requires_mfa, roles_for
from tests.factories import OrganizationMembershipFactory, SocietyMembershipFactory, UserFactory


def test_roles_for_anonymous_is_empty():
    assert roles_for(AnonymousUser()) == frozenset()


def test_roles_for_inactive_user_is_empty(db):
    assert roles_for(UserFactory(is_active=False)) == frozenset()


def test_roles_for_plain_user_is_applicant(db):
    assert roles_for(UserFactory()) == {Role.APPLICANT}


def test_roles_for_society_and_org_memberships_combine(db):
    user = UserFactory()
    SocietyMembershipFactory(user=user, role="admin")
    SocietyMembershipFactory(user=user, role="member")
    OrganizationMembershipFactory(user=user, role="head")

    assert roles_for(user) == {Role.APPLICANT, Role.SOCIETY_ADMIN, Role.INSTITUTION_HEAD}


def test_roles_for_staff_is_operator(db):
    assert Role.OPERATOR in roles_for(UserFactory(is_staff=True))


def test_roles_for_is_cached_per_user_object(db, django_assert_num_queries):
    user = UserFactory()
    with django_assert_num_queries(3):
        roles_for(user)
        roles_for(user)


def test_requires_mfa_by_role(db):
    plain = UserFactory()
    head = UserFactory()
    OrganizationMembershipFactory(user=head, role="head")
    steward = UserFactory()
    SocietyMembershipFactory(user=steward, role="steward")

    assert requires_mfa(plain) is False
    assert requires_mfa(head) is False
    assert requires_mfa(steward) is True


def test_has_mfa_only_with_totp(db):
    from tests.factories import give_totp

    user = UserFactory()
    assert has_mfa(user) is False
    give_totp(user)
    assert has_mfa(user) is True
