"""Factories for ethics committees and protocols."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from portal.ethics.models import (
    END_STATES,
    CommitteeMembership,
    EthicsCommittee,
    HeadDecision,
    Protocol,
    ProtocolVersion,
)
from tests.factories import OrganizationFactory, UserFactory, give_totp


class EthicsCommitteeFactory(DjangoModelFactory):
    class Meta:
        model = EthicsCommittee

    slug = factory.Sequence(lambda n: f"irb{n}")
    name_ja = factory.Sequence(lambda n: f"テスト倫理審査委員会{n}")
    name_en = factory.Sequence(lambda n: f"Test Research Ethics Committee {n}")
    institution = factory.SubFactory(OrganizationFactory)
    registration_number = "11000001"


class CommitteeMembershipFactory(DjangoModelFactory):
    class Meta:
        model = CommitteeMembership

    committee = factory.SubFactory(EthicsCommitteeFactory)
    user = factory.SubFactory(UserFactory)
    role = CommitteeMembership.Role.MEMBER
    category = CommitteeMembership.Category.NATURAL_SCIENCE
    is_external = False
    sex = CommitteeMembership.Sex.FEMALE


def full_committee(committee: EthicsCommittee) -> dict[str, CommitteeMembership]:
    """A committee that meets the quorum: chair, four members, a secretary (all with TOTP)."""
    specs = {
        "chair": ("chair", "natural_science", True, "male"),
        "science": ("member", "natural_science", False, "female"),
        "law": ("member", "humanities", False, "female"),
        "lay": ("member", "lay", True, "male"),
        "external": ("member", "humanities", True, "female"),
        "secretariat": ("secretariat", "", False, ""),
    }
    members = {}
    for name, (role, category, external, sex) in specs.items():
        user = UserFactory(email=f"{name}@{committee.slug}.example.jp", full_name=f"{name} 委員")
        give_totp(user)
        members[name] = CommitteeMembershipFactory(
            committee=committee, user=user, role=role, category=category, is_external=external, sex=sex
        )
    return members


def permitted_protocol(
    *, committee: EthicsCommittee | None = None, approved_days: int = 365, status: str = "active"
) -> Protocol:
    """A protocol approved and permitted by its institution's head, written straight to the tables.

    For tests of what rests on a protocol (datasets, notices, grants); the ethics tests walk the
    real review path through the services.
    """
    committee = committee or EthicsCommitteeFactory()
    investigator = UserFactory()
    head = UserFactory()
    protocol = Protocol.objects.create(
        number=f"T-{Protocol.objects.count() + 1:05d}-{committee.slug}",
        committee=committee,
        principal_investigator=investigator,
        institution=committee.institution,
        status=status,
        approved_until=timezone.localdate() + timedelta(days=approved_days),
        # An ended protocol carries when it ended and, for 中止 and 終了, its report (constraints).
        ended_at=timezone.now() if status in END_STATES else None,
        end_report="終了" if status in {"completed", "discontinued"} else "",
    )
    version = ProtocolVersion.objects.create(protocol=protocol, number=1, submitted_at=timezone.now())
    HeadDecision.objects.create(version=version, permitted=True, decided_by=head)
    return protocol
