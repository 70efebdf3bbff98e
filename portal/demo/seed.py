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
from datetime import timedelta
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Organization, OrganizationMembership, User
from portal.accounts.roles import requires_mfa
from portal.accounts.services import organization_create, organization_membership_add
from portal.ai.demo import seed_demo_ai
from portal.audit.services import audit_record
from portal.demo.access import seed_demo_access
from portal.demo.datasets import seed_demo_datasets, seed_demo_opt_outs
from portal.ethics import services as ethics
from portal.ethics.items import PROTOCOL_ITEMS
from portal.ethics.models import CommitteeMembership, EthicsCommittee, Protocol, ProtocolItem
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
        committees = {spec["slug"]: _committee(spec, organizations) for spec in data.get("committees", [])}
        protocols = [_protocol(spec, committees, organizations) for spec in data.get("protocols", [])]
        active = next((p for p, spec in zip(protocols, data.get("protocols", []), strict=True)
                       if spec["stage"] == "active"), None)
        # Second factors first: the operator acts in the datasets' seed, and operators need one.
        accounts = [_mfa(user, spec, data["password"]) for user, spec in zip(users, data["users"], strict=True)]
        if active is not None:
            seed_demo_datasets(data, protocol=active)
            seed_demo_access()
            seed_demo_opt_outs()
            seed_demo_ai()
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


DEMO_ITEM_TEXT = {
    "organization": "研究代表機関：デモ総合病院（研究責任者：研究 一郎）。既存情報の提供機関：参加6学会。",
    "purpose_significance": "学会が収集した臨床画像を匿名化して共有し、画像診断支援AIの研究開発を促進する。",
    "methods_period": "既存の臨床画像及び診断名を用いる観察研究。研究期間は許可日から5年間。",
    "subject_selection": "参加施設で画像検査を受けた患者のうち、オプトアウトにより拒否の申出がなかった者。",
    "scientific_rationale": "多施設・多数例の画像により、AIの汎化性能を評価できる。",
    "consent_procedure": "生命・医学系指針に基づくオプトアウト（通知・公開及び拒否の機会の保障）による。",
    "personal_info_handling": "氏名等を削除し、学会共通ハッシュ化IDに置き換えた仮名加工の状態で扱う。",
    "burden_risk_benefit": "既存情報のみを用いるため、研究対象者に負担及びリスクはない。",
    "storage_disposal": "NIIのクラウド基盤に保管し、研究終了後5年間保管した後に消去する。",
    "reporting_to_head": "年1回、進捗状況を研究機関の長に報告する。",
    "funding_coi": "AMEDの研究費による。開示すべき利益相反はない。",
    "disclosure_method": "UMIN-CTRに登録し、結果は学会及び論文で公表する。",
    "results_handling": "個人の健康に関わる偶発的所見は生じない。",
    "consultation_desk": "デモ総合病院 研究支援室（電話 03-0000-0000）",
}


def _protocol(
    spec: dict[str, Any], committees: dict[str, EthicsCommittee], organizations: dict[str, Organization]
) -> Protocol:
    """A demo protocol brought, through the services, to the stage the demo needs."""
    existing = ProtocolItem.objects.filter(key="title", body=spec["title"]).select_related("version__protocol").first()
    if existing:
        return existing.version.protocol
    committee = committees[spec["committee"]]
    pi = User.objects.get(email=spec["pi"])
    protocol = ethics.protocol_create(
        committee=committee, institution=organizations[spec["institution"]], title=spec["title"], by=pi
    )
    items = {key: {"body": text} for key, text in DEMO_ITEM_TEXT.items()}
    for item in PROTOCOL_ITEMS:
        if not item.always_required:
            items[item.key] = {"not_applicable_reason": "既存情報のみを用いる侵襲のない研究であり、該当しない。"}
    items["simplification_judgement"] = {"body": "4要件（軽微な侵襲を超えない、不利益がない、実施が困難、社会的重要性）を委員会で確認する。"}
    site = organizations[spec["institution"]].name_ja
    ethics.protocol_update_draft(
        protocol=protocol, by=pi, items=items,
        # Item ②: the applicant leads the multi-site study and is their own site's PI.
        organization_entries=[
            {"institution_name": site, "institution_role": "research_institution", "person_name": pi.get_full_name(),
             "person_role": "lead_pi", "user": pi},
            {"institution_name": site, "institution_role": "research_institution", "person_name": pi.get_full_name(),
             "person_role": "site_pi", "user": pi},
        ],
        fields={
            "consent_procedure": "opt_out", "multi_site": True, "modalities": ["endoscopy", "pathology_wsi"],
            "uses_common_hash_id": True, "company_involvement": "data_use",
            "justification_minimal_risk": "既存の画像と診断名のみを用い、侵襲はない。",
            "justification_no_disadvantage": "診療には一切影響せず、拒否の機会を保障する。",
            "justification_impracticable": "過去の数十万件の検査について個別に同意を得ることは不可能である。",
            "justification_social_importance": "がんの早期発見を支援するAIの開発は社会的に重要である。",
        },
    )
    ethics.attachment_add(
        protocol=protocol, kind="opt_out_notice", by=pi,
        upload=SimpleUploadedFile("optout-notice.pdf", _DEMO_PDF, content_type="application/pdf"),
    )
    ethics.protocol_submit(protocol=protocol, by=pi)
    office = committee.memberships.get(role="secretariat").user
    chair = committee.memberships.get(role="chair").user
    if spec["stage"] == "under_review":
        ethics.review_open(protocol=protocol, mode="full_board", by=office)
        return protocol
    review = ethics.review_open(protocol=protocol, mode="expedited", expedited_ground="no_invasion", by=office)
    ethics.decision_record(
        review=review, outcome="approved", method="unanimous",
        reasons="既存情報のみを用いる研究であり、オプトアウトの4要件を満たすと判断した。",
        approved_until=timezone.localdate() + timedelta(days=5 * 365), by=chair,
    )
    head = OrganizationMembership.objects.get(organization=protocol.institution, role="head").user
    ethics.head_decide(protocol=protocol, permitted=True, by=head)
    return protocol


# The smallest valid PDF: a stand-in for the opt-out notice draft of the demo protocols.
_DEMO_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


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
