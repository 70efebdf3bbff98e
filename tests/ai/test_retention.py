"""Uploaded clinical images do not stay: the runner deletes a finished job's images, and the
retention rule (``PORTAL_AI_INPUT_RETENTION_DAYS``, beat task ``ai.purge_old_images``) deletes them
after the period. The stripped uploaded copies and every thumbnail go, after the commit; a release's
files stay; the results (labels, probabilities, the inputs' SHA-256) are kept. The job page and the
API offer the deletion to the runner alone (404 to everybody else)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm
from knox.models import AuthToken

from portal.access.models import SecurityAnswer
from portal.ai import services
from portal.ai.demo_models import synthetic_png
from portal.ai.models import RUN_PERMISSION, InferenceJob
from portal.ai.results import results_json
from portal.ai.tasks import purge_old_images
from portal.audit.models import AuditEvent
from tests.factories import SocietyFactory, UserFactory
from tests.factories.access import granted_request
from tests.factories.ai import AIModelFactory, published_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice

pytestmark = pytest.mark.django_db

KIND = "endoscopy-organ"
DELETED = "ai.job_images_deleted"
RESULT_FIELDS = ("position", "name", "input_sha256", "status", "reason", "label", "probabilities", "processed_at")


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    settings.PORTAL_AI_INPUT_RETENTION_DAYS = 30
    return root


@pytest.fixture
def jges(db):  # type: ignore[no-untyped-def]
    return SocietyFactory(slug="jges", name_ja="日本消化器内視鏡学会")


@pytest.fixture
def version(jges):  # type: ignore[no-untyped-def]
    return published_version(AIModelFactory(society=jges, slug="demo-endoscopy-organ", is_demo=True), kind=KIND)


@pytest.fixture
def runner(version):  # type: ignore[no-untyped-def]
    user = UserFactory(email="runner@company.example.jp")
    assign_perm(RUN_PERMISSION, user, version.model)
    return user


@pytest.fixture
def client(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"
    return client


def run(version, user, files: int = 2, *, junk: bool = True, **sources) -> InferenceJob:  # type: ignore[no-untyped-def]
    """A finished job over ``files`` synthetic PNGs (and a non-image that fails at upload)."""
    if "release_files" not in sources:
        uploads = [SimpleUploadedFile(f"{n}.png", synthetic_png(KIND, "stomach", n)) for n in range(files)]
        sources["uploads"] = [*uploads, *([SimpleUploadedFile("notes.txt", b"not an image")] if junk else [])]
    with TestCase.captureOnCommitCallbacks(execute=True):
        job = services.inference_job_create(version=version, user=user, **sources)
    job.refresh_from_db()
    assert not job.is_active
    return job


def pending_job(version, user) -> InferenceJob:  # type: ignore[no-untyped-def]
    with TestCase.captureOnCommitCallbacks(execute=False):  # no worker has taken it yet
        return services.inference_job_create(version=version, user=user, uploads=[
            SimpleUploadedFile("a.png", synthetic_png(KIND, "stomach", 1))])


def keys_of(job: InferenceJob) -> list[tuple[str, str]]:
    return list(job.items.order_by("position").values_list("stored_key", "thumbnail_key"))


def results_of(job: InferenceJob) -> list[tuple[object, ...]]:
    return list(job.items.order_by("position").values_list(*RESULT_FIELDS))


def files_under(root: Path, prefix: str) -> list[str]:
    base = root / prefix
    return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()) if base.exists() else []


def stored_bytes(key: str) -> bytes:
    with default_storage.open(key, "rb") as handle:
        return handle.read()


def delete(job: InferenceJob, by) -> InferenceJob:  # type: ignore[no-untyped-def]
    with TestCase.captureOnCommitCallbacks(execute=True):
        return services.inference_job_images_delete(job=job, by=by)


def assert_untouched(job: InferenceJob, keys: list[tuple[str, str]], stored: list[str], root: Path) -> None:
    job.refresh_from_db()
    assert job.images_deleted_at is None
    assert keys_of(job) == keys
    assert files_under(root, job.storage_prefix) == stored
    assert not AuditEvent.objects.filter(action=DELETED).exists()


# --- The service ---------------------------------------------------------------------------------


def test_owner_deletes_uploaded_copies_and_thumbnails_and_keeps_the_results(version, runner, storage_root):
    job = run(version, runner)
    results = results_of(job)
    prefix = job.storage_prefix
    assert files_under(storage_root, prefix) == [
        f"{prefix}inputs/00001.png", f"{prefix}inputs/00002.png",
        f"{prefix}thumbnails/00001.png", f"{prefix}thumbnails/00002.png",
    ]

    deleted = delete(job, runner)

    job.refresh_from_db()
    assert job.images_deleted_at is not None and deleted.images_deleted_at == job.images_deleted_at
    assert keys_of(job) == [("", ""), ("", ""), ("", "")]
    assert files_under(storage_root, prefix) == []
    assert default_storage.exists(version.artefact_key)  # the model's file is not an image of the job
    assert results_of(job) == results  # labels, probabilities, SHA-256, failures: all kept
    assert [r[3] for r in results] == ["succeeded", "succeeded", "failed"]
    assert results_json(job)["images_deleted_at"] == job.images_deleted_at.isoformat()
    event = AuditEvent.objects.get(action=DELETED)
    assert (event.actor_id, event.target_id) == (runner.pk, str(job.pk))
    assert event.details == {"reason": "owner", "inputs_deleted": 2, "thumbnails_deleted": 2, "release_files_kept": 0}


def test_files_are_deleted_only_after_the_commit(version, runner, storage_root):
    job = run(version, runner, junk=False)
    stored = files_under(storage_root, job.storage_prefix)

    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        services.inference_job_images_delete(job=job, by=runner)
        assert files_under(storage_root, job.storage_prefix) == stored
        assert keys_of(job) == [("", ""), ("", "")]

    assert len(callbacks) == 1
    assert files_under(storage_root, job.storage_prefix) == stored
    callbacks[0]()
    assert files_under(storage_root, job.storage_prefix) == []


def test_a_rollback_loses_no_image(version, runner, storage_root, monkeypatch):
    job = run(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)

    def audit_fails(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services.jobs_images, "audit_record", audit_fails)
    with TestCase.captureOnCommitCallbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        services.inference_job_images_delete(job=job, by=runner)

    assert callbacks == []
    assert_untouched(job, keys, stored, storage_root)


def test_a_rollback_of_the_callers_transaction_loses_no_image(version, runner, storage_root):
    job = run(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)

    with (TestCase.captureOnCommitCallbacks(execute=True) as callbacks, pytest.raises(ZeroDivisionError),
          transaction.atomic()):
        services.inference_job_images_delete(job=job, by=runner)
        1 / 0  # noqa: B018 - something later in the same transaction fails

    assert callbacks == []
    assert_untouched(job, keys, stored, storage_root)


@pytest.mark.parametrize("who", ["outsider", "nobody"])
def test_only_the_runner_may_delete(version, runner, storage_root, who):
    job = run(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)
    by = UserFactory(email="other@company.example.jp") if who == "outsider" else None

    with TestCase.captureOnCommitCallbacks(execute=True), pytest.raises(PermissionDenied) as refused:
        services.inference_job_images_delete(job=job, by=by)

    assert str(refused.value) == "Only the person who ran the job can delete its images."
    assert_untouched(job, keys, stored, storage_root)


def test_an_active_job_is_refused(version, runner, storage_root):
    job = pending_job(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)
    assert stored == [f"{job.storage_prefix}inputs/00001.png"]

    with pytest.raises(ValidationError) as refused:
        delete(job, runner)

    assert refused.value.messages == ["The job is still running; its images can be deleted when it has finished."]
    assert_untouched(job, keys, stored, storage_root)


def test_a_second_deletion_is_refused_and_changes_nothing(version, runner, storage_root):
    job = run(version, runner)
    delete(job, runner)
    job.refresh_from_db()
    when = job.images_deleted_at

    with pytest.raises(ValidationError) as refused:
        delete(job, runner)

    assert refused.value.code == "already_deleted"
    assert refused.value.messages[0].startswith("The images of this job were already deleted on ")
    job.refresh_from_db()
    assert job.images_deleted_at == when
    assert AuditEvent.objects.filter(action=DELETED).count() == 1


def test_a_job_without_stored_images_is_refused(version, runner, storage_root):
    job = run(version, runner, files=0)  # its only file was not an image: nothing was stored
    assert job.status == "failed"

    with pytest.raises(ValidationError) as refused:
        delete(job, runner)

    assert refused.value.messages == ["This job has no stored images to delete."]
    assert_untouched(job, [("", "")], [], storage_root)


def test_an_ended_job_whose_images_were_deleted_cannot_be_made_active_again(version, runner):
    job = run(version, runner)
    delete(job, runner)

    with pytest.raises(IntegrityError), transaction.atomic():
        InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.RUNNING)


@pytest.fixture
def release(jges):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(society=jges, slug="jges-endo", modality="endoscopy")
    published_notice(dataset)
    return make_release(dataset, [FileSpec("s-one", date(2024, 5, 1), synthetic_png(KIND, "stomach", 7)),
                                  FileSpec("s-two", date(2024, 5, 1), synthetic_png(KIND, "duodenum", 8))])


def test_release_files_stay_only_the_thumbnails_go(version, release, runner, storage_root):
    request, _grant = granted_request([runner], [release])
    SecurityAnswer.objects.create(access_request=request, item="encryption", status="done")
    picks = list(release.files.order_by("path"))
    originals = {f.storage_key: stored_bytes(f.storage_key) for f in picks}
    job = run(version, runner, release_files=picks)
    assert job.source == "release"
    assert files_under(storage_root, job.storage_prefix) == [
        f"{job.storage_prefix}thumbnails/00001.png", f"{job.storage_prefix}thumbnails/00002.png"]

    delete(job, runner)

    assert files_under(storage_root, job.storage_prefix) == []
    assert {key: stored_bytes(key) for key in originals} == originals
    assert list(job.items.order_by("position").values_list("release_file_id", "stored_key", "thumbnail_key")) == [
        (picks[0].pk, "", ""), (picks[1].pk, "", "")]
    assert AuditEvent.objects.get(action=DELETED).details == {
        "reason": "owner", "inputs_deleted": 0, "thumbnails_deleted": 2, "release_files_kept": 2}


# --- Retention: the beat task --------------------------------------------------------------------


def ended_days_ago(job: InferenceJob, days: float) -> InferenceJob:
    when = timezone.now() - timedelta(days=days)
    InferenceJob.objects.filter(pk=job.pk).update(created_at=when, started_at=when, finished_at=when)
    job.refresh_from_db()
    return job


def test_purge_deletes_the_images_of_jobs_ended_before_the_period_only(version, runner, storage_root):
    old = ended_days_ago(run(version, runner), 31)
    recent = ended_days_ago(run(version, runner), 29)
    active = pending_job(version, runner)
    InferenceJob.objects.filter(pk=active.pk).update(created_at=timezone.now() - timedelta(days=40))
    kept = {job.pk: (keys_of(job), files_under(storage_root, job.storage_prefix)) for job in (recent, active)}
    old_results = results_of(old)

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert purge_old_images() == 1

    old.refresh_from_db()
    assert old.images_deleted_at is not None
    assert files_under(storage_root, old.storage_prefix) == []
    assert keys_of(old) == [("", ""), ("", ""), ("", "")]
    assert results_of(old) == old_results
    for job in (recent, active):
        job.refresh_from_db()
        assert job.images_deleted_at is None
        assert (keys_of(job), files_under(storage_root, job.storage_prefix)) == kept[job.pk]
    event = AuditEvent.objects.get(action=DELETED)
    assert (event.actor_id, event.actor_email, event.target_id) == (None, "ai-retention", str(old.pk))
    assert event.details == {"reason": "retention", "retention_days": 30, "inputs_deleted": 2,
                             "thumbnails_deleted": 2, "release_files_kept": 0}

    with TestCase.captureOnCommitCallbacks(execute=True):  # again: nothing left to do
        assert purge_old_images() == 0
    assert AuditEvent.objects.filter(action=DELETED).count() == 1


def test_purge_follows_the_setting_and_the_given_time(version, runner, storage_root, settings):
    settings.PORTAL_AI_INPUT_RETENTION_DAYS = 7
    job = ended_days_ago(run(version, runner), 5)

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.inference_images_purge() == 0
        assert services.inference_images_purge(now=timezone.now() + timedelta(days=3)) == 1

    assert files_under(storage_root, job.storage_prefix) == []
    assert AuditEvent.objects.get(action=DELETED).details["retention_days"] == 7


def test_purge_keeps_images_30_days_when_the_setting_is_absent(version, runner, storage_root, settings):
    del settings.PORTAL_AI_INPUT_RETENTION_DAYS
    recent, old = ended_days_ago(run(version, runner), 29), ended_days_ago(run(version, runner), 31)

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert purge_old_images() == 1

    assert list(AuditEvent.objects.filter(action=DELETED).values_list("target_id", "details__retention_days")) == [
        (str(old.pk), 30)]
    assert files_under(storage_root, recent.storage_prefix) != []


def test_the_purge_task_is_registered_under_its_name():
    from portal.celery import app

    assert purge_old_images.name == "ai.purge_old_images"
    assert app.tasks["ai.purge_old_images"].run is purge_old_images.run  # the name beat schedules


def test_purge_with_zero_days_keeps_every_image(version, runner, storage_root, settings):
    settings.PORTAL_AI_INPUT_RETENTION_DAYS = 0
    job = ended_days_ago(run(version, runner), 3650)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert purge_old_images() == 0

    assert_untouched(job, keys, stored, storage_root)


def test_purge_skips_jobs_already_emptied_by_their_runner(version, runner, storage_root):
    job = ended_days_ago(run(version, runner), 31)
    delete(job, runner)

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert purge_old_images() == 0

    assert list(AuditEvent.objects.filter(action=DELETED).values_list("details__reason", flat=True)) == ["owner"]


# --- The job page --------------------------------------------------------------------------------


def test_job_page_states_the_retention_and_offers_the_deletion(client, version, runner):
    job = run(version, runner)
    client.force_login(runner)

    body = client.get(reverse("ai:job_detail", args=[job.pk])).content.decode()

    assert "Uploaded images are deleted 30 days after the job has finished, with their thumbnails." in body
    after = timezone.localtime(job.finished_at + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert f"This job's images will be deleted after {after}. The results are kept." in body
    assert f'action="{reverse("ai:job_images_delete", args=[job.pk])}"' in body
    assert 'data-confirm="Delete the images of this job? The results are kept; the images cannot be restored."' in body
    assert "Delete the images</button>" in body
    assert body.count('data-testid="ai-thumbnail"') == 2


def test_job_page_with_zero_days_says_images_are_kept(client, version, runner, settings):
    settings.PORTAL_AI_INPUT_RETENTION_DAYS = 0
    job = run(version, runner)
    client.force_login(runner)

    body = client.get(reverse("ai:job_detail", args=[job.pk])).content.decode()

    assert "Uploaded images are kept until you delete them." in body
    assert "days after the job" not in body


def test_no_delete_button_while_the_job_runs(client, version, runner, storage_root):
    job = pending_job(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)
    client.force_login(runner)

    body = client.get(reverse("ai:job_detail", args=[job.pk])).content.decode()
    assert 'data-testid="ai-images-delete"' not in body

    response = client.post(reverse("ai:job_images_delete", args=[job.pk]), follow=True)
    assert "The job is still running; its images can be deleted when it has finished." in response.content.decode()
    assert_untouched(job, keys, stored, storage_root)


def test_deleting_from_the_page_leaves_the_results_without_thumbnails(client, version, runner, storage_root):
    job = run(version, runner)
    client.force_login(runner)
    thumbnail = reverse("ai:thumbnail", args=[job.pk, 1])
    shown = client.get(thumbnail)
    assert (shown.status_code, shown["Content-Type"]) == (200, "image/png")
    assert b"".join(shown.streaming_content).startswith(b"\x89PNG")  # read to the end: the file is closed

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("ai:job_images_delete", args=[job.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("ai:job_detail", args=[job.pk])
    job.refresh_from_db()
    assert files_under(storage_root, job.storage_prefix) == []
    body = client.get(response["Location"]).content.decode()
    assert "The images of this job were deleted; its results were kept." in body
    when = timezone.localtime(job.images_deleted_at).strftime("%Y-%m-%d %H:%M")
    assert (f"The images of this job were deleted on {when}. The results were kept: labels, probabilities "
            "and the SHA-256 of each input.") in body
    assert 'data-testid="ai-thumbnail"' not in body
    assert body.count('<span class="muted" data-testid="ai-thumbnail-deleted">Image deleted</span>') == 3
    assert 'data-testid="ai-images-delete"' not in body
    assert body.count('data-testid="ai-label"><strong>') == 2  # the labels are still there
    assert client.get(thumbnail).status_code == 404


def test_the_page_refuses_a_second_deletion_with_a_message(client, version, runner):
    job = run(version, runner)
    delete(job, runner)
    client.force_login(runner)

    response = client.post(reverse("ai:job_images_delete", args=[job.pk]), follow=True)

    assert "The images of this job were already deleted on " in response.content.decode()
    assert AuditEvent.objects.filter(action=DELETED).count() == 1


def test_others_get_404_and_nothing_changes(client, version, runner, outsider, storage_root):
    job = run(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)
    client.force_login(outsider)

    assert client.post(reverse("ai:job_images_delete", args=[job.pk])).status_code == 404
    assert_untouched(job, keys, stored, storage_root)


def test_the_deletion_is_post_only(client, version, runner, storage_root):
    job = run(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)
    client.force_login(runner)

    assert client.get(reverse("ai:job_images_delete", args=[job.pk])).status_code == 405
    assert_untouched(job, keys, stored, storage_root)


# --- The API -------------------------------------------------------------------------------------


def _auth(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"HTTP_AUTHORIZATION": f"Token {AuthToken.objects.create(user)[1]}", "HTTP_ACCEPT_LANGUAGE": "en"}


def test_api_owner_deletes_the_images(client, version, runner, storage_root):
    job = run(version, runner)
    headers = _auth(runner)
    before = client.get(f"/api/v1/ai/jobs/{job.pk}/", **headers).json()
    assert before["images_deleted_at"] is None
    assert [i["thumbnail_url"] is not None for i in before["items"]] == [True, True, False]

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(f"/api/v1/ai/jobs/{job.pk}/images/delete/", **headers)

    assert response.status_code == 200, response.json()
    body = response.json()
    job.refresh_from_db()
    assert body["images_deleted_at"] == job.images_deleted_at.astimezone(timezone.get_current_timezone()).isoformat()
    assert [i["thumbnail_url"] for i in body["items"]] == [None, None, None]
    assert [i["label"] for i in body["items"]] == [i["label"] for i in before["items"]]
    assert [i["probabilities"] for i in body["items"]] == [i["probabilities"] for i in before["items"]]
    assert files_under(storage_root, job.storage_prefix) == []
    listed = client.get("/api/v1/ai/jobs/", **headers).json()["results"]
    assert [(j["id"], j["images_deleted_at"]) for j in listed] == [(job.pk, body["images_deleted_at"])]

    again = client.post(f"/api/v1/ai/jobs/{job.pk}/images/delete/", **headers)
    assert again.status_code == 400
    assert again.json()["errors"]["non_field_errors"][0].startswith("The images of this job were already deleted on ")


def test_api_refuses_an_active_job_with_400(client, version, runner, storage_root):
    job = pending_job(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)

    response = client.post(f"/api/v1/ai/jobs/{job.pk}/images/delete/", **_auth(runner))

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "non_field_errors": ["The job is still running; its images can be deleted when it has finished."]}
    assert_untouched(job, keys, stored, storage_root)


def test_api_others_get_404_and_anonymous_401(client, version, runner, outsider, storage_root):
    job = run(version, runner)
    keys, stored = keys_of(job), files_under(storage_root, job.storage_prefix)
    url = f"/api/v1/ai/jobs/{job.pk}/images/delete/"

    assert client.post(url, **_auth(outsider)).status_code == 404
    assert client.post("/api/v1/ai/jobs/999999/images/delete/", **_auth(runner)).status_code == 404
    assert client.post(url).status_code in {401, 403}
    assert_untouched(job, keys, stored, storage_root)
