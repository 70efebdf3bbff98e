"""Notices as PDFs: Japanese text, stored hash, idempotent issue, and who may download them."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from pypdf import PdfReader

from portal.audit.models import AuditEvent
from portal.ethics import services
from portal.ethics.documents import decision_notice_issue, japanese_date, permission_notice_issue
from portal.ethics.models import EthicsNotice
from portal.lib.pdf import RemoteAssetRefused, render_pdf
from tests.ethics.test_services import _approve, _attend_all, _to_review
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.ethics import EthicsCommitteeFactory, full_committee

TITLE = "内視鏡画像を用いた胃がん検出AIの開発"


@pytest.fixture
def setting(db, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}}}
    university = OrganizationFactory(name_ja="研究大学", kind="university")
    committee = EthicsCommitteeFactory(
        institution=university, slug="irb", name_ja="研究大学倫理審査委員会", registration_number="11000123"
    )
    members = full_committee(committee)
    members["chair"].user.full_name = "委員長 一郎"
    members["chair"].user.save()
    applicant = UserFactory(email="pi@example.ac.jp", full_name="研究 花子")
    OrganizationMembershipFactory(user=applicant, organization=university)
    head = UserFactory(email="head@example.ac.jp", full_name="学長 次郎")
    OrganizationMembershipFactory(user=head, organization=university, role="head")
    for user in (applicant, head):
        give_totp(user)
    return {"committee": committee, "members": members, "applicant": applicant, "head": head,
            "university": university}


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace(" ", "")


def _stored(notice: EthicsNotice) -> bytes:
    with default_storage.open(notice.file.name, "rb") as handle:
        return handle.read()


def _decided(setting, outcome="approved", **extra):  # type: ignore[no-untyped-def]
    protocol, review = _to_review(setting)
    _attend_all(setting, review)
    decision = _approve(setting, review, outcome=outcome, **extra)
    protocol.refresh_from_db()
    return protocol, decision


def test_decision_notice_contains_japanese_text_and_stored_hash_matches(setting):
    protocol, decision = _decided(setting)

    notice = decision_notice_issue(decision=decision, by=setting["members"]["chair"].user)

    data = _stored(notice)
    assert data.startswith(b"%PDF-")
    assert notice.sha256 == hashlib.sha256(data).hexdigest()
    text = _text(data)
    for expected in ("審査結果通知書", protocol.number, TITLE, "研究大学倫理審査委員会", "11000123",
                     "研究花子", "研究大学", "新規申請", "本審査", "承認", "全会一致",
                     "科学的・倫理的に妥当である。", "委員長一郎", japanese_date(decision.approved_until)):
        assert expected in text, expected
    assert (notice.kind, notice.protocol, notice.version) == ("decision", protocol, decision.review.version)
    event = AuditEvent.objects.filter(action="ethics.notice_issued").get()
    assert event.details["sha256"] == notice.sha256


def test_decision_notice_with_conditions_states_them(setting):
    _protocol, decision = _decided(setting, outcome="conditions", conditions="説明文書の平易化")

    text = _text(_stored(decision_notice_issue(decision=decision, by=None)))

    assert "条件付き承認" in text
    assert "説明文書の平易化" in text


def test_decision_notice_issued_twice_returns_stored_notice(setting):
    _protocol, decision = _decided(setting)
    first = decision_notice_issue(decision=decision, by=setting["members"]["chair"].user)
    before = AuditEvent.objects.count()

    second = decision_notice_issue(decision=decision, by=setting["members"]["chair"].user)

    assert second.pk == first.pk
    assert second.sha256 == first.sha256
    assert EthicsNotice.objects.count() == 1
    assert AuditEvent.objects.count() == before


def test_permission_notice_permitted_and_denied(setting):
    protocol, _decision = _decided(setting)
    head_decision = services.head_decide(protocol=protocol, permitted=True, by=setting["head"],
                                         conditions="年次で進捗を報告すること")

    notice = permission_notice_issue(head_decision=head_decision, by=setting["head"])

    data = _stored(notice)
    assert notice.sha256 == hashlib.sha256(data).hexdigest()
    text = _text(data)
    for expected in ("許可通知書", protocol.number, TITLE, "第1版", "学長次郎", "年次で進捗を報告すること"):
        assert expected in text, expected
    assert "不許可" not in text


def test_permission_notice_denied_says_not_permitted_with_reasons(setting):
    protocol, _decision = _decided(setting)
    head_decision = services.head_decide(protocol=protocol, permitted=False, by=setting["head"],
                                         reasons="実施体制が不十分")

    text = _text(_stored(permission_notice_issue(head_decision=head_decision, by=setting["head"])))

    assert "不許可通知書" in text
    assert "実施体制が不十分" in text


def test_render_pdf_refuses_remote_assets(settings, tmp_path):
    (tmp_path / "pdf").mkdir()
    (tmp_path / "pdf" / "remote.html").write_text('<link rel="stylesheet" href="https://example.com/x.css"><p>x</p>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]

    with pytest.raises(RemoteAssetRefused):
        render_pdf("remote.html", {})


# --- Downloads ----------------------------------------------------------------------------------


def _url(protocol, kind="decision", version=1):  # type: ignore[no-untyped-def]
    return reverse("ethics_documents:notice_download", args=[protocol.pk, version, kind])


@pytest.mark.parametrize("persona", ["applicant", "member", "head"])
def test_download_allowed_to_applicant_member_and_head(client, setting, persona):
    protocol, _decision = _decided(setting)
    user = {"applicant": setting["applicant"], "member": setting["members"]["law"].user,
            "head": setting["head"]}[persona]
    client.force_login(user)

    response = client.get(_url(protocol))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    body = b"".join(response.streaming_content)
    notice = EthicsNotice.objects.get()
    assert hashlib.sha256(body).hexdigest() == notice.sha256
    assert "審査結果通知書" in _text(body)
    event = AuditEvent.objects.filter(action="ethics.notice_downloaded").get()
    assert (event.actor_id, event.target_id) == (user.pk, str(notice.pk))
    assert event.details["kind"] == "decision"


def test_download_every_time_is_audited_and_bytes_do_not_change(client, setting):
    protocol, _decision = _decided(setting)
    client.force_login(setting["applicant"])

    first = b"".join(client.get(_url(protocol)).streaming_content)
    second = b"".join(client.get(_url(protocol)).streaming_content)

    assert first == second
    assert AuditEvent.objects.filter(action="ethics.notice_downloaded").count() == 2
    assert AuditEvent.objects.filter(action="ethics.notice_issued").count() == 1


def test_download_by_outsider_is_404_and_nothing_issued(client, setting):
    protocol, _decision = _decided(setting)
    client.force_login(UserFactory(email="outsider@example.com"))
    before = AuditEvent.objects.count()

    response = client.get(_url(protocol))

    assert response.status_code == 404
    assert EthicsNotice.objects.count() == 0
    assert AuditEvent.objects.count() == before


def test_download_anonymous_redirects_to_sign_in(client, setting):
    protocol, _decision = _decided(setting)

    response = client.get(_url(protocol))

    assert response.status_code == 302
    assert EthicsNotice.objects.count() == 0


def test_download_permission_notice_before_head_decided_is_404(client, setting):
    protocol, _decision = _decided(setting)
    client.force_login(setting["applicant"])

    assert client.get(_url(protocol, kind="permission")).status_code == 404
    assert client.get(_url(protocol, kind="unknown")).status_code == 404
    assert client.get(_url(protocol, version=2)).status_code == 404
    assert EthicsNotice.objects.count() == 0


def test_download_permission_notice_after_head_decided(client, setting):
    protocol, _decision = _decided(setting)
    services.head_decide(protocol=protocol, permitted=True, by=setting["head"])
    client.force_login(setting["head"])

    response = client.get(_url(protocol, kind="permission"))

    assert response.status_code == 200
    assert "許可通知書" in _text(b"".join(response.streaming_content))


def test_download_by_member_of_another_committee_is_404(client, setting):
    protocol, _decision = _decided(setting)
    other = full_committee(EthicsCommitteeFactory(slug="other"))
    client.force_login(other["chair"].user)

    assert client.get(_url(protocol)).status_code == 404
    assert EthicsNotice.objects.count() == 0


def test_download_response_is_not_cached(client, setting):
    protocol, _decision = _decided(setting)
    client.force_login(setting["applicant"])

    response = client.get(_url(protocol))
    b"".join(response.streaming_content)
    response.close()

    assert response["Cache-Control"] == "private, no-store"
    assert f'filename="{protocol.number}-v1-decision.pdf"' in response["Content-Disposition"]


def test_issue_tasks_issue_once_on_commit(setting, django_capture_on_commit_callbacks):
    from portal.ethics.tasks import issue_decision_notice_task, issue_permission_notice_task

    protocol, decision = _decided(setting)
    head_decision = services.head_decide(protocol=protocol, permitted=True, by=setting["head"])

    first = issue_decision_notice_task.apply(args=(decision.pk, setting["members"]["chair"].user.pk)).get()
    again = issue_decision_notice_task.apply(args=(decision.pk, None)).get()
    permission = issue_permission_notice_task.apply(args=(head_decision.pk, setting["head"].pk)).get()

    assert first == again
    assert EthicsNotice.objects.get(pk=permission).kind == "permission"
    assert EthicsNotice.objects.count() == 2


def test_decision_notice_of_an_expedited_review_words_mode_and_ground_as_the_guideline(setting):
    _protocol, review = _to_review(setting, mode="expedited")
    decision = _approve(setting, review)

    text = _text(_stored(decision_notice_issue(decision=decision, by=None)))

    assert "迅速審査（侵襲を伴わない研究であって介入を行わないもの）" in text
    assert "第1版（新規申請）" in text
