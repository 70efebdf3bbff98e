"""Demo data for `manage.py seed_demo`: safe to run again, it only adds what is missing.

Accounts whose role needs a second factor get a TOTP authenticator with a secret derived from
their e-mail address, so that a person trying the demo can sign in: `manage.py demo_totp EMAIL`
prints the current code (or add the printed secret to any authenticator app).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.db import transaction

from portal.accounts.models import Organization, User
from portal.accounts.roles import requires_mfa
from portal.accounts.services import organization_create, organization_membership_add
from portal.audit.services import audit_record
from portal.ethics.models import CommitteeMembership, EthicsCommittee
from portal.ethics.services import committee_create, committee_member_add
from portal.societies.models import Society
from portal.societies.services import society_create, society_membership_add

DEMO_FILE = Path(settings.BASE_DIR) / "fixtures" / "demo.json"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    role_ja: str
    role_en: str
    totp_secret: str | None


def demo_totp_secret(email: str) -> str:
    digest = hashlib.sha256(f"portal-demo-totp:{email}".encode()).digest()[:20]
    return base64.b32encode(digest).decode()


def totp_code(secret: str, at: float | None = None) -> str:
    """The current six-digit code for a base32 secret (RFC 6238, 30-second steps, SHA-1)."""
    counter = int((time.time() if at is None else at) // settings.MFA_TOTP_PERIOD)
    key = base64.b32decode(secret, casefold=True)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6
    return f"{value:06d}"


def load_demo_data() -> dict[str, Any]:
    return json.loads(DEMO_FILE.read_text(encoding="utf-8"))


def seed_demo() -> list[DemoAccount]:
    data = load_demo_data()
    with transaction.atomic():
        organizations = {spec["key"]: _organization(spec) for spec in data["organizations"]}
        societies = {spec["slug"]: _society(spec, organizations) for spec in data["societies"]}
        users = [_user(spec, data["password"], organizations, societies) for spec in data["users"]]
        for spec in data.get("committees", []):
            _committee(spec, organizations)
        accounts = [_mfa(user, spec, data["password"]) for user, spec in zip(users, data["users"], strict=True)]
    return accounts


def _organization(spec: dict[str, Any]) -> Organization:
    existing = Organization.objects.filter(name_ja=spec["name_ja"], kind=spec["kind"]).first()
    if existing:
        return existing
    return organization_create(
        name_ja=spec["name_ja"], name_en=spec["name_en"], kind=spec["kind"], by=None
    )


def _society(spec: dict[str, Any], organizations: dict[str, Organization]) -> Society:
    existing = Society.objects.filter(slug=spec["slug"]).first()
    if existing:
        return existing
    org_key = spec.get("organization")
    organization = (
        organizations[org_key]
        if org_key
        else _organization(
            {"name_ja": spec["name_ja"], "name_en": spec["name_en"], "kind": "society"}
        )
    )
    society = society_create(
        slug=spec["slug"],
        name_ja=spec["name_ja"],
        name_en=spec["name_en"],
        kind=spec["kind"],
        organization=organization,
        by=None,
        image_types_ja=spec.get("image_types_ja", ""),
        image_types_en=spec.get("image_types_en", ""),
        description_ja=spec.get("description_ja", ""),
        description_en=spec.get("description_en", ""),
    )
    return society


def _committee(spec: dict[str, Any], organizations: dict[str, Organization]) -> EthicsCommittee:
    committee = EthicsCommittee.objects.filter(slug=spec["slug"]).first()
    if committee is None:
        committee = committee_create(
            slug=spec["slug"], name_ja=spec["name_ja"], name_en=spec["name_en"],
            institution=organizations[spec["institution"]],
            registration_number=spec["registration_number"], rules_ja=spec["rules_ja"],
            rules_en=spec["rules_en"], by=None,
        )
    for member in spec["members"]:
        user = User.objects.get(email=member["email"])
        if not CommitteeMembership.objects.filter(committee=committee, user=user).exists():
            committee_member_add(
                committee=committee, user=user, role=member["role"],
                category=member.get("category", ""), is_external=member.get("is_external", False),
                sex=member.get("sex", ""), affiliation=member.get("affiliation", ""), by=None,
            )
    return committee


def _user(
    spec: dict[str, Any],
    password: str,
    organizations: dict[str, Organization],
    societies: dict[str, Society],
) -> User:
    user = User.objects.filter(email=spec["email"]).first()
    if user is None:
        user = User.objects.create_user(
            email=spec["email"],
            password=password,
            full_name=spec["full_name"],
            is_staff=spec.get("staff", False),
            is_superuser=spec.get("staff", False),
        )
        audit_record(
            action="accounts.user_created", actor=None, target=user, details={"source": "demo"}
        )
    EmailAddress.objects.get_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    if spec.get("org"):
        organization_membership_add(
            user=user,
            organization=organizations[spec["org"]],
            role=spec["org_role"],
            title=spec.get("org_title", ""),
            by=None,
        )
    if spec.get("society"):
        society_membership_add(
            society=societies[spec["society"]], user=user, role=spec["society_role"], by=None
        )
    return user


def _mfa(user: User, spec: dict[str, Any], password: str) -> DemoAccount:
    secret = None
    if requires_mfa(User.objects.get(pk=user.pk)):
        secret = demo_totp_secret(user.email)
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, secret)
            audit_record(
                action="accounts.mfa_activated",
                actor=None,
                target=user,
                details={"type": "totp", "source": "demo"},
            )
    return DemoAccount(user.email, password, spec["role_ja"], spec["role_en"], secret)
