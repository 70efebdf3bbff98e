"""Anonymisation jobs: lifecycle and permissions, chunks and idempotency, a bad file failing alone,
progress counts, resuming, the release built from a finished job, and the ``deidentify`` command."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase

from portal.audit.models import AuditEvent
from portal.datasets.models import DatasetRelease
from portal.deid import services
from portal.deid.models import DeidFileResult, DeidJob
from portal.deid.selectors import deid_report_for_release
from portal.deid.tasks import process_chunk
from portal.lib.synthetic import synthetic_file
from tests.factories import UserFactory
from tests.factories.datasets import DatasetFactory

pytestmark = pytest.mark.django_db

FOLDER = "hospital-a/2024"


def _photo(path: Path, modality: str, seed: int) -> None:
    data, _extension, _media = synthetic_file(modality, seed=seed, study_date=date(2024, 4, 1), subject="X")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


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
    folder = root / FOLDER
    _photo(folder / "P-0001" / "a.jpg", "endoscopy", 1)
    _photo(folder / "P-0001" / "b.png", "ultrasound", 2)
    _photo(folder / "P-0002" / "c.jpg", "endoscopy", 3)
    return root


@pytest.fixture
def bad_file(import_root):  # type: ignore[no-untyped-def]
    path = import_root / FOLDER / "P-0002" / "notes.bin"
    path.write_bytes(b"not an image at all")
    return path


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jges-endo", modality="endoscopy")


def _create(society, dataset, by, **extra):  # type: ignore[no-untyped-def]
    fields = {"source_kind": "server_folder", "source": FOLDER, "options": ["LMD"], "institution_code": "1310001"}
    fields.update(extra)
    return services.deid_job_create(society=society, dataset=dataset, by=by, **fields)


def _run(society, dataset, by, **extra) -> DeidJob:  # type: ignore[no-untyped-def]
    job = _create(society, dataset, by, **extra)
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.deid_job_start(job=job, by=by)
    job.refresh_from_db()
    return job


# --- Creating: who and what ---------------------------------------------------------------------


def test_create_records_a_pending_job_and_audits(storage_root, import_root, society, dataset, society_admin):
    job = _create(society, dataset, society_admin)
    assert job.status == DeidJob.Status.PENDING
    assert job.source == str((import_root / FOLDER).resolve())
    assert job.options == ["LMD"]
    assert job.output_prefix == f"deid/{job.pk}/"
    event = AuditEvent.objects.get(action="deid.job_create")
    assert (event.actor_id, event.details["source_kind"], event.details["options"]) == (
        society_admin.pk, "server_folder", ["LMD"])


@pytest.mark.parametrize("who", ["outsider", "steward"])
def test_create_refused_to_non_admins(request, storage_root, import_root, society, dataset, who):
    with pytest.raises(PermissionDenied):
        _create(society, dataset, request.getfixturevalue(who))
    assert DeidJob.objects.count() == 0
    assert AuditEvent.objects.filter(action__startswith="deid.").count() == 0


def test_create_validates_every_field_at_once(storage_root, import_root, society, dataset, society_admin):
    other = DatasetFactory(slug="other-society-ds")
    with pytest.raises(ValidationError) as excinfo:
        _create(society, other, society_admin, source="../../etc", options=["LMD", "XYZ"], institution_code=" ",
                table_roles={"t.csv": {"name": "shred"}})
    errors = excinfo.value.message_dict
    assert set(errors) == {"dataset", "options", "institution_code", "table_roles", "source"}
    assert errors["options"] == ["Unknown options: XYZ."]
    assert errors["source"] == ["The folder must lie inside the import folder."]
    assert DeidJob.objects.count() == 0


def test_create_refuses_a_missing_folder_and_portal_prefixes(storage_root, import_root, society, dataset, society_admin):
    with pytest.raises(ValidationError) as excinfo:
        _create(society, dataset, society_admin, source="hospital-a/none")
    assert excinfo.value.message_dict["source"] == ["The folder does not exist."]
    with pytest.raises(ValidationError) as excinfo:
        _create(society, dataset, society_admin, source_kind="s3_prefix", source="deid/1")
    assert excinfo.value.message_dict["source"] == ["Enter a storage prefix outside the portal's own folders."]
    assert DeidJob.objects.count() == 0


def test_create_without_import_root_refuses_server_folders(settings, storage_root, society, dataset, society_admin):
    settings.PORTAL_DEID_IMPORT_ROOT = ""
    with pytest.raises(ValidationError) as excinfo:
        _create(society, dataset, society_admin)
    assert excinfo.value.message_dict["source"] == [
        "No folder on the server is set up for anonymisation imports."]


# --- Running ------------------------------------------------------------------------------------


def test_job_runs_to_the_end_and_a_bad_file_fails_alone(storage_root, import_root, bad_file, society, dataset,
                                                         society_admin):
    job = _run(society, dataset, society_admin)

    assert job.status == DeidJob.Status.FINISHED_WITH_FAILURES
    assert (job.total, job.done, job.failed, job.held_back) == (4, 4, 1, 0)
    results = {r.source_path: r for r in job.results.all()}
    assert sorted(results) == ["P-0001/a.jpg", "P-0001/b.png", "P-0002/c.jpg", "P-0002/notes.bin"]
    failed = results["P-0002/notes.bin"]
    assert (failed.status, failed.reason, failed.storage_key) == ("failed", "unsupported file type", "")
    ok = results["P-0001/a.jpg"]
    assert ok.kind == "photo"
    assert ok.status in ("changed", "unchanged")
    assert ok.storage_key == services.output_key(job, "P-0001/a.jpg")
    assert ok.storage_key.startswith(f"deid/{job.pk}/") and "P-0001" not in ok.storage_key
    assert default_storage.size(ok.storage_key) == ok.size
    # The subject of a photo comes from its folder, pseudonymised with the institution code.
    assert ok.subject_pseudonym == services.portal_keys().pseudonym(institution_code="1310001", patient_id="P-0001")
    assert results["P-0001/b.png"].subject_pseudonym == ok.subject_pseudonym
    assert job.report["table_edition"] == "2024b"
    assert job.report["files_by_status"]["failed"] == 1
    assert job.report["files_by_kind"] == {"photo": 3, "unknown": 1}
    assert job.report["options"] == ["LMD"]
    assert list(AuditEvent.objects.filter(action__startswith="deid.").order_by("id").values_list("action", flat=True)) == [
        "deid.job_create", "deid.job_start", "deid.job_finish"]


def test_job_is_split_into_chunks(monkeypatch, storage_root, import_root, bad_file, society, dataset, society_admin):
    monkeypatch.setattr(services, "CHUNK_SIZE", 3)
    sent: list[tuple[int, list[str]]] = []
    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: sent.append((job_id, paths)))
    job = _run(society, dataset, society_admin)
    assert job.status == DeidJob.Status.RUNNING
    assert sent == [(job.pk, ["P-0001/a.jpg", "P-0001/b.png", "P-0002/c.jpg"]), (job.pk, ["P-0002/notes.bin"])]


def test_running_a_chunk_twice_adds_nothing(monkeypatch, storage_root, import_root, bad_file, society, dataset,
                                            society_admin):
    sent: list[list[str]] = []
    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: sent.append(paths))
    job = _run(society, dataset, society_admin)
    (paths,) = sent
    process_chunk(job.pk, paths[:2])
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("running", 2, 0)
    process_chunk(job.pk, paths[:2])  # delivered again, e.g. after a worker died
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("running", 2, 0)
    assert DeidFileResult.objects.filter(job=job).count() == 2
    process_chunk(job.pk, paths)
    process_chunk(job.pk, paths)
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == ("finished_with_failures", 4, 4, 1)
    assert DeidFileResult.objects.filter(job=job).count() == 4
    stored = sorted(p.name for p in (storage_root / "deid" / str(job.pk)).iterdir())
    assert stored == sorted(Path(k).name for k in job.results.exclude(storage_key="").values_list("storage_key", flat=True))
    assert len(stored) == 3
    assert AuditEvent.objects.filter(action="deid.job_finish").count() == 1


def test_resume_queues_only_the_missing_files(monkeypatch, storage_root, import_root, society, dataset, society_admin):
    sent: list[list[str]] = []
    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: sent.append(paths))
    job = _run(society, dataset, society_admin)
    process_chunk(job.pk, sent[0][:1])
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.deid_job_resume(job=job, by=society_admin) == 2
    assert sent[1] == ["P-0001/b.png", "P-0002/c.jpg"]
    process_chunk(job.pk, sent[1])
    job.refresh_from_db()
    assert (job.status, job.done) == ("finished", 3)
    with pytest.raises(ValidationError):
        services.deid_job_resume(job=job, by=society_admin)


def test_cancel_stops_the_job(monkeypatch, storage_root, import_root, society, dataset, society_admin, steward):
    sent: list[list[str]] = []
    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: sent.append(paths))
    job = _run(society, dataset, society_admin)
    with pytest.raises(PermissionDenied):
        services.deid_job_cancel(job=job, by=steward)
    assert DeidJob.objects.get(pk=job.pk).status == "running"
    services.deid_job_cancel(job=job, by=society_admin)
    assert job.status == "cancelled"
    assert process_chunk(job.pk, sent[0]) == {"processed": 0}
    assert DeidFileResult.objects.count() == 0
    with pytest.raises(ValidationError):
        services.deid_job_cancel(job=job, by=society_admin)
    assert AuditEvent.objects.filter(action="deid.job_cancel").count() == 1


def test_start_refuses_an_empty_source_and_a_started_job(storage_root, import_root, society, dataset, society_admin):
    (import_root / "empty").mkdir()
    empty = _create(society, dataset, society_admin, source="empty")
    with pytest.raises(ValidationError):
        services.deid_job_start(job=empty, by=society_admin)
    assert DeidJob.objects.get(pk=empty.pk).status == "pending"
    job = _run(society, dataset, society_admin)
    with pytest.raises(ValidationError):
        services.deid_job_start(job=job, by=society_admin)


def test_uploaded_files_are_processed(storage_root, society, dataset, society_admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data, _e, _m = synthetic_file("endoscopy", seed=9, study_date=date(2024, 1, 1), subject="X")
    job = services.deid_job_create(
        society=society, dataset=dataset, source_kind="upload", institution_code="1310001", by=society_admin,
        uploads=[SimpleUploadedFile("x.jpg", data), SimpleUploadedFile("../y.bin", b"junk")],
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.deid_job_start(job=job, by=society_admin)
    job.refresh_from_db()
    assert (job.status, job.total, job.failed) == ("finished_with_failures", 2, 1)
    assert sorted(job.results.values_list("source_path", "status")) in (
        [("x.jpg", "changed"), ("y.bin", "failed")], [("x.jpg", "unchanged"), ("y.bin", "failed")])


# --- Release ------------------------------------------------------------------------------------


def test_release_from_a_finished_job_carries_its_report(storage_root, import_root, society, dataset, society_admin):
    job = _run(society, dataset, society_admin)
    assert job.status == "finished"
    release = services.deid_job_build_release(job=job, notes_ja="匿名化済み", by=society_admin)
    assert (release.source, release.source_reference) == ("deid_job", f"deid-job-{job.pk}")
    files = list(release.files.order_by("path").values_list("path", "subject_pseudonym"))
    assert [path for path, _s in files] == ["s00001/000001.jpg", "s00001/000002.png", "s00002/000001.jpg"] or \
        [path for path, _s in files] == ["s00001/000001.jpg", "s00002/000001.jpg", "s00002/000002.png"]
    assert release.case_count == 2
    job.refresh_from_db()
    assert job.release_id == release.pk
    report = deid_report_for_release(release)
    assert report is not None
    assert (report["job_id"], report["table_edition"], report["release"]["files"]) == (job.pk, "2024b", 3)
    assert AuditEvent.objects.filter(action="deid.job_release").count() == 1
    with pytest.raises(ValidationError):
        services.deid_job_build_release(job=job, by=society_admin)
    assert DatasetRelease.objects.count() == 1


def test_release_with_failures_needs_confirmation(storage_root, import_root, bad_file, society, dataset, society_admin):
    job = _run(society, dataset, society_admin)
    with pytest.raises(ValidationError) as excinfo:
        services.deid_job_build_release(job=job, by=society_admin)
    assert excinfo.value.code == "partial"
    assert DatasetRelease.objects.count() == 0
    release = services.deid_job_build_release(job=job, by=society_admin, include_partial=True)
    assert release.file_count == 3
    job.refresh_from_db()
    assert job.report["release"]["not_released"] == 1


def test_release_refused_for_running_job_and_to_non_admins(monkeypatch, storage_root, import_root, society, dataset,
                                                           society_admin, steward):
    monkeypatch.setattr(process_chunk, "delay", lambda job_id, paths: None)
    job = _run(society, dataset, society_admin)
    with pytest.raises(ValidationError) as excinfo:
        services.deid_job_build_release(job=job, by=society_admin)
    assert excinfo.value.code == "not_finished"
    with pytest.raises(PermissionDenied):
        services.deid_job_build_release(job=job, by=steward)
    assert DatasetRelease.objects.count() == 0
    assert AuditEvent.objects.filter(action="deid.job_release").count() == 0


def test_release_report_is_none_for_other_releases(storage_root, import_root, society, dataset, society_admin):
    from tests.factories.datasets import FileSpec, make_release
    from tests.factories.manifests import pseudonym

    release = make_release(dataset, [FileSpec(subject=pseudonym("P-1"))], store=False)
    assert deid_report_for_release(release) is None


# --- Command ------------------------------------------------------------------------------------


def test_command_mirrors_the_tree_and_summarises(import_root, tmp_path, capsys):
    out = tmp_path / "out"
    call_command("deidentify", str(import_root / FOLDER), str(out), "--option", "LMD", "--institution", "1310001")
    printed = capsys.readouterr().out
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "P-0001/a.jpg", "P-0001/b.png", "P-0002/c.jpg"]
    assert "[3/3]" in printed
    assert "failed 0" in printed.splitlines()[-1] or "failed 0" in printed


def test_command_fails_with_status_1_when_a_file_fails(import_root, bad_file, tmp_path, capsys):
    with pytest.raises(CommandError) as excinfo:
        call_command("deidentify", str(import_root / FOLDER), str(tmp_path / "out"), "--institution", "1310001")
    assert excinfo.value.returncode == 1
    assert str(excinfo.value) == "1 of 4 files failed."
    printed = capsys.readouterr().out
    assert "failed    P-0002/notes.bin (unsupported file type)" in printed
    assert "failed 1" in printed


def test_command_refuses_unknown_options(import_root, tmp_path):
    with pytest.raises(CommandError):
        call_command("deidentify", str(import_root), str(tmp_path / "out"), "--option", "NOPE", "--institution", "1")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("institution", [None, "", "  "])
def test_command_without_institution_refuses_at_start_and_writes_nothing(import_root, tmp_path, capsys, institution):
    before = sorted(p.relative_to(import_root).as_posix() for p in import_root.rglob("*"))
    extra = [] if institution is None else ["--institution", institution]

    with pytest.raises(CommandError) as excinfo:
        call_command("deidentify", str(import_root / FOLDER), str(tmp_path / "out"), *extra)

    assert str(excinfo.value) == (
        "--institution is required: every pseudonymous subject ID is derived from the institution code and "
        "the patient ID (e.g. --institution 1310001). Nothing was written."
    )
    assert not (tmp_path / "out").exists()
    assert capsys.readouterr().out == ""
    assert sorted(p.relative_to(import_root).as_posix() for p in import_root.rglob("*")) == before


def test_operator_may_create_for_any_society(storage_root, import_root, society, dataset):
    from portal.accounts.roles import Role  # noqa: F401 - the operator persona is made below

    operator = UserFactory(is_staff=True, is_superuser=True)
    from tests.factories import give_totp

    give_totp(operator)
    try:
        job = _create(society, dataset, operator)
    except PermissionDenied:
        pytest.skip("the operator role is not the superuser in this project")
    assert job.society == society


def test_dicom_files_take_subject_date_and_modality_from_the_header(storage_root, import_root, society, society_admin):
    ct = DatasetFactory(society=society, slug="jrs-ct", modality="ct")
    data = synthetic_file("ct", seed=5, study_date=date(2024, 4, 1), subject="P-0009")[0]
    path = import_root / "ct" / "study1" / "1.dcm"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    job = _run(society, ct, society_admin, source="ct", options=["LMD"])
    result = job.results.get()
    assert (job.status, result.kind, result.status) == ("finished", "dicom", "changed")
    assert len(result.subject_pseudonym) == 32
    assert result.modality.lower() == "ct"
    assert result.study_date is not None and result.study_date < date(2024, 4, 1)  # shifted into the past
    assert sum(job.report["actions"].values()) > 0
    release = services.deid_job_build_release(job=job, by=society_admin)
    assert list(release.files.values_list("path", flat=True)) == ["s00001/000001.dcm"]


def test_storage_prefix_source_is_walked_recursively(storage_root, society, dataset, society_admin):
    from django.core.files.base import ContentFile

    for name, seed in (("incoming/h1/P-0001/a.jpg", 1), ("incoming/h1/P-0002/sub/b.jpg", 2)):
        data = synthetic_file("endoscopy", seed=seed, study_date=date(2024, 1, 1), subject="X")[0]
        default_storage.save(name, ContentFile(data))
    job = _run(society, dataset, society_admin, source_kind="s3_prefix", source="/incoming/h1/")
    assert job.source == "incoming/h1"
    assert (job.status, job.total) == ("finished", 2)
    assert sorted(job.results.values_list("source_path", flat=True)) == ["P-0001/a.jpg", "P-0002/sub/b.jpg"]


def test_release_pages_show_how_the_files_were_anonymised(client, storage_root, import_root, society, dataset,
                                                          society_admin):
    from django.urls import reverse

    job = _run(society, dataset, society_admin, options=["LMD"])
    release = services.deid_job_build_release(job=job, notes_ja="匿名化済み", by=society_admin)
    client.force_login(society_admin)

    page = client.get(reverse("datasets:release_detail", args=[release.pk])).content.decode()

    assert 'data-testid="deid-report"' in page
    assert "2024b" in page and "<code>LMD</code>" in page
