"""Inference jobs on the real demo model: uploads (PNG, JPEG, DICOM) stripped before they are stored,
release-file picks, bad images failing alone, refusals, results as CSV and JSON, audit, queries."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, timedelta

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from guardian.shortcuts import assign_perm
from PIL import Image, PngImagePlugin

from portal.access.models import SecurityAnswer
from portal.ai import services
from portal.ai.demo_models import synthetic_image, synthetic_png
from portal.ai.models import DEMO_NOTICE, RUN_PERMISSION, InferenceItem, InferenceJob, ModelVersion
from portal.ai.results import results_csv, results_json, results_rows
from portal.audit.models import AuditEvent
from portal.lib.pseudonym import subject_pseudonym
from portal.lib.synthetic import synthetic_file
from portal.optout import services as optout
from tests.factories import SocietyFactory, UserFactory
from tests.factories.access import granted_request
from tests.factories.ai import AIModelFactory, published_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice

pytestmark = pytest.mark.django_db

KIND = "endoscopy-organ"
PER_JOB, PER_BATCH = 15, 5  # queries: start, load, finish and audit; per batch of results
SECRET = "Yamada^Taro-PT0098765432"


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    settings.PORTAL_AI_BATCH_SIZE = 4
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


# --- Images --------------------------------------------------------------------------------------


def png_with_text(label: str = "stomach", seed: int = 1) -> bytes:
    image = Image.open(io.BytesIO(synthetic_png(KIND, label, seed)))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_exif(label: str = "duodenum", seed: int = 2) -> bytes:
    image = Image.fromarray(synthetic_image(KIND, label, np.random.default_rng(seed)))
    exif = Image.Exif()
    exif[0x013B] = SECRET  # Artist
    exif[0x010E] = SECRET  # ImageDescription
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def rgb_dicom(label: str = "esophagus", seed: int = 3, *, patient_id: str | None = "PT0098765432",
              burned_in: str = "NO", modality: str = "ES") -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = synthetic_image(KIND, label, np.random.default_rng(seed))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.1.1"  # Video Endoscopic Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = modality
    dataset.PatientName = SECRET
    if patient_id is not None:
        dataset.PatientID = patient_id
    dataset.InstitutionName = "Secret Hospital"
    dataset.StudyDate = "20240501"
    dataset.BurnedInAnnotation = burned_in
    dataset.Rows, dataset.Columns = pixels.shape[0], pixels.shape[1]
    dataset.SamplesPerPixel = 3
    dataset.PhotometricInterpretation = "RGB"
    dataset.PlanarConfiguration = 0
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def grey_png(size: int = 96) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((size, size), 128, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def run(version, user, **sources) -> InferenceJob:  # type: ignore[no-untyped-def]
    """Create a job; the task runs in-process at commit (the tests' eager Celery)."""
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        job = services.inference_job_create(version=version, user=user, **sources)
    job.refresh_from_db()
    return job


def stored_bytes(key: str) -> bytes:
    with default_storage.open(key, "rb") as handle:
        return handle.read()


# --- Uploads -------------------------------------------------------------------------------------


def test_uploads_are_stripped_stored_and_classified(version, runner):
    files = {"a.png": png_with_text(), "b.jpg": jpeg_with_exif(), "c.dcm": rgb_dicom()}
    job = run(version, runner, uploads=[upload(name, data) for name, data in files.items()])
    assert (job.status, job.total, job.done, job.failed, job.error) == ("finished", 3, 3, 0, "")
    items = list(job.items.order_by("position"))
    assert [i.name for i in items] == ["a.png", "b.jpg", "c.dcm"]
    assert [i.input_sha256 for i in items] == [hashlib.sha256(d).hexdigest() for d in files.values()]
    assert [i.stored_key for i in items] == [
        f"ai/jobs/{job.pk}/inputs/00001.png", f"ai/jobs/{job.pk}/inputs/00002.jpg",
        f"ai/jobs/{job.pk}/inputs/00003.dcm"]
    for item in items:
        stored = stored_bytes(item.stored_key)
        assert SECRET.encode() not in stored and b"Secret Hospital" not in stored
        assert item.status == "succeeded" and item.label in ("esophagus", "stomach", "duodenum")
        assert set(item.probabilities) == {"esophagus", "stomach", "duodenum"}  # jsonb keeps no key order
        assert sum(item.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert item.label == max(item.probabilities, key=item.probabilities.get)
        thumbnail = Image.open(io.BytesIO(stored_bytes(item.thumbnail_key)))
        assert thumbnail.format == "PNG" and max(thumbnail.size) <= 128
        assert item.processed_at is not None
    # the originals did carry the secret
    assert all(SECRET.encode() in data for data in files.values())
    from pydicom import dcmread

    cleaned = dcmread(io.BytesIO(stored_bytes(items[2].stored_key)))
    assert str(cleaned.PatientName) != SECRET and cleaned.PatientID != "PT0098765432"


def test_demo_model_predicts_synthetic_images_mostly_right(version, runner):
    labels = ["esophagus", "stomach", "duodenum"] * 4
    job = run(version, runner, uploads=[
        upload(f"{n}.png", synthetic_png(KIND, label, 1000 + n)) for n, label in enumerate(labels)])
    predicted = list(job.items.order_by("position").values_list("label", flat=True))
    assert sum(p == t for p, t in zip(predicted, labels, strict=True)) >= 10


def test_a_non_image_and_a_wrong_channel_image_fail_alone(version, runner):
    grey_dicom = synthetic_file("ct", seed=1, study_date=date(2024, 1, 1), subject="X")[0]
    job = run(version, runner, uploads=[
        upload("ok.png", png_with_text()), upload("notes.txt", b"not an image at all"),
        upload("grey.png", grey_png()), upload("grey.dcm", grey_dicom), upload("tiny.png", synthetic_tiny()),
    ])
    assert (job.status, job.total, job.done, job.failed) == ("finished_with_failures", 5, 5, 4)
    items = {i.name: i for i in job.items.all()}
    assert items["ok.png"].status == "succeeded"
    assert items["notes.txt"].reason == "This file is not a JPEG, PNG or DICOM image."
    assert items["notes.txt"].stored_key == ""
    assert items["grey.png"].reason == "The model expects 3 channels (RGB); this image has 1 (greyscale)."
    assert items["grey.dcm"].reason == "The model expects 3 channels (RGB); this image has 1 (greyscale)."
    assert items["tiny.png"].reason == "The image is 32 × 32 pixels; this model needs at least 64 × 64."
    assert all(items[n].label == "" and items[n].probabilities == {} for n in items if n != "ok.png")


def test_dicom_without_patient_id_is_stripped_and_run(version, runner):
    job = run(version, runner, uploads=[upload("a.dcm", rgb_dicom(patient_id=None))])
    item = job.items.get()
    assert item.status == "succeeded"
    assert SECRET.encode() not in stored_bytes(item.stored_key)


def test_dicom_with_burned_in_text_no_rule_masks_is_not_stored(version, runner, storage_root):
    # XC (external camera) with BurnedInAnnotation YES: no masking rule covers it, so deid holds it back.
    job = run(version, runner, uploads=[upload("a.dcm", rgb_dicom(burned_in="YES", modality="XC")),
                                        upload("b.png", png_with_text())])
    first, second = job.items.order_by("position")
    assert (first.status, first.stored_key) == ("failed", "")
    assert first.reason.startswith("The image's metadata could not be removed, so it was not stored: "
                                   "The DICOM image may carry burned-in text that cannot be masked")
    assert second.status == "succeeded"
    stored = sorted(p.name for p in (storage_root / "ai" / "jobs" / str(job.pk) / "inputs").iterdir())
    assert stored == ["00002.png"]


def test_endoscopy_dicom_with_burned_in_text_is_masked_and_run(version, runner):
    job = run(version, runner, uploads=[upload("a.dcm", rgb_dicom(burned_in="YES"))])
    assert job.items.get().status == "succeeded"


def synthetic_tiny() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 90, 80)).save(out, format="PNG")
    return out.getvalue()


def test_all_images_failing_fails_the_job(version, runner):
    job = run(version, runner, uploads=[upload("a.txt", b"plain text"), upload("b.png", grey_png())])
    assert (job.status, job.done, job.failed) == ("failed", 2, 2)


def test_an_image_over_the_size_limit_fails_alone(version, runner, settings):
    settings.PORTAL_AI_MAX_IMAGE_MB = 0
    job = run(version, runner, uploads=[upload("big.png", png_with_text())])
    [item] = job.items.all()
    assert item.reason.startswith("The file is 0.0 MB; at most 0 MB per image is accepted.")
    assert item.input_sha256 == hashlib.sha256(png_with_text()).hexdigest()


def test_a_model_that_cannot_be_loaded_fails_the_job(version, runner):
    default_storage.delete(version.artefact_key)
    ModelVersion.objects.filter(pk=version.pk).update(artefact_sha256="0" * 64)
    version.refresh_from_db()
    job = run(version, runner, uploads=[upload("a.png", png_with_text())])
    assert job.status == "failed" and job.error.startswith("The model could not be loaded")
    assert job.items.get().status == "failed"


def test_a_model_failing_while_running_fails_the_job_once(version, runner, monkeypatch):
    from portal.ai import inference

    def broken(session, batch):  # type: ignore[no-untyped-def]
        raise RuntimeError("ONNX Runtime: bad node")

    monkeypatch.setattr(inference, "classify", broken)
    job = run(version, runner, uploads=[upload("a.png", png_with_text()), upload("b.txt", b"text")])
    assert (job.status, job.done, job.failed) == ("failed", 2, 2)
    assert job.error == "The model failed while running: RuntimeError: ONNX Runtime: bad node"
    assert job.items.get(position=1).reason == job.error
    assert job.items.get(position=2).reason == "This file is not a JPEG, PNG or DICOM image."


def test_audit_records_inputs_by_hash_and_the_outcome(version, runner):
    data = png_with_text()
    job = run(version, runner, uploads=[upload("a.png", data), upload("x.bin", b"\0\1")])
    created = AuditEvent.objects.get(action="ai.job_created")
    assert created.actor_id == runner.pk
    assert created.details == {
        "model": "demo-endoscopy-organ", "version": "1.0.0", "model_sha256": version.artefact_sha256,
        "inputs": [hashlib.sha256(data).hexdigest(), hashlib.sha256(b"\0\1").hexdigest()], "source": "upload",
        "release": None, "refused_at_upload": 1,
    }
    finished = AuditEvent.objects.get(action="ai.job_finished")
    assert finished.details["status"] == "finished_with_failures"
    assert (finished.details["succeeded"], finished.details["failed"], finished.details["total"]) == (1, 1, 2)
    assert finished.target_id == str(job.pk) or str(finished.target_id) == str(job.pk)


# --- Refusals ------------------------------------------------------------------------------------


def _nothing_written(storage_root) -> None:  # type: ignore[no-untyped-def]
    assert InferenceJob.objects.count() == 0 and InferenceItem.objects.count() == 0
    assert not AuditEvent.objects.filter(action="ai.job_created").exists()
    assert not (storage_root / "ai" / "jobs").exists()


def test_no_permission_refused(version, storage_root):
    with pytest.raises(PermissionDenied):
        services.inference_job_create(version=version, user=UserFactory(), uploads=[upload("a.png", grey_png())])
    _nothing_written(storage_root)


def test_retired_version_refused_with_the_date(version, runner, storage_root, jges):
    retired_at = timezone.make_aware(timezone.datetime(2026, 4, 1, 10, 0))
    ModelVersion.objects.filter(pk=version.pk).update(status="retired", retired_at=retired_at)
    version.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, uploads=[upload("a.png", png_with_text())])
    assert refused.value.messages == ["This version was retired on April 1, 2026; choose a published version."]
    _nothing_written(storage_root)


def test_draft_runs_only_for_managers(version, runner, storage_root):
    ModelVersion.objects.filter(pk=version.pk).update(status="draft")
    version.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, uploads=[upload("a.png", png_with_text())])
    assert "draft" in refused.value.messages[0]
    _nothing_written(storage_root)
    admin = UserFactory()
    from tests.factories import SocietyMembershipFactory

    SocietyMembershipFactory(society=version.model.society, user=admin, role="admin")
    job = run(version, admin, uploads=[upload("a.png", png_with_text())])
    assert job.status == "finished"


def test_task_not_runnable_refused(version, runner, storage_root):
    version.model.task = "segmentation"
    version.model.save()
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, uploads=[upload("a.png", png_with_text())])
    assert refused.value.messages == ["The portal cannot run Segmentation models yet."]
    _nothing_written(storage_root)


def test_no_images_and_too_many_refused(version, runner, settings, storage_root):
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner)
    assert refused.value.messages == ["Choose at least one image."]
    settings.PORTAL_AI_MAX_IMAGES = 2
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner,
                                      uploads=[upload(f"{n}.png", grey_png()) for n in range(3)])
    assert refused.value.messages == ["3 images were given; at most 2 can be run in one job."]
    _nothing_written(storage_root)


# --- Release files -------------------------------------------------------------------------------


@pytest.fixture
def release(jges):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(society=jges, slug="jges-endo", modality="endoscopy")
    published_notice(dataset)
    subject = subject_pseudonym(institution_code="1310001234", patient_id="PT-0098765432")
    files = [FileSpec("s-one", date(2024, 5, 1), synthetic_png(KIND, "stomach", 7)),
             FileSpec("s-two", date(2024, 5, 1), synthetic_png(KIND, "duodenum", 8)),
             FileSpec(subject, date(2024, 5, 1), synthetic_png(KIND, "esophagus", 9))]
    return make_release(dataset, files)


def usable_grant(user, release):  # type: ignore[no-untyped-def]
    """A grant in force that may be used now: agreement signed, security self-assessment answered."""
    request, grant = granted_request([user], [release])
    SecurityAnswer.objects.create(access_request=request, item="encryption", status="done")
    return grant


def test_release_files_of_a_granted_release_are_run(version, release):
    holder = UserFactory(email="holder@company.example.jp")
    usable_grant(holder, release)
    version.model.open_to_grant_holders = True
    version.model.save()
    picks = list(release.files.order_by("path")[:2])
    job = run(version, holder, release_files=picks)
    assert (job.source, job.release_id, job.status, job.done) == ("release", release.pk, "finished", 2)
    items = list(job.items.order_by("position"))
    assert [i.release_file_id for i in items] == [f.pk for f in picks]
    assert [i.input_sha256 for i in items] == [f.sha256 for f in picks]
    assert [i.stored_key for i in items] == [f.storage_key for f in picks]
    assert all(i.label for i in items)
    assert AuditEvent.objects.get(action="ai.job_created").details["release"] == str(release)


def test_release_files_without_a_usable_grant_refused_naming_the_file(version, release, runner, storage_root):
    first = release.files.order_by("path").first()
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, release_files=[first])
    assert refused.value.message_dict["release_files"] == [
        f"You hold no grant in force for release {release}, so its file {first.path} cannot be used."]
    _nothing_written(storage_root)


def test_expired_grant_refused(version, release, runner, storage_root):
    grant = usable_grant(runner, release)
    grant.expires_at = timezone.now() - timedelta(days=1)
    grant.save()
    with pytest.raises(ValidationError):
        services.inference_job_create(version=version, user=runner, release_files=list(release.files.all()[:1]))
    _nothing_written(storage_root)


def test_file_of_an_opted_out_subject_refused(version, release, runner, storage_root):
    usable_grant(runner, release)
    admin = UserFactory(is_staff=True, is_superuser=True)
    from tests.factories import give_totp

    give_totp(admin)
    optout.optout_request_record(
        society=release.dataset.society, patient_id="PT-0098765432", institution_code="1310001234",
        received_at=timezone.now() - timedelta(hours=1), channel="counter", requester_type="subject",
        identity_verification="確認済み", all_protocols=True, protocols=[], modalities=[], extent="future_only",
        action_taken="stop_use", by=admin,
    )
    opted = release.files.order_by("path").last()
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, release_files=[opted])
    assert refused.value.message_dict["release_files"] == [
        f"{opted.path} is of a subject who opted out; it may no longer be used."]
    _nothing_written(storage_root)


def test_release_file_picked_twice_runs_once_and_bad_ids_are_refused(version, release, runner, storage_root):
    usable_grant(runner, release)
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, release_files=["x"])
    assert refused.value.message_dict == {"release_files": ["Pick release files by their number."]}
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, release_files=[999999])
    assert refused.value.message_dict == {"release_files": ["No such release file: 999999."]}
    _nothing_written(storage_root)
    first = release.files.order_by("path").first()
    job = run(version, runner, release_files=[first, str(first.pk)])
    assert (job.total, job.done, job.status) == (1, 1, "finished")


def test_mixed_sources_refused(version, release, runner, storage_root):
    usable_grant(runner, release)
    with pytest.raises(ValidationError) as refused:
        services.inference_job_create(version=version, user=runner, uploads=[upload("a.png", grey_png())],
                                      release_files=list(release.files.all()[:1]))
    assert refused.value.messages == ["Upload images or pick files of a release, not both."]
    _nothing_written(storage_root)


# --- Running: idempotent, progress, queries -------------------------------------------------------


def test_run_again_changes_nothing(version, runner):
    job = run(version, runner, uploads=[upload("a.png", png_with_text())])
    before = list(job.items.values_list("label", "probabilities", "thumbnail_key", "processed_at"))
    services.inference_job_run(job_id=job.pk)
    assert list(job.items.values_list("label", "probabilities", "thumbnail_key", "processed_at")) == before
    assert AuditEvent.objects.filter(action="ai.job_finished").count() == 1


def test_run_continues_a_job_whose_worker_died(version, runner):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False):  # the message is lost
        job = services.inference_job_create(version=version, user=runner, uploads=[
            upload(f"{n}.png", png_with_text(seed=n)) for n in range(6)])
    # the first worker processed two images and then died
    InferenceJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    first_two = list(job.items.order_by("position")[:2])
    for item in first_two:
        item.status, item.label, item.probabilities = "succeeded", "stomach", {"stomach": 1.0}
        item.processed_at = timezone.now()
    InferenceItem.objects.bulk_update(first_two, ["status", "label", "probabilities", "processed_at"])
    services.inference_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == ("finished", 6)
    assert list(job.items.order_by("position").values_list("label", flat=True))[:2] == ["stomach", "stomach"]


def test_resume_stalled_requeues_old_active_jobs(version, runner, settings):
    from django.test import TestCase

    from portal.ai.tasks import resume_stalled

    with TestCase.captureOnCommitCallbacks(execute=False):
        job = services.inference_job_create(version=version, user=runner, uploads=[upload("a.png", grey_png())])
    InferenceJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=2))
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert resume_stalled() == 1
    job.refresh_from_db()
    assert job.status == "failed"  # ran: its one image is greyscale
    assert AuditEvent.objects.filter(action="ai.job_resumed").count() == 1
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert resume_stalled() == 0


def _pending_job(version, user, count: int) -> InferenceJob:  # type: ignore[no-untyped-def]
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False):
        return services.inference_job_create(version=version, user=user, uploads=[
            upload(f"{n}.png", png_with_text(seed=n)) for n in range(count)])


def test_inference_job_run_queries_grow_per_batch_not_per_image(version, runner, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    services.inference_job_run(job_id=_pending_job(version, runner, 1).pk)  # loads the model once
    four, twelve = _pending_job(version, runner, 4), _pending_job(version, runner, 12)
    with CaptureQueriesContext(connection) as one_batch:
        services.inference_job_run(job_id=four.pk)
    with django_assert_max_num_queries(PER_JOB + 3 * PER_BATCH) as three_batches:
        services.inference_job_run(job_id=twelve.pk)
    # batches of 4: eight more images cost exactly two more batches' queries, none per image
    assert len(three_batches.captured_queries) - len(one_batch.captured_queries) == 2 * PER_BATCH


# --- Results -------------------------------------------------------------------------------------


def test_results_rows_csv_and_json(version, runner):
    job = run(version, runner, uploads=[upload("胃.png", png_with_text()), upload("x.txt", b"text")])
    rows = results_rows(job)
    assert [r["file"] for r in rows] == ["胃.png", "x.txt"]
    assert rows[0]["status"] == "succeeded" and rows[0]["has_thumbnail"] is True
    assert rows[0]["label_name"] == version.label_name(rows[0]["label"])
    text = results_csv(job)
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert lines[0] == [str(DEMO_NOTICE)]
    assert lines[1] == ["position", "file", "input_sha256", "status", "label", "label_name", "p_esophagus",
                        "p_stomach", "p_duodenum", "reason"]
    assert lines[2][:4] == ["1", "胃.png", rows[0]["input_sha256"], "succeeded"]
    assert float(lines[2][6]) + float(lines[2][7]) + float(lines[2][8]) == pytest.approx(1.0, abs=1e-4)
    assert lines[3][3:6] == ["failed", "", ""] and lines[3][9] == "This file is not a JPEG, PNG or DICOM image."
    data = json.loads(json.dumps(results_json(job)))
    assert data["demo_notice"] == "Demo model, synthetic data, not for clinical use"
    assert data["model"]["slug"] == "demo-endoscopy-organ" and data["model"]["sha256"] == version.artefact_sha256
    assert (data["status"], data["total"], data["failed"]) == ("finished_with_failures", 2, 1)
    assert [item["file"] for item in data["items"]] == ["胃.png", "x.txt"]
    assert set(data["items"][0]["probabilities"]) == {"esophagus", "stomach", "duodenum"}


def test_results_of_a_non_demo_model_carry_no_notice(version, runner):
    version.model.is_demo = False
    version.model.save()
    job = run(version, runner, uploads=[upload("a.png", png_with_text())])
    assert results_json(job)["demo_notice"] is None
    assert results_csv(job).lstrip("\ufeff").startswith("position,")


# Upload names lose folders and surrounding blanks on the way in; these survive as they are.
HOSTILE_NAMES = ['=HYPERLINK("x","y").png', "+1.png", "-2.png", "@SUM(A1).png"]


def test_results_csv_on_the_page_and_the_api_neutralises_formula_file_names(version, runner, client):
    from django.urls import reverse
    from knox.models import AuthToken

    job = run(version, runner, uploads=[upload(name, png_with_text(seed=n)) for n, name in enumerate(HOSTILE_NAMES)])
    client.force_login(runner)
    page = client.get(reverse("ai:job_results_csv", args=[job.pk]))
    token = AuthToken.objects.create(runner)[1]
    api = client.get(f"/api/v1/ai/jobs/{job.pk}/results.csv", HTTP_AUTHORIZATION=f"Token {token}")

    assert [row["file"] for row in results_rows(job)] == HOSTILE_NAMES
    for response in (page, api):
        assert response.status_code == 200
        assert response.content.startswith("\ufeff".encode())
        lines = list(csv.reader(io.StringIO(response.content.decode("utf-8").removeprefix("\ufeff"))))
        assert [line[1] for line in lines[2:]] == ["'" + name for name in HOSTILE_NAMES]
