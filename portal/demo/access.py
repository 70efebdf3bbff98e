"""Demo data access: agreement templates, and the demo company's applications — one granted, and
one waiting at each review step (screening, committee, signature, countersignature).

Every step goes through the services, signed by the person whose step it is, as in the portal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from portal.access.models import AccessRequest
from portal.access.security_items import SECURITY_ITEMS
from portal.access.services import requests
from portal.accounts.models import Organization, User
from portal.agreements import services as agreements
from portal.agreements.models import AgreementTemplate
from portal.datasets.models import Dataset
from portal.societies.models import Society, SocietyMembership

# The smallest valid PDF: a stand-in for the company's own ethics approval notice.
_DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

AGREEMENT_TEXT = (
    "第1条（目的）本契約は、{society}（以下「学会」という。）が提供する臨床画像データ（以下「提供データ」という。）を、"
    "利用者が承認された研究計画の範囲内で利用する条件を定める。\n"
    "第2条（利用の範囲）利用者は、提供データをデータ利用申請書に記載した目的及び利用者の範囲に限り利用する。\n"
    "第3条（禁止事項）利用者は、提供データの第三者への再提供、研究対象者の再識別、研究対象者への接触を行ってはならない。\n"
    "第4条（安全管理）利用者は、セキュリティ自己点検書に記載した安全管理措置を講じる。\n"
    "第5条（知的財産）提供データから生じた知的財産の帰属は、別表の条件による。\n"
    "第6条（終了時の措置）利用期間の終了時、利用者は提供データ及び中間生成物を消去し、消去証明を提出する。"
)

# One granted application, then one waiting at each step: (title, stop after).
APPLICATIONS = (
    ("内視鏡画像を用いた早期胃がん検出AIの開発", "granted"),
    ("食道内視鏡画像による表在癌の範囲診断支援", "submitted"),
    ("十二指腸病変の内視鏡画像分類モデルの検証", "committee"),
    ("胃粘膜萎縮度の自動評価アルゴリズムの開発", "approved"),
    ("内視鏡動画からの病変追跡技術の研究", "signed"),
)


def _agreement(society: Society, admin: User) -> None:
    if AgreementTemplate.objects.filter(society=society).exists():
        return
    template = agreements.agreement_template_create(
        society=society, kind="data_use", name_ja=f"{society.name_ja} データ利用契約",
        name_en=f"{society.name_en} data-use agreement", by=admin,
        body_ja=AGREEMENT_TEXT.format(society=society.name_ja),
        publication_duties_ja="成果の公表時には、データセット名とリリース版を引用し、学会への謝辞を記載する。",
        fee_terms_ja="学術研究は無償。製品開発を目的とする場合は別途協議する。",
        security_obligations_ja="二要素認証、アクセスログの取得と定期確認、保存時暗号化を行う。",
        benefit_sharing_ja="アノテーションを行った医師への謝辞と、成果の学会への報告を行う。",
        commercial_use_allowed=society.slug == "jges",
        patent_licence_back=True,
    )
    agreements.agreement_version_publish(version=template.versions.get(), by=admin)


def _application(title: str, stop: str, *, company: User, organization: Organization, release: Any,
                 steward: User, members: list[User], admin: User) -> None:
    if AccessRequest.objects.filter(title=title).exists():
        return
    today = timezone.localdate()
    request = requests.access_request_create(by=company, organization=organization, title=title)
    requests.access_request_update(
        access_request=request, by=company, releases=[release],
        named_users=[{"user": company, "role": "principal", "ethics_training": True,
                      "ethics_training_date": today - timedelta(days=60)}],
        security_answers={item.key: {"status": "done", "evidence": "社内規程第3条及び年次点検記録（デモ）"}
                          for item in SECURITY_ITEMS},
        principal_investigator=company, signatory=company,
        summary="学会の内視鏡画像を用いて病変検出AIを開発し、医療機器プログラムとしての承認申請を目指す（デモ）。",
        purpose="product_development", expected_outputs=["ai_model", "paper"],
        legal_basis="joint_use", joint_research_number="JR-2026-0001",
        joint_research_parties="日本消化器内視鏡学会、デモメディカルAI株式会社", joint_research_date=today - timedelta(days=90),
        ethics_committee_name="デモメディカルAI株式会社 研究倫理審査委員会", ethics_approval_number="DMAI-2026-003",
        ethics_approval_date=today - timedelta(days=30),
        ethics_approval_file=SimpleUploadedFile("approval.pdf", _DEMO_PDF, content_type="application/pdf"),
        processing_level="pseudonymised", environment="on_premise",
        period_start=today, period_end=today + timedelta(days=365),
        # REGULATION.md a6: the PI's title, researcher number and record, the head, the security level.
        pi_title="主任研究員", pi_researcher_number_kind="researchmap", pi_researcher_number="demo_company_pi",
        pi_research_record="内視鏡画像AIに関する論文3編（デモ）", head_name="デモ 社長", head_title="代表取締役社長",
        head_email="head@demo.example.jp", security_level="type_2",
    )
    requests.access_request_submit(access_request=request, by=company)
    if stop == "submitted":
        return
    society = release.dataset.society
    requests.access_request_screen(access_request=request, society=society, by=steward,
                                   comment="セキュリティ自己点検書を確認しました。")
    if stop == "committee":
        return
    for member in members:
        requests.access_request_vote(access_request=request, society=society, vote="approve", by=member)
    requests.access_request_decide(access_request=request, society=society, outcome="approved", by=members[0])
    if stop == "approved":
        return
    requests.access_request_sign(access_request=request, signatory_name=company.full_name,
                                 signatory_title="代表取締役", ip="127.0.0.1", by=company)
    if stop == "signed":
        return
    requests.access_request_countersign(access_request=request, society=society, countersigner_name=admin.full_name,
                                        countersigner_title="理事長", ip="127.0.0.1", by=admin)


def seed_demo_access() -> None:
    company = User.objects.filter(email="company@demo.example.jp").first()
    endoscopy = Dataset.objects.filter(slug="jges-upper-gi-endoscopy").first()
    if company is None or endoscopy is None:
        return
    society = endoscopy.society
    roles = {m.user.email: m for m in SocietyMembership.objects.filter(society=society).select_related("user")}
    admin = roles["jges-admin@demo.example.jp"].user
    steward = roles["steward@demo.example.jp"].user
    members = [roles[email].user for email in ("access-committee@demo.example.jp", "access-committee2@demo.example.jp")]
    for membership in SocietyMembership.objects.filter(role="admin").select_related("society", "user"):
        _agreement(membership.society, membership.user)
    organization = company.org_memberships.select_related("organization").get().organization
    release = endoscopy.releases.order_by("-version").first()
    for title, stop in APPLICATIONS:
        _application(title, stop, company=company, organization=organization, release=release,
                     steward=steward, members=members, admin=admin)
