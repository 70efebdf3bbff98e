"""The anonymisation pages: who sees what, creating a job through the form, the progress partial
polled by htmx, the results table, building a release, and constant query counts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.datasets.models import DatasetRelease
from portal.deid import services
from portal.deid.models import DeidFileResult, DeidJob
from portal.lib.synthetic import synthetic_file
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.datasets import DatasetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jges-endo", modality="endoscopy")


@pytest.fixture(autouse=True)
def import_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "import"
    root.mkdir()
    settings.PORTAL_DEID_IMPORT_ROOT = str(root)
    return root


@pytest.fixture
def admin_client(client, society_admin):  # type: ignore[no-untyped-def]
    client.force_login(society_admin)
    return client


def _jpeg(seed: int) -> bytes:
    return synthetic_file("endoscopy", seed=seed, study_date=date(2024, 4, 1), subject="X")[0]


def _job(society, dataset, by, *, files: int = 2, start: bool = True) -> DeidJob:  # type: ignore[no-untyped-def]
    from django.conf import settings

    folder = f"batch-{DeidJob.objects.count()}"
    for n in range(files):
        path = Path(settings.PORTAL_DEID_IMPORT_ROOT) / folder / f"P-{n:04d}" / f"{n}.jpg"
        path.parent.mkdir(parents=True)
        path.write_bytes(_jpeg(n))
    job = services.deid_job_create(
        society=society, dataset=dataset, source_kind="server_folder", source=folder, institution_code="1310001",
        by=by,
    )
    if start:
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.deid_job_start(job=job, by=by)
    job.refresh_from_db()
    return job


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("deid:list"))
    assert response.status_code == 302


def test_people_without_a_society_get_403_on_the_list(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("deid:list")).status_code == 403


def test_outsider_gets_404_and_member_403_on_a_job(client, storage_root, society, dataset, society_admin, steward):
    job = _job(society, dataset, society_admin)
    other_admin = UserFactory()
    give_totp(other_admin)
    SocietyMembershipFactory(society=SocietyFactory(), user=other_admin, role="admin")
    client.force_login(other_admin)
    assert client.get(reverse("deid:detail", args=[job.pk])).status_code == 404
    assert client.post(reverse("deid:cancel", args=[job.pk])).status_code == 404
    client.force_login(steward)
    assert client.get(reverse("deid:detail", args=[job.pk])).status_code == 403
    assert client.post(reverse("deid:release", args=[job.pk])).status_code == 403
    assert DatasetRelease.objects.count() == 0


def test_list_shows_the_societies_jobs(admin_client, storage_root, society, dataset, society_admin):
    job = _job(society, dataset, society_admin)
    response = admin_client.get(reverse("deid:list"))
    assert response.status_code == 200
    assert list(response.context["jobs"]) == [job]
    assert f'data-job="{job.pk}"' in response.content.decode()


def test_create_form_uploads_files_and_starts_the_job(admin_client, storage_root, society, dataset):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = admin_client.post(reverse("deid:create"), {
            "society": society.pk, "dataset": dataset.pk, "source_kind": "upload", "options": ["LMD", "PAT"],
            "institution_code": "1310001", "uploads": [SimpleUploadedFile("a.jpg", _jpeg(1)),
                                                       SimpleUploadedFile("b.jpg", _jpeg(2))],
        })
    job = DeidJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("deid:detail", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.options) == ("finished", 2, 2, ["LMD", "PAT"])


def test_create_form_shows_service_errors_and_keeps_nothing(admin_client, storage_root, society, dataset):
    admin_client.cookies["django_language"] = "en"  # the error is asserted in English
    response = admin_client.post(reverse("deid:create"), {
        "society": society.pk, "source_kind": "upload", "institution_code": "1310001",
    })
    assert response.status_code == 200
    assert response.context["form"].errors["uploads"] == ["Choose at least one file."]
    assert DeidJob.objects.count() == 0


def test_create_form_lists_the_options_as_checkboxes(admin_client):
    response = admin_client.get(reverse("deid:create"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'type="checkbox" name="options" value="LMD"' in body
    assert "<script>" not in body and "style=" not in body


def test_progress_partial_polls_while_running_and_stops_after(admin_client, storage_root, monkeypatch, society,
                                                              dataset, society_admin):
    from portal.deid.tasks import process_chunk

    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: None)
    job = _job(society, dataset, society_admin)
    body = admin_client.get(reverse("deid:progress", args=[job.pk])).content.decode()
    assert f'hx-get="{reverse("deid:progress", args=[job.pk])}"' in body
    assert 'hx-trigger="every 2s"' in body
    process_chunk(job.pk, ["P-0000/0.jpg", "P-0001/1.jpg"])
    body = admin_client.get(reverse("deid:progress", args=[job.pk])).content.decode()
    assert "hx-get" not in body
    assert 'value="100"' in body


def test_detail_shows_results_and_builds_a_release(admin_client, storage_root, society, dataset, society_admin):
    job = _job(society, dataset, society_admin)
    response = admin_client.get(reverse("deid:detail", args=[job.pk]))
    assert response.status_code == 200
    assert [r.source_path for r in response.context["results"]] == ["P-0000/0.jpg", "P-0001/1.jpg"]
    assert 'data-testid="deid-report"' in response.content.decode()
    response = admin_client.post(reverse("deid:release", args=[job.pk]), {"notes_ja": "初版"})
    release = DatasetRelease.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:release_detail", args=[release.pk])
    assert release.source_reference == f"deid-job-{job.pk}"


def test_cancel_through_the_page(admin_client, storage_root, monkeypatch, society, dataset, society_admin):
    from portal.deid.tasks import process_chunk

    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: None)
    job = _job(society, dataset, society_admin)
    response = admin_client.post(reverse("deid:cancel", args=[job.pk]))
    assert response.status_code == 302
    assert DeidJob.objects.get(pk=job.pk).status == "cancelled"
    assert AuditEvent.objects.filter(action="deid.job_cancel").count() == 1


def test_list_query_count_is_constant(admin_client, storage_root, society, dataset, society_admin,
                                      django_assert_num_queries):
    _job(society, dataset, society_admin, files=1, start=False)
    url = reverse("deid:list")
    admin_client.get(url)
    with django_assert_num_queries(LIST_QUERIES):
        assert admin_client.get(url).status_code == 200
    for _ in range(4):
        _job(society, DatasetFactory(society=society), society_admin, files=1, start=False)
    with django_assert_num_queries(LIST_QUERIES):
        assert admin_client.get(url).status_code == 200


def test_results_page_query_count_is_constant(admin_client, storage_root, society, dataset, society_admin,
                                              django_assert_num_queries):
    small = _job(society, dataset, society_admin, files=1)
    large = _job(society, dataset, society_admin, files=1)
    DeidFileResult.objects.bulk_create(
        DeidFileResult(job=large, source_path=f"extra/{n:03d}.jpg", status="failed", reason="x") for n in range(120)
    )
    for job in (small, large):
        with django_assert_num_queries(DETAIL_QUERIES):
            assert admin_client.get(reverse("deid:detail", args=[job.pk])).status_code == 200


def test_api_lists_only_the_callers_jobs(client, storage_root, society, dataset, society_admin, outsider):
    job = _job(society, dataset, society_admin, files=1, start=False)
    client.force_login(society_admin)
    body = client.get("/api/v1/deid/jobs/").json()
    assert [item["id"] for item in body["results"]] == [job.pk]
    client.force_login(outsider)
    assert client.get("/api/v1/deid/jobs/").json()["results"] == []
    assert client.get(f"/api/v1/deid/jobs/{job.pk}/").status_code == 404


LIST_QUERIES = 9
DETAIL_QUERIES = 10
