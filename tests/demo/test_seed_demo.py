from __future__ import annotations

import io

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from portal.access.selectors import grant_usability
from portal.accounts.models import Organization, User
from portal.accounts.roles import Role, roles_for
from portal.audit.models import AuditEvent
from portal.audit.verify import verify_chain
from portal.demo.seed import demo_totp_secret, totp_code
from portal.societies.models import Society

EXPECTED_ROLES = {
    "operator@demo.example.jp": Role.OPERATOR,
    "auditor@demo.example.jp": Role.AUDITOR,
    "society-admin@demo.example.jp": Role.SOCIETY_ADMIN,
    "steward@demo.example.jp": Role.STEWARD,
    "access-committee@demo.example.jp": Role.ACCESS_COMMITTEE,
    "committee@demo.example.jp": Role.COMMITTEE_MEMBER,
    "ethics-chair@demo.example.jp": Role.ETHICS_CHAIR,
    "ethics-office@demo.example.jp": Role.ETHICS_SECRETARIAT,
    "head@demo.example.jp": Role.INSTITUTION_HEAD,
    "researcher@demo.example.jp": Role.APPLICANT,
    "company@demo.example.jp": Role.APPLICANT,
}


@override_settings(PORTAL_DEMO_ALLOWED=True)
def test_seed_demo_creates_societies_and_one_account_per_role(db):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    assert list(Society.objects.order_by("id").values_list("slug", flat=True)) == [
        "jsp", "jges", "jrs", "jos", "jsum", "jda", "nii"
    ]
    assert Society.objects.get(slug="nii").kind == "platform"
    for email, role in EXPECTED_ROLES.items():
        assert role in roles_for(User.objects.get(email=email)), email
        assert email in out.getvalue()
    assert Organization.objects.get(kind="operator").name_ja == "国立情報学研究所"
    assert verify_chain().ok


@override_settings(PORTAL_DEMO_ALLOWED=True)
def test_seed_demo_is_idempotent(db):
    call_command("seed_demo", stdout=io.StringIO())
    counts = (User.objects.count(), Society.objects.count(), Organization.objects.count(),
              Authenticator.objects.count(), AuditEvent.objects.count())

    call_command("seed_demo", stdout=io.StringIO())

    assert (User.objects.count(), Society.objects.count(), Organization.objects.count(),
            Authenticator.objects.count(), AuditEvent.objects.count()) == counts


@override_settings(PORTAL_DEMO_ALLOWED=True)
def test_seed_demo_gives_mfa_roles_a_known_totp(db):
    call_command("seed_demo", stdout=io.StringIO())

    with_totp = set(
        Authenticator.objects.filter(type="totp").values_list("user__email", flat=True)
    )
    assert with_totp == {
        "operator@demo.example.jp", "auditor@demo.example.jp", "society-admin@demo.example.jp",
        "steward@demo.example.jp", "committee@demo.example.jp", "ethics-chair@demo.example.jp",
        "ethics-office@demo.example.jp", "member-law@demo.example.jp", "member-lay@demo.example.jp",
        "member-science@demo.example.jp", "jges-admin@demo.example.jp", "access-committee@demo.example.jp",
        "access-committee2@demo.example.jp",
    }
    out = io.StringIO()
    call_command("demo_totp", "auditor@demo.example.jp", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == totp_code(demo_totp_secret("auditor@demo.example.jp"))


@override_settings(PORTAL_DEMO_ALLOWED=False)
def test_seed_demo_refused_in_production(db):
    with pytest.raises(CommandError, match="seed_demo runs only"):
        call_command("seed_demo", stdout=io.StringIO())

    assert list(User.objects.values_list("email", flat=True)) == []


def test_totp_code_matches_rfc6238_vector():
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (we keep the last six digits)
    import base64

    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_code(secret, at=59) == "287082"


@override_settings(PORTAL_DEMO_ALLOWED=True)
def test_seed_demo_ethics_committee_and_protocols(db):
    from portal.ethics.models import EthicsCommittee, ProtocolStatus
    from portal.ethics.quorum import Attendee, quorum_failures
    from portal.ethics.selectors import protocol_data_flow, review_inbox

    call_command("seed_demo", stdout=io.StringIO())

    committee = EthicsCommittee.objects.get(slug="demo-univ")
    voters = committee.memberships.exclude(role="secretariat")
    assert quorum_failures(Attendee(m.category, m.is_external, m.sex) for m in voters) == []
    statuses = {p.status for p in committee.protocols.all()}
    assert statuses == {ProtocolStatus.ACTIVE, ProtocolStatus.UNDER_REVIEW}
    active = committee.protocols.get(status=ProtocolStatus.ACTIVE)
    assert protocol_data_flow(active).allowed is True
    member = User.objects.get(email="committee@demo.example.jp")
    assert [a.review.version.protocol.status for a in review_inbox(member)] == [ProtocolStatus.UNDER_REVIEW]


@override_settings(PORTAL_DEMO_ALLOWED=True)
def test_seed_demo_datasets_notices_opt_outs_and_linked_records(db):
    from datetime import date

    from django.core.files.storage import default_storage

    from portal.access.models import Grant
    from portal.datasets.models import Dataset, ReleaseFile
    from portal.demo.datasets import demo_pseudonym
    from portal.linkage.selectors import linkage_match
    from portal.optout.models import DeletionConfirmation, OptOutRequest
    from portal.optout.selectors import dataset_has_published_notice

    call_command("seed_demo", stdout=io.StringIO())

    datasets = list(Dataset.objects.select_related("society").order_by("society_id"))
    assert [d.society.slug for d in datasets] == ["jsp", "jges", "jrs", "jos", "jsum", "jda"]
    for dataset in datasets:
        assert dataset.status == "published", dataset.slug
        assert dataset_has_published_notice(dataset), dataset.slug
        release = dataset.releases.get()
        assert release.status == "available" and release.file_count > 0
        first = release.files.first()
        assert default_storage.exists(first.storage_key)
        assert first.subject_pseudonym[:8] not in first.path
    # Patient 11 refused before the releases were built: left out of every one.
    assert not ReleaseFile.objects.filter(subject_pseudonym=demo_pseudonym(11)).exists()
    assert OptOutRequest.objects.count() == 3
    # Patient 3 asked for deletion of what the company holds: the company is asked to confirm.
    confirmation = DeletionConfirmation.objects.get()
    assert confirmation.holder.email == "company@demo.example.jp"
    assert confirmation.grant == Grant.objects.get()
    # Pathology, endoscopy and radiology records of the same patients link (3 and 5 opted out).
    societies = [d.society for d in datasets[:3]]
    page = linkage_match(societies=societies, date_from=date(2020, 1, 1), date_to=date(2024, 12, 31),
                         tolerance_days=7)
    linked = {match.subject_pseudonym for match in page.matches}
    assert linked == {demo_pseudonym(n) for n in (1, 2, 4, 6, 7, 8)}
    assert all({h.society_id for h in match.holdings} == {s.pk for s in societies} for match in page.matches)


@override_settings(PORTAL_DEMO_ALLOWED=True)
def test_seed_demo_company_granted_and_one_application_at_each_step(db):
    from portal.access.models import AccessRequest, Grant, ProvisionRecord
    from portal.agreements.models import SignedAgreement

    call_command("seed_demo", stdout=io.StringIO())

    company = User.objects.get(email="company@demo.example.jp")
    statuses = list(AccessRequest.objects.filter(applicant=company).order_by("id").values_list("status", flat=True))
    assert statuses == ["granted", "submitted", "committee_review", "approved", "signed"]
    grant = Grant.objects.get()
    assert (grant.status, grant.society.slug, list(grant.users.all())) == ("active", "jges", [company])
    assert grant_usability(grant, company).ok  # what the company may download is read live
    assert ProvisionRecord.objects.filter(grant=grant).exists()
    assert list(SignedAgreement.objects.order_by("id").values_list("status", flat=True)) == ["completed", "signed"]
