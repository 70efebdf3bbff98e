"""Factories for agreements and data-access applications, written straight to the tables.

For tests of what reads them; the agreements and access services have their own tests that go
through the services.
"""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from portal.access.models import AccessRequest, Grant, RequestStatus, RequestUser, SocietyReview
from portal.agreements.models import AgreementTemplate, AgreementTemplateVersion, SignedAgreement
from tests.factories import OrganizationFactory, UserFactory


def agreement_version(society, **terms) -> AgreementTemplateVersion:  # type: ignore[no-untyped-def]
    """A published data-use agreement version of ``society`` with these terms."""
    template = AgreementTemplate.objects.create(
        society=society, name_ja=f"{society.name_ja} データ利用契約", name_en="Data-use agreement",
    )
    version = AgreementTemplateVersion.objects.create(
        template=template, number=1, status=AgreementTemplateVersion.Status.PUBLISHED,
        body_ja="第1条（目的）本契約は、学会が提供する臨床画像の利用条件を定める。", published_at=timezone.now(),
        **terms,
    )
    template.current_version = version
    template.save(update_fields=["current_version"])
    return version


class AccessRequestFactory(DjangoModelFactory):
    class Meta:
        model = AccessRequest

    applicant = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory, kind="company")
    principal_investigator = factory.SelfAttribute("applicant")
    signatory = factory.SelfAttribute("applicant")
    title = factory.Sequence(lambda n: f"内視鏡画像を用いた病変検出AIの開発 {n}")
    summary = "内視鏡画像から早期胃がんを検出するAIを開発する。"
    purpose = "product_development"
    expected_outputs = ["ai_model", "paper"]
    legal_basis = "joint_use"
    processing_level = "pseudonymised"
    environment = "on_premise"
    period_start = factory.LazyFunction(timezone.localdate)
    period_end = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=365))


def granted_request(users, releases, *, society=None, days: int = 365) -> tuple[AccessRequest, Grant]:  # type: ignore[no-untyped-def]
    """An application approved, signed and countersigned, with its grant in force."""
    users = list(users)
    releases = list(releases)
    society = society or releases[0].dataset.society
    request = AccessRequestFactory(
        applicant=users[0], status=RequestStatus.GRANTED, reference=f"DAR-T{AccessRequest.objects.count() + 1:05d}",
        submitted_at=timezone.now(), decided_at=timezone.now(),
    )
    request.releases.set(releases)
    for index, user in enumerate(users):
        RequestUser.objects.create(
            access_request=request, user=user, role="principal" if index == 0 else "co_investigator",
            ethics_training=True, ethics_training_date=timezone.localdate(),
        )
    reviewer = UserFactory()
    SocietyReview.objects.create(
        access_request=request, society=society, status=SocietyReview.Status.APPROVED,
        screened_by=reviewer, screened_at=timezone.now(), decided_by=reviewer, decided_at=timezone.now(),
    )
    version = agreement_version(society)
    SignedAgreement.objects.create(
        access_request=request, society=society, template_version=version, terms=version.terms(),
        status=SignedAgreement.Status.COMPLETED, signatory=users[0], signatory_name="署名 太郎",
        signatory_title="代表取締役", signed_at=timezone.now(), countersigned_by=UserFactory(),
        countersigner_name="学会 次郎", countersigner_title="理事長", countersigned_at=timezone.now(),
    )
    grant = Grant.objects.create(
        reference=f"G-T{Grant.objects.count() + 1:05d}", access_request=request, society=society,
        expires_at=timezone.now() + timedelta(days=days),
    )
    grant.users.set(users)
    grant.releases.set(releases)
    return request, grant
