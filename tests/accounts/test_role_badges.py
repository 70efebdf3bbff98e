"""Role badges name each person's real roles, exactly: no committee seat shown as another, and
"applicant" only for a person who has applied for something or holds no other role."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from portal.accounts.roles import Role, badges_for, has_mfa, roles_for
from portal.ethics import services
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.access import AccessRequestFactory
from tests.factories.ai import AIModelFactory
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

pytestmark = pytest.mark.django_db


def _badges_on_page(client, user) -> list[str]:  # type: ignore[no-untyped-def]
    if not has_mfa(user):
        give_totp(user)  # roles that approve or release data may not use pages without a second factor
    client.force_login(user)
    body = client.get(reverse("dashboard")).content.decode()
    return re.findall(r'<span class="badge" data-role="([a-z_]+)">', body)


@pytest.fixture
def committee(db):  # type: ignore[no-untyped-def]
    return full_committee(EthicsCommitteeFactory(slug="irb"))


def test_badges_secretariat_is_shown_as_secretariat_only(client, committee):
    secretariat = committee["secretariat"].user
    OrganizationMembershipFactory(user=secretariat)  # works at the university, applied for nothing

    assert _badges_on_page(client, secretariat) == ["ethics_secretariat"]


def test_badges_secretariat_page_says_secretariat_in_japanese(client, committee):
    client.force_login(committee["secretariat"].user)

    body = client.get(reverse("dashboard")).content.decode()

    assert '<span class="badge" data-role="ethics_secretariat">倫理審査委員会事務局</span>' in body
    assert "申請者" not in body.split('data-testid="roles"')[1].split("</p>")[0]


def test_badges_chair_is_shown_as_chair_only(client, committee):
    assert _badges_on_page(client, committee["chair"].user) == ["ethics_chair"]
    assert badges_for(committee["chair"].user) == [Role.ETHICS_CHAIR]


def test_badges_member_is_shown_as_committee_member(client, committee):
    assert _badges_on_page(client, committee["law"].user) == ["committee_member"]


def test_badges_inactive_seat_is_not_shown(client, committee):
    membership = committee["lay"]
    membership.active = False
    membership.save(update_fields=["active"])

    assert _badges_on_page(client, membership.user) == ["applicant"]


@pytest.mark.parametrize(
    ("society_role", "badge"),
    [("admin", "society_admin"), ("steward", "steward"), ("access_committee", "access_committee")],
)
def test_badges_society_roles(client, society_role, badge):
    user = UserFactory()
    SocietyMembershipFactory(user=user, role=society_role)

    assert _badges_on_page(client, user) == [badge]


@pytest.mark.parametrize(
    ("org_role", "badge"), [("head", "institution_head"), ("auditor", "auditor"), ("operator", "operator")]
)
def test_badges_organisation_roles(client, org_role, badge):
    user = UserFactory()
    OrganizationMembershipFactory(user=user, role=org_role)

    assert _badges_on_page(client, user) == [badge]


def test_badges_plain_member_of_a_society_or_company_is_an_applicant(client, applicant):
    SocietyMembershipFactory(user=applicant, role="member")

    assert _badges_on_page(client, applicant) == ["applicant"]


def test_badges_committee_member_who_is_a_principal_investigator_is_also_applicant(client, committee):
    member = committee["science"].user
    university = OrganizationFactory(kind="university")
    OrganizationMembershipFactory(user=member, organization=university)
    services.protocol_create(committee=EthicsCommitteeFactory(), institution=university, title="研究", by=member)

    assert _badges_on_page(client, member) == ["committee_member", "applicant"]


def test_badges_steward_with_a_data_access_application_is_also_applicant(client):
    steward = UserFactory()
    SocietyMembershipFactory(user=steward, role="steward")
    AccessRequestFactory(applicant=steward)

    assert _badges_on_page(client, steward) == ["steward", "applicant"]


def test_badges_head_with_an_ai_model_access_request_is_also_applicant(client):
    from portal.ai.models import ModelAccessRequest

    head = UserFactory()
    OrganizationMembershipFactory(user=head, role="head")
    ModelAccessRequest.objects.create(model=AIModelFactory(), user=head, purpose="診断支援の評価")

    assert _badges_on_page(client, head) == ["institution_head", "applicant"]


def test_badges_several_roles_in_the_vocabulary_order(client, committee):
    chair = committee["chair"].user
    SocietyMembershipFactory(user=chair, role="steward")
    OrganizationMembershipFactory(user=chair, role="head")

    assert _badges_on_page(client, chair) == ["steward", "ethics_chair", "institution_head"]


def test_roles_every_signed_in_person_may_still_apply(committee):
    # The badge is exact; what a person may do is not narrowed: everyone may apply.
    assert roles_for(committee["secretariat"].user) == {Role.APPLICANT, Role.ETHICS_SECRETARIAT}


def test_badges_cost_no_query_beyond_the_roles(committee, django_assert_num_queries):
    user = committee["chair"].user
    with django_assert_num_queries(3):  # organisation, society, committee seats with applications
        badges_for(user)
        roles_for(user)
