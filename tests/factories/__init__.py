"""Factories for the portal's models: tests build their own data with these."""

from __future__ import annotations

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from factory.django import DjangoModelFactory

from portal.accounts.models import Organization, OrganizationMembership, User
from portal.societies.models import Society, SocietyMembership

TEST_PASSWORD = "correct horse battery staple 42"
TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # base32, fixed so that tests can compute codes


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.jp")
    full_name = factory.Sequence(lambda n: f"テスト 利用者{n}")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def verified_email(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        obj.save()
        if create:
            EmailAddress.objects.get_or_create(
                user=obj, email=obj.email, defaults={"verified": True, "primary": True}
            )


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name_ja = factory.Sequence(lambda n: f"テスト機関{n}")
    name_en = factory.Sequence(lambda n: f"Test Organisation {n}")
    kind = Organization.Kind.UNIVERSITY


class OrganizationMembershipFactory(DjangoModelFactory):
    class Meta:
        model = OrganizationMembership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = OrganizationMembership.Role.MEMBER


class SocietyFactory(DjangoModelFactory):
    class Meta:
        model = Society

    slug = factory.Sequence(lambda n: f"society-{n}")
    name_ja = factory.Sequence(lambda n: f"日本テスト学会{n}")
    name_en = factory.Sequence(lambda n: f"Japanese Test Society {n}")
    kind = Society.Kind.ACADEMIC


class SocietyMembershipFactory(DjangoModelFactory):
    class Meta:
        model = SocietyMembership

    society = factory.SubFactory(SocietyFactory)
    user = factory.SubFactory(UserFactory)
    role = SocietyMembership.Role.MEMBER


def give_totp(user: User, secret: str = TOTP_SECRET) -> None:
    """Activate a TOTP authenticator with a known secret (as the demo seed does)."""
    TOTP.activate(user, secret)
