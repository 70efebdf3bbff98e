"""Review of held-back DICOM objects: an object with burned-in text that no rule covers is held back;
a society admin either declares it free of burned-in text (it is processed again and becomes
releasable) or keeps it held back. Refused for non-admins and once the job has a release."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.test import TestCase
from django.urls import reverse

from portal.anonymiser.dicom import Profile, deidentify_dicom
from portal.audit.models import AuditEvent
from portal.deid import services
from portal.deid.models import DeidFileResult, DeidJob
from tests.anonymiser.dicom_helpers import KEYS, base_dataset, to_bytes
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.datasets import DatasetFactory

pytestmark = pytest.mark.django_db

FOLDER = "hospital-a/2024"
HELD = "P-0002/burned.dcm"


def _dicom(path: Path, *, patient_id: str, modality: str, burned_in: str | None) -> None:
    ds = base_dataset(patient_id=patient_id)
    ds.Modality = modality
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_bytes(ds))


@pytest.fixture
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def import_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "import"
    settings.PORTAL_DEID_IMPORT_ROOT = str(root)
    _dicom(root / FOLDER / "P-0001" / "ct.dcm", patient_id="P-0001", modality="CT", burned_in=None)
    # Secondary capture ("OT") with burned-in text declared: no rule covers it, so it is held back.
    _dicom(root / FOLDER / HELD, patient_id="P-0002", modality="OT", burned_in="YES")
    return root


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-review", modality="ct")


@pytest.fixture
def job(storage_root, import_root, society, dataset, society_admin) -> DeidJob:  # type: ignore[no-untyped-def]
    created = services.deid_job_create(
        society=society, dataset=dataset, by=society_admin, source_kind="server_folder", source=FOLDER,
        options=["LMD"], institution_code="1310001",
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.deid_job_start(job=created, by=society_admin)
    created.refresh_from_db()
    return created


def _held(job: DeidJob) -> DeidFileResult:
    return job.results.get(source_path=HELD)


def _snapshot(job: DeidJob) -> tuple:  # type: ignore[type-arg]
    job.refresh_from_db()
    result = _held(job)
    return (job.held_back, job.report, result.status, result.storage_key, result.reviewed_by_id,
            result.reviewed_at, result.review_note, AuditEvent.objects.filter(action="deid.file_reviewed").count())


def _core(ds, **flags):  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    report = deidentify_dicom(io.BytesIO(to_bytes(ds)), out, profile=Profile(institution_code="I1"), keys=KEYS,
                              **flags)
    return report, out.getvalue()


def test_core_reviewed_flag_waives_only_the_hold_back():  # type: ignore[no-untyped-def]
    ds = base_dataset()
    ds.Modality, ds.BurnedInAnnotation = "OT", "YES"
    report, out = _core(ds)
    assert report.held_back and out == b""
    report, out = _core(ds, burned_in_reviewed=True)
    assert not report.held_back and report.changed and out
    reviewed = pydicom.dcmread(io.BytesIO(out))
    assert reviewed.PixelData == bytes(range(32))
    assert reviewed.BurnedInAnnotation == "NO"  # the reviewer found none
    # A rule that covers the object still masks it, reviewed or not.
    us = base_dataset()
    us.Modality, us.Manufacturer, us.BurnedInAnnotation = "US", "Vendor", "YES"
    us.Rows, us.Columns = 25, 4
    us.BitsAllocated, us.BitsStored, us.HighBit = 8, 8, 7
    us.PixelData = b"\x7f" * 100
    report, out = _core(us, burned_in_reviewed=True)
    assert report.actions["mask"] == 1
    assert pydicom.dcmread(io.BytesIO(out)).PixelData == bytes(8) + b"\x7f" * 92


def test_the_object_is_held_back_before_review(job):  # type: ignore[no-untyped-def]
    result = _held(job)
    assert (job.status, job.total, job.held_back, job.failed) == ("finished", 2, 1, 0)
    assert result.status == "held_back" and result.storage_key == ""
    assert "BurnedInAnnotation is YES" in result.reason
    assert job.report["files_by_status"] == {"changed": 1, "held_back": 1}


def test_no_burned_in_text_processes_the_file_again(job, society_admin):  # type: ignore[no-untyped-def]
    result = services.deid_file_review(
        result=_held(job), decision="no_burned_in_text", note="目視で確認、文字なし", by=society_admin
    )
    job.refresh_from_db()
    assert result.status == "changed" and result.storage_key
    assert default_storage.exists(result.storage_key)
    with default_storage.open(result.storage_key, "rb") as handle:
        out = pydicom.dcmread(handle)
    assert out.PatientID == result.subject_pseudonym != "P-0002"
    assert out.Modality == "OT"
    assert (result.reviewed_by, result.review_note) == (society_admin, "目視で確認、文字なし")
    assert result.reviewed_at is not None
    assert (job.held_back, job.failed, job.done, job.status) == (0, 0, 2, "finished")
    assert job.report["files_by_status"] == {"changed": 2}
    assert job.report["files_by_kind"] == {"dicom": 2}
    event = AuditEvent.objects.get(action="deid.file_reviewed")
    assert (event.actor_id, event.actor_email) == (society_admin.pk, society_admin.email)
    assert event.details["source_path"] == HELD
    assert event.details["note"] == "目視で確認、文字なし"
    assert event.details["decision"] == "no_burned_in_text"
    # The file is now part of a release built from the job.
    release = services.deid_job_build_release(job=job, by=society_admin)
    assert release.file_count == 2


def test_withhold_keeps_the_file_held_back_and_records_the_reviewer(job, society_admin):  # type: ignore[no-untyped-def]
    report_before = dict(job.report)
    result = services.deid_file_review(result=_held(job), decision="withhold", note="氏名あり", by=society_admin)
    job.refresh_from_db()
    assert (result.status, result.storage_key) == ("held_back", "")
    assert (result.reviewed_by, result.review_note) == (society_admin, "氏名あり")
    assert result.reviewed_at is not None
    assert job.held_back == 1
    assert job.report == report_before
    event = AuditEvent.objects.get(action="deid.file_reviewed")
    assert (event.details["decision"], event.details["source_path"]) == ("withhold", HELD)


def test_refused_for_non_admins_and_changes_nothing(job, steward, outsider):  # type: ignore[no-untyped-def]
    before = _snapshot(job)
    for user in (steward, outsider):
        with pytest.raises(PermissionDenied):
            services.deid_file_review(result=_held(job), decision="no_burned_in_text", note="", by=user)
    assert _snapshot(job) == before


def test_refused_after_a_release_and_changes_nothing(job, society_admin):  # type: ignore[no-untyped-def]
    release = services.deid_job_build_release(job=job, by=society_admin)
    assert release.file_count == 1
    before = _snapshot(job)
    with pytest.raises(ValidationError) as caught:
        services.deid_file_review(result=_held(job), decision="no_burned_in_text", note="", by=society_admin)
    assert caught.value.code == "released"
    assert _snapshot(job) == before


def test_refused_when_the_source_is_gone_and_changes_nothing(job, import_root, society_admin):  # type: ignore[no-untyped-def]
    (import_root / FOLDER / HELD).unlink()
    before = _snapshot(job)
    with pytest.raises(ValidationError) as caught:
        services.deid_file_review(result=_held(job), decision="no_burned_in_text", note="", by=society_admin)
    assert caught.value.code == "source_missing"
    assert HELD in caught.value.messages[0]
    assert _snapshot(job) == before


def test_refused_for_a_file_not_held_back_and_an_unknown_decision(job, society_admin):  # type: ignore[no-untyped-def]
    before = _snapshot(job)
    changed = job.results.get(status="changed")
    with pytest.raises(ValidationError):
        services.deid_file_review(result=changed, decision="withhold", note="", by=society_admin)
    with pytest.raises(ValidationError):
        services.deid_file_review(result=_held(job), decision="release", note="", by=society_admin)
    assert _snapshot(job) == before


def test_the_page_form_round_trip(client, job, society_admin):  # type: ignore[no-untyped-def]
    client.force_login(society_admin)
    result = _held(job)
    url = reverse("deid:file_review", args=[job.pk, result.pk])
    body = client.get(reverse("deid:detail", args=[job.pk])).content.decode()
    assert body.count('data-testid="deid-review"') == 1
    assert f'action="{url}"' in body
    assert 'value="no_burned_in_text"' in body and 'value="withhold"' in body
    response = client.post(url, {"decision": "no_burned_in_text", "note": "文字なし"})
    assert response.status_code == 302 and response["Location"] == reverse("deid:detail", args=[job.pk])
    result.refresh_from_db()
    job.refresh_from_db()
    assert (result.status, result.review_note, job.held_back) == ("changed", "文字なし", 0)
    body = client.get(reverse("deid:detail", args=[job.pk])).content.decode()
    assert 'data-testid="deid-review"' not in body
    assert "admin@jsp.example.jp" in body


def test_the_page_refuses_members_and_hides_from_outsiders(client, job, steward):  # type: ignore[no-untyped-def]
    before = _snapshot(job)
    url = reverse("deid:file_review", args=[job.pk, _held(job).pk])
    client.force_login(steward)
    assert client.post(url, {"decision": "no_burned_in_text"}).status_code == 403
    other_admin = UserFactory(email="other@example.jp")
    SocietyMembershipFactory(society=SocietyFactory(slug="other"), user=other_admin, role="admin")
    give_totp(other_admin)
    client.force_login(other_admin)
    assert client.post(url, {"decision": "no_burned_in_text"}).status_code == 404
    assert _snapshot(job) == before
