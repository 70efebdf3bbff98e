"""Usage reports (利用報告, REGULATION.md a8): schedule, submission, acceptance, overdue enforcement, pages."""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from portal.access.models import Download, Grant, RequestStatus, UsageReport
from portal.access.report_tasks import enforce_usage_reports_task
from portal.access.services.records import (
    add_years,
    provision_record_create,
    usage_reports_schedule,
)
from portal.access.services.reports import (
    institution_after_days,
    reminder_every_days,
    restrict_after_days,
    usage_report_accept,
    usage_report_confirm,
    usage_report_stop,
    usage_report_submit,
    usage_reports_enforce,
)
from portal.audit.models import AuditEvent
from tests.factories import (
    OrganizationMembershipFactory,
    SocietyFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)
from tests.factories.access import granted_request
from tests.factories.datasets import DatasetFactory, FileSpec, make_release

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

ANNUAL_FIELDS = {
    "progress": "300症例を解析した。",
    "deviations": "なし",
    "user_changes": "なし",
    "security_recheck": "チェックリストを再確認した。",
}


@pytest.fixture
def setup(society):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(society=society, slug="colon")
    release = make_release(dataset, [FileSpec("a" * 32), FileSpec("b" * 32)], store=False)
    pi = UserFactory(email="pi@company.example.co.jp", full_name="企業 研究者")
    co = UserFactory(email="co@company.example.co.jp", full_name="共同 研究者")
    request, grant = granted_request([pi, co], [release], society=society, days=800)
    head = UserFactory(email="head@company.example.co.jp")
    OrganizationMembershipFactory(user=head, organization=request.organization, role="head")
    provision_record_create(grant=grant)
    reports = usage_reports_schedule(grant=grant)
    return {"release": release, "request": request, "grant": grant, "pi": pi, "co": co, "head": head,
            "reports": reports}


def _annual(setup) -> UsageReport:  # type: ignore[no-untyped-def]
    return UsageReport.objects.filter(grant=setup["grant"], kind="annual").order_by("due_on").first()


def _end(setup) -> UsageReport:  # type: ignore[no-untyped-def]
    return UsageReport.objects.get(grant=setup["grant"], kind="end_of_use")


def _confirm(setup, report: UsageReport) -> None:  # type: ignore[no-untyped-def]
    """The principal investigator's and the head's confirmations, which acceptance waits for."""
    usage_report_confirm(report=report, as_role="pi", by=setup["pi"])
    usage_report_confirm(report=report, as_role="head", by=setup["head"])


CITED = "日本消化器内視鏡学会「大腸内視鏡画像」（colon）v1 を用いた。"


# --- Schedule -------------------------------------------------------------------------------------


def test_schedule_has_each_year_and_the_end_of_use(setup):
    grant = setup["grant"]
    start = timezone.localdate(grant.starts_at)
    expiry = timezone.localdate(grant.expires_at)
    rows = list(UsageReport.objects.filter(grant=grant).order_by("due_on").values_list(
        "kind", "due_on", "period_from", "period_to"))
    assert rows == [
        ("annual", add_years(start, 1), start, add_years(start, 1)),
        ("annual", add_years(start, 2), add_years(start, 1), add_years(start, 2)),
        ("end_of_use", expiry, start, expiry),
    ]
    usage_reports_schedule(grant=grant)  # idempotent
    assert UsageReport.objects.filter(grant=grant).count() == 3


def test_a_grant_of_under_a_year_owes_only_the_end_of_use_report(society):
    dataset = DatasetFactory(society=society)
    release = make_release(dataset, [FileSpec("c" * 32)], store=False)
    _request, grant = granted_request([UserFactory()], [release], society=society, days=200)
    usage_reports_schedule(grant=grant)
    assert list(UsageReport.objects.filter(grant=grant).values_list("kind", flat=True)) == ["end_of_use"]


# --- Submission -----------------------------------------------------------------------------------


def test_submit_names_each_missing_field_and_changes_nothing(setup):
    report = _annual(setup)
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=report, by=setup["pi"])
    assert sorted(excinfo.value.message_dict) == ["deviations", "progress", "security_recheck", "user_changes"]
    end = _end(setup)
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=end, by=setup["pi"], **ANNUAL_FIELDS)
    assert sorted(excinfo.value.message_dict) == [
        "deletion_certificate", "deletion_date", "deletion_method", "results_summary"]
    report.refresh_from_db()
    end.refresh_from_db()
    assert (report.status, end.status) == ("due", "due")
    assert not AuditEvent.objects.filter(action="access.usage_report_submitted").exists()


def test_outputs_are_validated_and_doi_format_checked(setup):
    report = _annual(setup)
    outputs = [
        {"kind": "paper", "title": "早期胃がん検出AI", "doi": "doi-ではない", "citation": CITED},
        {"kind": "", "title": "種別なし", "citation": CITED},
        {"kind": "patent", "title": "", "citation": CITED},
        {"kind": "", "title": "", "doi": "", "number": ""},
    ]
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=report, by=setup["pi"], outputs=outputs, **ANNUAL_FIELDS)
    assert excinfo.value.message_dict["outputs"] == [
        "Output 1: “doi-ではない” is not a DOI (it looks like 10.1234/abc).",
        "Output 2: choose the kind.",
        "Output 3: give the title.",
    ]
    report.refresh_from_db()
    assert report.status == "due"
    good = [
        {"kind": "paper", "title": "早期胃がん検出AI", "doi": "https://doi.org/10.1234/jsp.2025.001",
         "citation": CITED},
        {"kind": "patent", "title": "病変検出方法", "number": "特願2025-012345", "citation": "Dataset: COLON."},
        {"kind": "", "title": "", "doi": "", "number": ""},
    ]
    usage_report_submit(report=report, by=setup["co"], outputs=good, **ANNUAL_FIELDS)
    report.refresh_from_db()
    assert report.status == "submitted"
    assert report.submitted_by == setup["co"]
    assert report.outputs == [
        {"kind": "paper", "title": "早期胃がん検出AI", "doi": "10.1234/jsp.2025.001", "number": "",
         "citation": CITED},
        {"kind": "patent", "title": "病変検出方法", "doi": "", "number": "特願2025-012345",
         "citation": "Dataset: COLON."},
    ]


def test_deletion_certificate_is_checked_by_content(setup):
    end = _end(setup)
    fields = ANNUAL_FIELDS | {"results_summary": "感度90%", "deletion_date": timezone.localdate(),
                              "deletion_method": "暗号化ディスクを消去した。"}
    fake = SimpleUploadedFile("certificate.pdf", b"this is not a pdf", content_type="application/pdf")
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=end, by=setup["pi"], deletion_certificate=fake, **fields)
    assert list(excinfo.value.message_dict) == ["deletion_certificate"]
    future = fields | {"deletion_date": timezone.localdate() + timedelta(days=1)}
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=end, by=setup["pi"],
                            deletion_certificate=SimpleUploadedFile("c.pdf", PDF_BYTES), **future)
    assert list(excinfo.value.message_dict) == ["deletion_date"]
    end.refresh_from_db()
    assert end.status == "due" and not end.deletion_certificate
    usage_report_submit(report=end, by=setup["pi"],
                        deletion_certificate=SimpleUploadedFile("c.png", PNG_BYTES), **fields)
    end.refresh_from_db()
    assert end.status == "submitted"
    assert end.deletion_certificate_sha256 == hashlib.sha256(PNG_BYTES).hexdigest()
    with end.deletion_certificate.open("rb") as handle:
        assert handle.read() == PNG_BYTES


def test_only_a_named_user_submits(setup, outsider, steward):
    report = _annual(setup)
    for user in (outsider, steward):
        with pytest.raises(PermissionDenied):
            usage_report_submit(report=report, by=user, **ANNUAL_FIELDS)
    report.refresh_from_db()
    assert report.status == "due" and report.submitted_by is None


def test_a_report_is_submitted_once(setup):
    report = _annual(setup)
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    with pytest.raises(ValidationError):
        usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS | {"progress": "別"})
    report.refresh_from_db()
    assert report.progress == "300症例を解析した。"


# --- Acceptance -----------------------------------------------------------------------------------


def test_steward_accepts_an_annual_report(setup, steward, outsider, society_admin):
    report = _annual(setup)
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    other_steward = UserFactory()
    SocietyMembershipFactory(user=other_steward, society=SocietyFactory(), role="steward")
    for user in (outsider, setup["pi"], other_steward):
        with pytest.raises(PermissionDenied):
            usage_report_accept(report=report, by=user)
    report.refresh_from_db()
    assert report.status == "submitted"
    _confirm(setup, report)
    usage_report_accept(report=report, by=steward)
    report.refresh_from_db()
    assert report.status == "accepted"
    grant = setup["grant"]
    grant.refresh_from_db()
    assert grant.status == "active"
    with pytest.raises(ValidationError):
        usage_report_accept(report=report, by=society_admin)


def test_accepting_the_end_of_use_report_ends_the_grant_closes_the_request_and_fixes_retention(setup, steward):
    end = _end(setup)
    usage_report_submit(
        report=end, by=setup["pi"], results_summary="感度90%", deletion_date=timezone.localdate(),
        deletion_method="暗号化ディスクを消去した。", deletion_certificate=SimpleUploadedFile("c.pdf", PDF_BYTES),
        **ANNUAL_FIELDS,
    )
    _confirm(setup, end)
    usage_report_accept(report=end, by=steward)
    grant = setup["grant"]
    grant.refresh_from_db()
    assert grant.status == Grant.Status.ENDED
    setup["request"].refresh_from_db()
    assert setup["request"].status == RequestStatus.CLOSED
    record = grant.provision_record
    record.refresh_from_db()
    assert record.recipient_keep_until == add_years(timezone.localdate(), 5)
    event = AuditEvent.objects.get(action="access.usage_report_accepted")
    assert event.details["recipient_keep_until"] == record.recipient_keep_until.isoformat()


# --- Enforcement ----------------------------------------------------------------------------------


def test_thresholds_are_the_nbdc_days():
    assert (reminder_every_days(), restrict_after_days(), institution_after_days()) == (30, 180, 180)


def test_thresholds_come_from_the_settings(settings):
    settings.PORTAL_USAGE_REPORT_REMINDER_DAYS = 10
    settings.PORTAL_USAGE_REPORT_RESTRICT_DAYS = 45
    settings.PORTAL_USAGE_REPORT_HEAD_DAYS = 60
    assert (reminder_every_days(), restrict_after_days(), institution_after_days()) == (10, 45, 60)


def test_enforcement_timeline(setup, steward, mailoutbox, django_capture_on_commit_callbacks):
    report = _annual(setup)
    grant = setup["grant"]
    due = report.due_on

    def run(days: int) -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return usage_reports_enforce(today=due + timedelta(days=days))

    assert run(29) == {"reminded": 0, "restricted": 0, "institution_notified": 0}
    assert mailoutbox == []
    assert run(30) == {"reminded": 1, "restricted": 0, "institution_notified": 0}
    report.refresh_from_db()
    assert report.reminders_sent == 1 and report.last_reminder_at is not None
    # One message per person (each has its own inbox copy and delivery record).
    assert sorted(address for message in mailoutbox for address in message.to) == [
        "co@company.example.co.jp", "pi@company.example.co.jp"]
    assert all(len(message.to) == 1 for message in mailoutbox)
    assert run(30) == {"reminded": 0, "restricted": 0, "institution_notified": 0}  # idempotent
    assert run(59) == {"reminded": 0, "restricted": 0, "institution_notified": 0}
    assert run(60) == {"reminded": 1, "restricted": 0, "institution_notified": 0}
    # Not restricted at 90 days any more: the NBDC rules restrict at 180.
    assert run(90) == {"reminded": 1, "restricted": 0, "institution_notified": 0}
    assert run(120) == {"reminded": 1, "restricted": 0, "institution_notified": 0}
    assert run(150) == {"reminded": 1, "restricted": 0, "institution_notified": 0}
    assert run(179) == {"reminded": 0, "restricted": 0, "institution_notified": 0}
    grant.refresh_from_db()
    assert grant.restricted is False
    report.refresh_from_db()
    assert report.institution_notified_at is None
    mailoutbox.clear()
    assert run(180) == {"reminded": 1, "restricted": 1, "institution_notified": 1}
    grant.refresh_from_db()
    assert grant.restricted is True
    assert any(steward.email in message.to for message in mailoutbox)
    report.refresh_from_db()
    assert report.reminders_sent == 6
    assert report.institution_notified_at is not None
    assert any(message.to == ["head@company.example.co.jp"] for message in mailoutbox)
    assert run(181) == {"reminded": 0, "restricted": 0, "institution_notified": 0}
    actions = list(AuditEvent.objects.filter(action__in=[
        "access.usage_report_reminded", "access.grant_restricted", "access.usage_report_institution_notified",
    ]).values_list("action", flat=True).order_by("id"))
    assert actions.count("access.usage_report_reminded") == 6
    assert actions.count("access.grant_restricted") == 1
    assert actions.count("access.usage_report_institution_notified") == 1


def test_submitting_the_report_lifts_the_restriction(setup, django_capture_on_commit_callbacks):
    report = _annual(setup)
    usage_reports_enforce(today=report.due_on + timedelta(days=restrict_after_days()))
    grant = setup["grant"]
    grant.refresh_from_db()
    assert grant.restricted is True
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    grant.refresh_from_db()
    assert grant.restricted is False
    assert AuditEvent.objects.filter(action="access.grant_unrestricted", target_id=str(grant.pk)).exists()
    # Nothing owed any more: a later run restricts nothing.
    usage_reports_enforce(today=report.due_on + timedelta(days=restrict_after_days() + 1))
    grant.refresh_from_db()
    assert grant.restricted is False


def test_ended_grants_are_not_enforced(setup):
    report = _annual(setup)
    Grant.objects.filter(pk=setup["grant"].pk).update(status=Grant.Status.ENDED)
    assert usage_reports_enforce(today=report.due_on + timedelta(days=200)) == {
        "reminded": 0, "restricted": 0, "institution_notified": 0}


def test_a_revoked_grant_owes_only_what_fell_due_while_in_force(setup):
    grant = setup["grant"]
    first, second = UsageReport.objects.filter(grant=grant, kind="annual").order_by("due_on")
    Grant.objects.filter(pk=grant.pk).update(
        status=Grant.Status.REVOKED, revoked_at=timezone.now(), ended_at=timezone.make_aware(
            datetime.combine(first.due_on + timedelta(days=10), time.min)))
    counts = usage_reports_enforce(today=second.due_on + timedelta(days=30))
    assert counts["reminded"] == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.reminders_sent, second.reminders_sent) == (13, 0)


def test_beat_task_runs_the_enforcement(setup):
    assert enforce_usage_reports_task.name == "access.enforce_usage_reports"
    assert enforce_usage_reports_task() == {"reminded": 0, "restricted": 0, "institution_notified": 0}


# --- Pages ----------------------------------------------------------------------------------------


def test_applicant_lists_and_submits_a_report_through_the_pages(client, setup):
    client.cookies["django_language"] = "en"  # the form errors are asserted in English
    client.force_login(setup["pi"])
    response = client.get(reverse("access:report_list"))
    assert response.status_code == 200
    assert len(response.context["reports"]) == 3
    report = _annual(setup)
    url = reverse("access:report_submit", args=[report.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"progress": "", "output_1_kind": "paper", "output_1_title": "論文",
                                 "output_1_doi": "bad", "output_1_citation": CITED})
    assert response.status_code == 200
    content = response.content.decode()
    assert "Describe the progress of the research." in content
    assert "is not a DOI" in content
    report.refresh_from_db()
    assert report.status == "due"
    data = dict(ANNUAL_FIELDS) | {"output_1_kind": "paper", "output_1_title": "論文", "output_1_doi": "10.1000/xyz",
                                  "output_1_citation": CITED}
    response = client.post(url, data)
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.status == "submitted"
    assert report.outputs == [{"kind": "paper", "title": "論文", "doi": "10.1000/xyz", "number": "",
                               "citation": CITED}]
    assert client.get(reverse("access:report_detail", args=[report.pk])).status_code == 200


def test_end_of_use_form_takes_the_certificate(client, setup):
    client.force_login(setup["pi"])
    end = _end(setup)
    data = dict(ANNUAL_FIELDS) | {
        "results_summary": "感度90%", "deletion_date": timezone.localdate().isoformat(),
        "deletion_method": "消去した。", "deletion_certificate": SimpleUploadedFile("c.pdf", PDF_BYTES),
    }
    response = client.post(reverse("access:report_submit", args=[end.pk]), data)
    assert response.status_code == 302
    end.refresh_from_db()
    assert end.deletion_certificate_sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    download = client.get(reverse("access:report_certificate", args=[end.pk]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF_BYTES
    download.close()


def test_report_pages_refuse_others(client, setup, outsider, steward):
    report = _annual(setup)
    client.force_login(outsider)
    for name in ("report_detail", "report_submit", "report_certificate"):
        assert client.get(reverse(f"access:{name}", args=[report.pk])).status_code == 404
    assert client.post(reverse("access:report_accept", args=[report.pk])).status_code == 404
    assert client.get(reverse("access:report_review")).status_code == 403
    client.force_login(steward)
    assert client.get(reverse("access:report_detail", args=[report.pk])).status_code == 200
    assert client.get(reverse("access:report_submit", args=[report.pk])).status_code == 403
    client.force_login(setup["pi"])
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    assert client.post(reverse("access:report_accept", args=[report.pk])).status_code == 403
    report.refresh_from_db()
    assert report.status == "submitted"


def test_steward_reviews_and_accepts_through_the_pages(client, setup, steward):
    report = _annual(setup)
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    _confirm(setup, report)
    client.force_login(steward)
    response = client.get(reverse("access:report_review"))
    assert [r.pk for r in response.context["reports"]] == [report.pk]
    response = client.post(reverse("access:report_accept", args=[report.pk]))
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.status == "accepted"


def test_report_pages_run_a_fixed_number_of_queries(client, setup, society, steward, django_assert_num_queries):
    client.force_login(steward)
    report = _annual(setup)
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    client.get(reverse("access:report_review"))
    with django_assert_num_queries(8) as review_first:
        client.get(reverse("access:report_review"))
    client.force_login(setup["pi"])
    client.get(reverse("access:report_list"))
    with django_assert_num_queries(6) as list_first:
        client.get(reverse("access:report_list"))
    # More grants, reports and submissions: the same number of queries.
    for _ in range(3):
        _request, grant = granted_request([setup["pi"]], [setup["release"]], society=society, days=800)
        usage_reports_schedule(grant=grant)
        usage_report_submit(report=_annual({"grant": grant}), by=setup["pi"], **ANNUAL_FIELDS)
    with django_assert_num_queries(len(list_first.captured_queries)):
        response = client.get(reverse("access:report_list"))
    assert len(response.context["reports"]) == 12
    client.force_login(steward)
    with django_assert_num_queries(len(review_first.captured_queries)):
        response = client.get(reverse("access:report_review"))
    assert len(response.context["reports"]) == 4


# --- The society's overview -----------------------------------------------------------------------


def test_overview_shows_grants_overdue_reports_and_downloads(client, setup, society, steward):
    grant = setup["grant"]
    report = _annual(setup)
    UsageReport.objects.filter(pk=report.pk).update(due_on=timezone.localdate() - timedelta(days=95))
    Grant.objects.filter(pk=grant.pk).update(restricted=True)
    file = setup["release"].files.first()
    Download.objects.create(grant=grant, user=setup["pi"], file=file, via="local")
    client.force_login(steward)
    response = client.get(reverse("access:society_overview", args=[society.slug]))
    assert response.status_code == 200
    grants = response.context["grants"]
    assert [g.pk for g in grants] == [grant.pk]
    assert [r.pk for r in grants[0].overdue_reports] == [report.pk]
    assert grants[0].overdue_reports[0].days_overdue == 95
    assert grants[0].download_count == 1
    assert response.context["counts"] == {"active": 0, "paused": 0, "restricted": 1, "overdue": 1}
    assert [d.file_id for d in response.context["downloads"]] == [file.pk]
    content = response.content.decode()
    assert "企業 研究者" in content and str(setup["release"]) in content
    assert client.get(reverse("access:society_overview_index")).status_code == 302


def test_overview_refuses_others(client, setup, society, outsider):
    member = UserFactory()
    SocietyMembershipFactory(user=member, society=society, role="member")
    client.force_login(outsider)
    assert client.get(reverse("access:society_overview", args=[society.slug])).status_code == 404
    assert client.get(reverse("access:society_overview_index")).status_code == 403
    client.force_login(member)
    assert client.get(reverse("access:society_overview", args=[society.slug])).status_code == 403
    other_admin = UserFactory()
    SocietyMembershipFactory(user=other_admin, society=SocietyFactory(), role="admin")
    give_totp(other_admin)
    client.force_login(other_admin)
    assert client.get(reverse("access:society_overview", args=[society.slug])).status_code == 404


def test_overview_runs_a_fixed_number_of_queries(client, setup, society, society_admin, django_assert_num_queries):
    client.force_login(society_admin)
    url = reverse("access:society_overview", args=[society.slug])
    client.get(url)
    with django_assert_num_queries(14) as first:
        client.get(url)
    file = setup["release"].files.first()
    for _ in range(3):
        user = UserFactory()
        _request, grant = granted_request([user, UserFactory()], [setup["release"]], society=society, days=800)
        usage_reports_schedule(grant=grant)
        UsageReport.objects.filter(grant=grant, kind="annual").update(due_on=timezone.localdate() - timedelta(days=3))
        Download.objects.create(grant=grant, user=user, file=file, via="local")
    with django_assert_num_queries(len(first.captured_queries)):
        response = client.get(url)
    assert len(response.context["grants"]) == 4
    assert len(response.context["downloads"]) == 3


def test_annual_report_reattests_the_security_self_assessment_and_the_grant_resumes(setup, society):
    from portal.access.models import Grant, SecurityAnswer
    from portal.access.security_items import SECURITY_ITEMS
    from portal.access.services.grants import grant_refresh
    from tests.factories.datasets import published_notice

    dataset = setup["release"].dataset
    dataset.status = "published"
    dataset.published_at = timezone.now()
    dataset.save(update_fields=["status", "published_at"])
    published_notice(dataset)
    long_ago = timezone.now() - timedelta(days=400)
    SecurityAnswer.objects.bulk_create([
        SecurityAnswer(access_request=setup["request"], item=item.key, status="done", evidence="規程")
        for item in SECURITY_ITEMS
    ])
    SecurityAnswer.objects.filter(access_request=setup["request"]).update(answered_at=long_ago)
    grant = grant_refresh(grant=setup["grant"])
    assert (grant.status, grant.paused_reasons) == (
        "paused", ["The security self-assessment was not re-attested within the last year."])

    usage_report_submit(report=_annual(setup), by=setup["pi"], **ANNUAL_FIELDS)

    grant = Grant.objects.get(pk=grant.pk)
    assert (grant.status, grant.paused_reasons) == ("active", [])
    answered = set(SecurityAnswer.objects.filter(access_request=setup["request"]).values_list("answered_at", flat=True))
    assert all(when > timezone.now() - timedelta(minutes=1) for when in answered)
    assert AuditEvent.objects.filter(action="access.security_reattested", target_id=str(grant.pk)).exists()


def test_schedule_after_an_extension_moves_the_end_of_use_report(setup):
    grant = setup["grant"]
    grant.expires_at += timedelta(days=400)
    grant.save(update_fields=["expires_at"])

    usage_reports_schedule(grant=grant)

    ends = list(UsageReport.objects.filter(grant=grant, kind="end_of_use").values_list("due_on", flat=True))
    assert ends == [timezone.localdate(grant.expires_at)]
    annual = list(UsageReport.objects.filter(grant=grant, kind="annual").order_by("due_on"))
    assert [report.due_on.year - timezone.localdate(grant.starts_at).year for report in annual] == [1, 2, 3]


# --- a8: citation, results registration, what is kept, confirmations, the stop report -------------

END_FIELDS = ANNUAL_FIELDS | {"results_summary": "感度90%", "deletion_method": "暗号化ディスクを消去した。"}


def _end_fields(**extra):  # type: ignore[no-untyped-def]
    return END_FIELDS | {"deletion_date": timezone.localdate(),
                         "deletion_certificate": SimpleUploadedFile("c.pdf", PDF_BYTES)} | extra


def test_output_not_citing_the_dataset_is_refused_and_changes_nothing(setup):
    report = _annual(setup)
    outputs = [{"kind": "paper", "title": "早期胃がん検出AI", "doi": "10.1234/x", "citation": "謝辞なし"},
               {"kind": "presentation", "title": "学会発表"}]
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=report, by=setup["pi"], outputs=outputs, **ANNUAL_FIELDS)
    example = f"{setup['release'].dataset.society.name_ja}「{setup['release'].dataset.title_ja}」（colon）"
    assert excinfo.value.message_dict == {"outputs": [
        f"Output {n}: it does not cite the dataset. Give the citation as printed in the output, naming the "
        f"dataset's accession, for example “{example}”." for n in (1, 2)]}
    report.refresh_from_db()
    assert (report.status, report.outputs, report.submitted_at) == ("due", [], None)
    assert not AuditEvent.objects.filter(action="access.usage_report_submitted").exists()


@pytest.mark.parametrize("number", ["jRCT1234567890", "jRCTs031180001", "UMIN000012345", ""])
def test_results_registration_number_is_stored(setup, number):
    end = _end(setup)
    usage_report_submit(report=end, by=setup["pi"], **_end_fields(registry_number=number))
    end.refresh_from_db()
    assert (end.status, end.registry_number) == ("submitted", number)


@pytest.mark.parametrize("number", ["jRCT123", "UMIN12345", "NCT01234567", "umin000012345"])
def test_bad_results_registration_number_is_refused_and_changes_nothing(setup, number):
    end = _end(setup)
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=end, by=setup["pi"], **_end_fields(registry_number=number))
    assert excinfo.value.message_dict == {"registry_number": [
        f"“{number}” is not a jRCT or UMIN-CTR number (jRCT1234567890, jRCTs031180001 or UMIN000012345)."]}
    end.refresh_from_db()
    assert (end.status, end.registry_number, end.deletion_certificate.name) == ("due", "", "")


def test_what_is_kept_after_the_end_needs_its_reason_and_date(setup):
    end = _end(setup)
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=end, by=setup["pi"], **_end_fields(retained_items="学習済みモデル"))
    assert excinfo.value.message_dict == {"retention_reason": ["Say why these are kept after the end."],
                                          "retained_until": ["Say until when they are kept."]}
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=end, by=setup["pi"], **_end_fields(retention_reason="論文の再現性"))
    assert excinfo.value.message_dict == {"retained_items": ["Name what is kept after the end."]}
    end.refresh_from_db()
    assert (end.status, end.retained_items) == ("due", "")
    until = timezone.localdate() + timedelta(days=3650)
    usage_report_submit(report=end, by=setup["pi"], **_end_fields(
        retained_items="学習済みモデル", retention_reason="論文の再現性の確保", retained_until=until))
    end.refresh_from_db()
    assert (end.retained_items, end.retention_reason, end.retained_until) == (
        "学習済みモデル", "論文の再現性の確保", until)


def test_acceptance_waits_for_the_pi_and_the_head(setup, steward):
    report = _annual(setup)
    usage_report_submit(report=report, by=setup["co"], **ANNUAL_FIELDS)
    with pytest.raises(ValidationError) as excinfo:
        usage_report_accept(report=report, by=steward)
    assert excinfo.value.messages == [
        "The report is accepted once the principal investigator and the head of the institution have both "
        "confirmed it."]
    usage_report_confirm(report=report, as_role="pi", by=setup["pi"])
    report.refresh_from_db()
    assert (report.status, report.pi_confirmed_by, report.head_confirmed_at) == ("submitted", setup["pi"], None)
    with pytest.raises(ValidationError):
        usage_report_accept(report=report, by=steward)
    usage_report_confirm(report=report, as_role="head", by=setup["head"])
    report.refresh_from_db()
    assert (report.status, report.head_confirmed_by) == ("confirmed", setup["head"])
    assert report.pi_confirmed_at is not None and report.head_confirmed_at is not None
    events = list(AuditEvent.objects.filter(action="access.usage_report_confirmed").order_by("id")
                  .values_list("details", flat=True))
    assert [(e["as"], e["complete"]) for e in events] == [("pi", False), ("head", True)]
    usage_report_accept(report=report, by=steward)
    report.refresh_from_db()
    assert report.status == "accepted"


def test_confirmation_refusals_change_nothing(setup, steward):
    report = _annual(setup)
    with pytest.raises(ValidationError):  # not submitted yet
        usage_report_confirm(report=report, as_role="pi", by=setup["pi"])
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    for user, role in ((setup["co"], "pi"), (setup["pi"], "head"), (steward, "head"), (setup["head"], "pi")):
        with pytest.raises(PermissionDenied):
            usage_report_confirm(report=report, as_role=role, by=user)
    with pytest.raises(ValidationError):
        usage_report_confirm(report=report, as_role="chair", by=setup["pi"])
    report.refresh_from_db()
    assert (report.status, report.pi_confirmed_at, report.head_confirmed_at) == ("submitted", None, None)
    usage_report_confirm(report=report, as_role="pi", by=setup["pi"])
    with pytest.raises(ValidationError) as excinfo:
        usage_report_confirm(report=report, as_role="pi", by=setup["pi"])
    assert excinfo.value.messages == ["The principal investigator has already confirmed this report."]
    assert AuditEvent.objects.filter(action="access.usage_report_confirmed").count() == 1


def test_confirmed_needs_both_confirmations_in_the_database(setup):
    from django.db import IntegrityError, transaction

    report = _annual(setup)
    usage_report_submit(report=report, by=setup["pi"], **ANNUAL_FIELDS)
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageReport.objects.filter(pk=report.pk).update(status="confirmed")
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageReport.objects.filter(pk=report.pk).update(pi_confirmed_at=timezone.now())


def test_stop_report_stands_for_the_end_of_use_report(setup, steward, outsider):
    grant = setup["grant"]
    with pytest.raises(PermissionDenied):
        usage_report_stop(grant=grant, reason="資金終了", by=outsider)
    with pytest.raises(ValidationError) as excinfo:
        usage_report_stop(grant=grant, reason=" ", by=setup["pi"])
    assert excinfo.value.message_dict == {"stop_reason": ["Say why the research stopped."]}
    assert not UsageReport.objects.filter(kind="stop").exists()
    stop = usage_report_stop(grant=grant, reason="共同研究契約の解除により中止", by=setup["co"])
    assert (stop.kind, stop.status, stop.due_on, stop.stop_reason) == (
        "stop", "due", timezone.localdate(), "共同研究契約の解除により中止")
    with pytest.raises(ValidationError):
        usage_report_stop(grant=grant, reason="二度目", by=setup["pi"])
    assert UsageReport.objects.filter(kind="stop").count() == 1
    # Written like the end-of-use report: results so far, deletion and its certificate.
    with pytest.raises(ValidationError) as excinfo:
        usage_report_submit(report=stop, by=setup["pi"], **ANNUAL_FIELDS)
    assert sorted(excinfo.value.message_dict) == [
        "deletion_certificate", "deletion_date", "deletion_method", "results_summary"]
    usage_report_submit(report=stop, by=setup["pi"], **_end_fields(registry_number="UMIN000012345"))
    _confirm(setup, stop)
    usage_report_accept(report=stop, by=steward)
    grant.refresh_from_db()
    setup["request"].refresh_from_db()
    assert grant.status == Grant.Status.ENDED
    assert setup["request"].status == RequestStatus.CLOSED
    # The end-of-use report and the annual reports not yet due are no longer owed.
    assert list(UsageReport.objects.filter(grant=grant).values_list("kind", "status")) == [("stop", "accepted")]
    event = AuditEvent.objects.get(action="access.usage_report_accepted")
    assert len(event.details["cancelled_reports"]) == 3
    assert grant.provision_record.recipient_keep_until == add_years(timezone.localdate(), 5)


def test_overdue_days_follow_the_settings(setup, settings):
    settings.PORTAL_USAGE_REPORT_RESTRICT_DAYS = 45
    settings.PORTAL_USAGE_REPORT_HEAD_DAYS = 200
    report = _annual(setup)
    assert usage_reports_enforce(today=report.due_on + timedelta(days=44)) == {
        "reminded": 1, "restricted": 0, "institution_notified": 0}
    assert usage_reports_enforce(today=report.due_on + timedelta(days=45)) == {
        "reminded": 0, "restricted": 1, "institution_notified": 0}
    assert usage_reports_enforce(today=report.due_on + timedelta(days=199))["institution_notified"] == 0
    assert usage_reports_enforce(today=report.due_on + timedelta(days=200))["institution_notified"] == 1


def test_head_and_pi_confirm_through_the_pages(client, setup, steward):
    report = _annual(setup)
    usage_report_submit(report=report, by=setup["co"], **ANNUAL_FIELDS)
    client.cookies["django_language"] = "ja"
    client.force_login(setup["head"])
    listing = client.get(reverse("access:report_list"))
    assert report.pk in [r.pk for r in listing.context["reports"]]
    page = client.get(reverse("access:report_detail", args=[report.pk]))
    assert page.context["confirm_as"] == ["head"]
    assert "機関の長として確認する" in page.content.decode()
    response = client.post(reverse("access:report_confirm", args=[report.pk]), {"as_role": "head"})
    assert response.status_code == 302
    client.force_login(setup["co"])
    assert client.post(reverse("access:report_confirm", args=[report.pk]), {"as_role": "pi"}).status_code == 403
    client.force_login(setup["pi"])
    assert client.get(reverse("access:report_detail", args=[report.pk])).context["confirm_as"] == ["pi"]
    client.post(reverse("access:report_confirm", args=[report.pk]), {"as_role": "pi"})
    report.refresh_from_db()
    assert (report.status, report.pi_confirmed_by, report.head_confirmed_by) == (
        "confirmed", setup["pi"], setup["head"])
    body = client.get(reverse("access:report_detail", args=[report.pk])).content.decode()
    assert "研究代表者の確認" in body and "機関の長の確認" in body
    client.force_login(steward)
    assert client.get(reverse("access:report_detail", args=[report.pk])).context["may_accept"] is True


def test_stop_report_through_the_pages(client, setup, outsider):
    grant = setup["grant"]
    client.cookies["django_language"] = "ja"
    client.force_login(outsider)
    assert client.get(reverse("access:report_stop", args=[grant.pk])).status_code == 404
    client.force_login(setup["pi"])
    assert "中止報告" in client.get(reverse("access:grant_detail", args=[grant.pk])).content.decode()
    response = client.post(reverse("access:report_stop", args=[grant.pk]), {"reason": ""})
    assert response.status_code == 200
    assert not UsageReport.objects.filter(kind="stop").exists()
    response = client.post(reverse("access:report_stop", args=[grant.pk]), {"reason": "資金の終了"})
    stop = UsageReport.objects.get(kind="stop")
    assert response["Location"] == reverse("access:report_submit", args=[stop.pk])
    form = client.get(response["Location"])
    body = form.content.decode()
    assert "中止の理由" in body and "結果の登録（jRCT・UMIN-CTR 番号）" in body and "保管継続するもの" in body
    assert "（colon）" in body  # the dataset's citation to copy into the outputs
    data = END_FIELDS | {
        "stop_reason": "資金の終了", "deletion_date": timezone.localdate().isoformat(),
        "deletion_certificate": SimpleUploadedFile("c.pdf", PDF_BYTES), "registry_number": "jRCT1234567890",
        "output_1_kind": "paper", "output_1_title": "中間解析", "output_1_citation": CITED,
    }
    response = client.post(reverse("access:report_submit", args=[stop.pk]), data)
    assert response.status_code == 302
    stop.refresh_from_db()
    assert (stop.status, stop.registry_number, stop.stop_reason) == ("submitted", "jRCT1234567890", "資金の終了")
