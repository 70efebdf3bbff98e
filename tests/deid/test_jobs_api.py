"""Anonymisation jobs through the API: build the release and cancel as on the job page."""

from __future__ import annotations

import pytest

from portal.datasets.models import DatasetRelease
from portal.deid.models import DeidJob
from tests.deid.test_views import _job, dataset, import_root, storage_root  # noqa: F401
from tests.support.api_caller import Caller

pytestmark = pytest.mark.django_db


def test_release_built_through_api(client, storage_root, society, dataset, society_admin):  # noqa: F811
    job = _job(society, dataset, society_admin)

    response = Caller(client, society_admin).post(f"/api/v1/deid/jobs/{job.pk}/release/", {"notes_ja": "初版"})

    assert response.status_code == 201, response.content
    release = DatasetRelease.objects.get()
    assert response.json() == {"id": release.pk, "version": release.version}
    assert release.source_reference == f"deid-job-{job.pk}"


def test_cancel_by_steward_is_403_by_outsider_404_and_by_admin_done(
        client, storage_root, monkeypatch, society, dataset, society_admin, steward, outsider):  # noqa: F811
    from portal.deid.tasks import process_chunk

    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: None)
    job = _job(society, dataset, society_admin)
    status = DeidJob.objects.get(pk=job.pk).status

    assert Caller(client, steward).post(f"/api/v1/deid/jobs/{job.pk}/cancel/").status_code == 403
    assert Caller(client, outsider).post(f"/api/v1/deid/jobs/{job.pk}/cancel/").status_code == 404
    assert DeidJob.objects.get(pk=job.pk).status == status
    cancelled = Caller(client, society_admin).post(f"/api/v1/deid/jobs/{job.pk}/cancel/")

    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
