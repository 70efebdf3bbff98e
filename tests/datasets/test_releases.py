"""Building and withdrawing releases: every file checked, opted-out subjects left out, never edited."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.datasets.manifest import FileProblem, canonical_manifest
from portal.datasets.models import Dataset, DatasetRelease, ReleaseFile, ReleaseImmutable
from portal.datasets.services import ReleaseRejected, release_build, release_withdraw
from portal.linkage.models import LinkageRecord
from portal.optout.models import OptOutRequest
from tests.factories import UserFactory
from tests.factories.datasets import DatasetFactory
from tests.factories.ethics import permitted_protocol
from tests.factories.manifests import JPEG, PNG, pseudonym, storage_files, stored_entry
from tests.support.ci import require

pytestmark = pytest.mark.django_db

IMPORT = DatasetRelease.Source.IMPORT
A = pseudonym("P-0001")
B = pseudonym("P-0002")


@pytest.fixture
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-gastric", modality="pathology_wsi", case_count=99)


def _entries() -> list:
    return [
        stored_entry("a/1.png", PNG + b"a1", subject=A, study_date=date(2024, 4, 1), annotation_path="a/1.json"),
        stored_entry("a/1.json", b'{"label": "adenocarcinoma"}', subject=A, study_date=date(2024, 4, 1),
                     media_type="application/json"),
        stored_entry("b/1.jpg", JPEG + b"b1", subject=B, study_date=date(2023, 5, 6), media_type="image/jpeg"),
    ]


def _opt_out(subject: str, society, **extra) -> OptOutRequest:  # type: ignore[no-untyped-def]
    handler = society.memberships.filter(role="admin").first()
    return OptOutRequest.objects.create(
        handled_by=handler.user if handler else UserFactory(),
        reference=f"OR-{subject[:6]}", society=society, subject_pseudonym=subject,
        received_at=timezone.now(), channel="phone", requester_type="subject",
        identity_verification="保険証で確認", extent="future_only", action_taken="stop_use", **extra,
    )


def _nothing_written() -> None:
    assert DatasetRelease.objects.count() == 0
    assert ReleaseFile.objects.count() == 0
    assert AuditEvent.objects.filter(action="datasets.release_built").count() == 0


# --- Success ------------------------------------------------------------------------------------


def test_release_build_writes_release_files_counts_and_audit(storage_root, dataset, society_admin):
    entries = _entries()
    release = release_build(dataset=dataset, entries=entries, source=IMPORT, by=society_admin,
                            source_reference="batch-1", notes_ja="初版", notes_en="First")

    assert (release.version, release.status, release.source) == (1, "available", "import")
    assert (release.file_count, release.image_count, release.case_count) == (3, 2, 2)
    assert release.total_bytes == sum(entry.size for entry in entries)
    assert (release.earliest_study_date, release.latest_study_date) == (date(2023, 5, 6), date(2024, 4, 1))
    assert release.excluded_subject_count == 0
    expected = [e.__class__(**{**e.__dict__, "modality": "pathology_wsi"}) for e in entries]
    assert release.manifest_sha256 == hashlib.sha256(canonical_manifest(expected)).hexdigest()
    assert canonical_manifest(expected).decode().splitlines()[0] == "\t".join([
        "a/1.json", str(entries[1].size), entries[1].sha256, "application/json", A, "2024-04-01",
        "pathology_wsi", "",
    ])
    files = {f.path: f for f in release.files.all()}
    assert sorted(files) == ["a/1.json", "a/1.png", "b/1.jpg"]
    assert files["a/1.json"].is_annotation is True
    assert files["a/1.png"].is_annotation is False
    assert files["a/1.png"].annotation_path == "a/1.json"
    assert files["b/1.jpg"].storage_key == entries[2].storage_key
    dataset.refresh_from_db()
    assert (dataset.case_count, dataset.image_count) == (2, 2)
    event = AuditEvent.objects.get(action="datasets.release_built")
    assert event.actor_id == society_admin.pk
    assert event.details["files"] == 3
    assert event.details["manifest_sha256"] == release.manifest_sha256
    # The linkage index follows the new release (annotation files are not indexed).
    assert sorted(LinkageRecord.objects.values_list("subject_pseudonym", "image_count")) == sorted([(A, 1), (B, 1)])


def test_release_versions_increase(storage_root, dataset, society_admin):
    first = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    second = release_build(
        dataset=dataset, entries=[stored_entry("c.png", PNG + b"c", subject=A, prefix="incoming-2/")],
        source=IMPORT, by=society_admin,
    )
    assert (first.version, second.version) == (1, 2)
    assert list(LinkageRecord.objects.values_list("release_id", flat=True)) == [second.pk]


def test_release_build_for_anonymisation_job_without_user(storage_root, dataset):
    release = release_build(dataset=dataset, entries=_entries(), source="deid_job", by=None,
                            source_reference="job-42")
    assert (release.source, release.source_reference, release.created_by) == ("deid_job", "job-42", None)


# --- Bad input, per file --------------------------------------------------------------------------


def test_release_build_reports_every_problem_by_file_and_writes_nothing(storage_root, dataset, society_admin):
    good = stored_entry("ok.png", PNG + b"ok", subject=A)
    missing = stored_entry("missing.png", PNG + b"m", subject=A)
    default_storage.delete(missing.storage_key)
    resized = stored_entry("size.png", PNG + b"s", subject=A)
    resized = resized.__class__(**{**resized.__dict__, "size": resized.size + 1})
    tampered = stored_entry("sha.png", PNG + b"t", subject=A)
    tampered = tampered.__class__(**{**tampered.__dict__, "sha256": "0" * 64})
    duplicate_content = stored_entry("copy.png", PNG + b"ok", subject=A)
    escaping = stored_entry("escape.png", PNG + b"e", subject=A, prefix="esc/")
    escaping = escaping.__class__(**{**escaping.__dict__, "path": "../escape.png"})
    entries = [
        good, missing, resized, tampered, duplicate_content,
        stored_entry("ok.png", PNG + b"again", subject=A, prefix="other/"),
        stored_entry("ann.png", PNG + b"n", subject=A, annotation_path="nowhere.json"),
        stored_entry("who.png", PNG + b"w", subject="P-0001"),
        stored_entry("mod.png", PNG + b"x", subject=A, modality="photo"),
        stored_entry("future.png", PNG + b"f", subject=A, study_date=timezone.localdate() + timedelta(days=1)),
        escaping,
        stored_entry(f"{A[:8]}/named.png", PNG + b"p", subject=A),
    ]
    with pytest.raises(ReleaseRejected) as excinfo:
        release_build(dataset=dataset, entries=entries, source=IMPORT, by=society_admin)

    future = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert excinfo.value.problems == [
        FileProblem("ok.png", "The file is listed more than once."),
        FileProblem("ann.png", "The annotation file “nowhere.json” is not in the manifest."),
        FileProblem("who.png", "The subject ID is not a society-common pseudonym (32 lower-case hexadecimal digits)."),
        FileProblem("mod.png", "Unknown modality “photo”."),
        FileProblem("future.png", f"The study date {future} is in the future."),
        FileProblem("../escape.png", "The path must be relative, without “.” or “..”."),
        FileProblem(f"{A[:8]}/named.png", "The path contains the subject's pseudonym; name files without it."),
        FileProblem("missing.png", "The file is missing from the storage."),
        FileProblem("size.png", f"The size differs: the manifest says {resized.size} bytes, the stored file has {resized.size - 1}."),
        FileProblem("sha.png", "The SHA-256 checksum differs from the manifest."),
        FileProblem("copy.png", "The same content as “ok.png” (a duplicate file)."),
    ]
    assert excinfo.value.messages[0] == "ok.png: The file is listed more than once."
    _nothing_written()


def test_release_build_refuses_an_empty_manifest(storage_root, dataset, society_admin):
    with pytest.raises(ReleaseRejected) as excinfo:
        release_build(dataset=dataset, entries=[], source=IMPORT, by=society_admin)
    assert excinfo.value.messages == ["The manifest lists no files."]
    _nothing_written()


def test_release_build_refused_when_protocol_suspended(storage_root, society, society_admin):
    dataset = DatasetFactory(society=society, protocol=permitted_protocol(status="suspended"))
    with pytest.raises(ValidationError) as excinfo:
        release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    assert excinfo.value.messages == ["No data may flow under the research protocol: The protocol is “Suspended”."]
    _nothing_written()


def test_release_build_refused_for_withdrawn_dataset(storage_root, society, society_admin):
    dataset = DatasetFactory(society=society, status="withdrawn")
    with pytest.raises(ValidationError) as excinfo:
        release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    assert excinfo.value.messages == ["A withdrawn dataset gets no new release; publish it again first."]
    _nothing_written()


@pytest.mark.parametrize("who", ["outsider", "steward"])
def test_release_build_refused_to_non_admins(storage_root, dataset, outsider, steward, who):
    with pytest.raises(PermissionDenied):
        release_build(dataset=dataset, entries=_entries(), source=IMPORT,
                      by={"outsider": outsider, "steward": steward}[who])
    _nothing_written()
    assert Dataset.objects.get(pk=dataset.pk).case_count == 99


def test_release_build_without_user_refused_unless_anonymisation_job(storage_root, dataset):
    with pytest.raises(PermissionDenied):
        release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=None)
    _nothing_written()


# --- Opt-out ------------------------------------------------------------------------------------


def test_opted_out_subject_is_left_out_of_the_next_release(
    storage_root, dataset, society, society_admin, django_capture_on_commit_callbacks,
):
    first = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    assert first.files.filter(subject_pseudonym=A).count() == 2
    _opt_out(A, society)

    entries = [
        stored_entry("a/1.png", PNG + b"a1", subject=A, annotation_path="a/1.json", prefix="v2/"),
        stored_entry("a/1.json", b'{"label": 1}', subject=A, prefix="v2/"),
        stored_entry("b/1.jpg", JPEG + b"b1", subject=B, prefix="v2/"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        second = release_build(dataset=dataset, entries=entries, source=IMPORT, by=society_admin)

    assert list(second.files.values_list("path", flat=True)) == ["b/1.jpg"]
    assert (second.excluded_subject_count, second.case_count, second.image_count) == (1, 1, 1)
    # The opted-out subject's files, image and annotation, are not left in the storage.
    assert storage_files(storage_root / "v2") == ["b/1.jpg"]
    # The earlier release is never edited; it is what the opt-out propagation lists.
    assert first.files.filter(subject_pseudonym=A).count() == 2
    assert list(LinkageRecord.objects.values_list("subject_pseudonym", flat=True)) == [B]


def test_opt_out_limited_to_another_modality_does_not_exclude(storage_root, dataset, society, society_admin):
    _opt_out(A, society, modalities=["endoscopy"])
    release = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    assert release.excluded_subject_count == 0
    assert release.file_count == 3


def test_release_of_only_opted_out_subjects_is_refused(storage_root, dataset, society, society_admin):
    _opt_out(A, society)
    entries = [stored_entry("a.png", PNG, subject=A)]
    with pytest.raises(ReleaseRejected) as excinfo:
        release_build(dataset=dataset, entries=entries, source=IMPORT, by=society_admin)
    assert excinfo.value.messages == ["Every file belongs to subjects who opted out; the release would be empty."]
    _nothing_written()


# --- Withdrawal and immutability ----------------------------------------------------------------


def test_release_withdraw_records_reason_and_reindexes(storage_root, dataset, society_admin):
    release = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    release_withdraw(release=release, reason="同意撤回の反映漏れ", by=society_admin)

    release.refresh_from_db()
    assert release.status == "withdrawn"
    assert release.withdrawal_reason == "同意撤回の反映漏れ"
    assert release.withdrawn_by == society_admin
    assert release.withdrawn_at is not None
    assert LinkageRecord.objects.count() == 0
    assert AuditEvent.objects.get(action="datasets.release_withdrawn").details == {
        "dataset": "jsp-gastric", "version": 1, "reason": "同意撤回の反映漏れ",
    }


def test_release_withdraw_refusals_change_nothing(storage_root, dataset, society_admin, outsider):
    release = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    with pytest.raises(ValidationError) as excinfo:
        release_withdraw(release=release, reason="", by=society_admin)
    assert excinfo.value.message_dict == {"reason": ["Say why the release is withdrawn."]}
    with pytest.raises(PermissionDenied):
        release_withdraw(release=release, reason="理由", by=outsider)
    release.refresh_from_db()
    assert release.status == "available"
    assert AuditEvent.objects.filter(action="datasets.release_withdrawn").count() == 0

    release_withdraw(release=release, reason="理由", by=society_admin)
    with pytest.raises(ValidationError) as excinfo:
        release_withdraw(release=release, reason="もう一度", by=society_admin)
    assert excinfo.value.messages == ["The release has already been withdrawn."]
    release.refresh_from_db()
    assert release.withdrawal_reason == "理由"


def test_model_guards_refuse_edits_and_deletes(storage_root, dataset, society_admin):
    release = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    file = release.files.first()

    release.notes_ja = "書き換え"
    with pytest.raises(ReleaseImmutable):
        release.save()
    with pytest.raises(ReleaseImmutable):
        release.save(update_fields=["notes_ja"])
    with pytest.raises(ReleaseImmutable):
        release.delete()
    with pytest.raises(ReleaseImmutable):
        DatasetRelease.objects.filter(pk=release.pk).update(notes_ja="書き換え")
    with pytest.raises(ReleaseImmutable):
        DatasetRelease.objects.filter(pk=release.pk).delete()
    file.sha256 = "0" * 64
    with pytest.raises(ReleaseImmutable):
        file.save()
    with pytest.raises(ReleaseImmutable):
        file.delete()
    with pytest.raises(ReleaseImmutable):
        ReleaseFile.objects.filter(pk=file.pk).update(size=0)
    with pytest.raises(ReleaseImmutable):
        ReleaseFile.objects.filter(pk=file.pk).delete()

    release.refresh_from_db()
    file.refresh_from_db()
    assert release.notes_ja == ""
    assert file.sha256 != "0" * 64
    assert ReleaseFile.objects.count() == 3


def _raw_refused(sql: str, params: list, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(DatabaseError) as excinfo, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert str(excinfo.value).splitlines()[0] == message


def test_postgresql_triggers_refuse_raw_update_and_delete(storage_root, dataset, society_admin):
    require(connection.vendor == "postgresql", "the immutability triggers exist on PostgreSQL only")
    release = release_build(dataset=dataset, entries=_entries(), source=IMPORT, by=society_admin)
    file = release.files.first()

    edited = "releases are never edited: only their withdrawal may be recorded"
    _raw_refused("UPDATE datasets_releasefile SET size = 0 WHERE id = %s", [file.pk],
                 "release files are immutable: UPDATE refused on datasets_releasefile")
    _raw_refused("DELETE FROM datasets_releasefile WHERE id = %s", [file.pk],
                 "release files are immutable: DELETE refused on datasets_releasefile")
    _raw_refused("UPDATE datasets_datasetrelease SET notes_ja = 'x' WHERE id = %s", [release.pk], edited)
    _raw_refused("UPDATE datasets_datasetrelease SET file_count = 0, status = 'withdrawn' WHERE id = %s",
                 [release.pk], edited)
    _raw_refused("DELETE FROM datasets_datasetrelease WHERE id = %s", [release.pk],
                 "releases are never deleted: DELETE refused on datasets_datasetrelease")

    # Recording the withdrawal is the one change allowed; after it, nothing changes any more.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE datasets_datasetrelease SET status = 'withdrawn', withdrawn_at = now(), withdrawal_reason = 'r' "
            "WHERE id = %s",
            [release.pk],
        )
    _raw_refused("UPDATE datasets_datasetrelease SET status = 'available' WHERE id = %s", [release.pk],
                 "a withdrawn release stays withdrawn")
    release.refresh_from_db()
    file.refresh_from_db()
    assert (release.status, release.notes_ja, release.file_count) == ("withdrawn", "", 3)
    assert file.size > 0
