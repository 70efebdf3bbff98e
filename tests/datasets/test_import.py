"""Importing folders of already-anonymised files: per-file problems, nothing left after a failure,
the release_import command, and the same path against S3-compatible storage (moto)."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from io import StringIO

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from moto.server import ThreadedMotoServer

from portal.audit.models import AuditEvent
from portal.datasets.manifest import FileProblem, sniff_media_type
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.datasets.services import ReleaseRejected, release_import_folder
from portal.optout.models import OptOutRequest
from tests.factories.datasets import DatasetFactory
from tests.factories.manifests import JPEG, PNG, pseudonym, row, storage_files, write_folder

pytestmark = pytest.mark.django_db

A = pseudonym("P-0001")
B = pseudonym("P-0002")
DICOM = b"\x00" * 128 + b"DICM" + b"\x02\x00" * 8


@pytest.fixture
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-gastric", modality="ct")


def _good_folder(folder):  # type: ignore[no-untyped-def]
    files = {"a/1.dcm": DICOM, "a/1.json": b'{"label": "tumour"}', "b/2.png": PNG, "b/3.jpg": JPEG}
    rows = [
        row("a/1.dcm", A, annotation_path="a/1.json"),
        row("a/1.json", A),
        row("b/2.png", B, "2023-01-02", modality="xray", sha256=hashlib.sha256(PNG).hexdigest()),
        row("b/3.jpg", B, ""),
    ]
    return write_folder(folder, files, rows)


def _nothing_published(storage_root) -> None:  # type: ignore[no-untyped-def]
    assert DatasetRelease.objects.count() == 0
    assert ReleaseFile.objects.count() == 0
    assert AuditEvent.objects.filter(action="datasets.release_built").count() == 0
    assert storage_files(storage_root) == [] if storage_root.exists() else True


def test_import_folder_builds_release_with_media_types(storage_root, dataset, society_admin, tmp_path):
    folder = _good_folder(tmp_path / "in")
    release = release_import_folder(dataset=dataset, folder=folder, by=society_admin, notes_ja="初版")

    assert (release.version, release.source, release.file_count, release.image_count) == (1, "import", 4, 3)
    assert release.source_reference == str(folder)
    assert release.notes_ja == "初版"
    files = {f.path: f for f in release.files.all()}
    assert {path: f.media_type for path, f in files.items()} == {
        "a/1.dcm": "application/dicom", "a/1.json": "application/json", "b/2.png": "image/png",
        "b/3.jpg": "image/jpeg",
    }
    assert files["b/2.png"].modality == "xray"
    assert files["a/1.dcm"].modality == "ct"
    assert files["b/3.jpg"].study_date is None
    assert files["a/1.json"].is_annotation is True
    stored = storage_files(storage_root)
    assert len(stored) == 4
    prefix = stored[0].split("/a/")[0]
    assert prefix.startswith("releases/jsp-gastric/incoming-")
    assert stored == [f"{prefix}/a/1.dcm", f"{prefix}/a/1.json", f"{prefix}/b/2.png", f"{prefix}/b/3.jpg"]
    assert files["b/2.png"].storage_key == f"{prefix}/b/2.png"


def test_import_reads_a_tsv_manifest_named_explicitly(storage_root, dataset, society_admin, tmp_path):
    folder = write_folder(tmp_path / "in", {"x.png": PNG}, [row("x.png", A)], manifest="list.tsv")
    manifest = folder / "list.tsv"
    outside = tmp_path / "list.tsv"
    manifest.rename(outside)
    release = release_import_folder(dataset=dataset, folder=folder, by=society_admin, manifest=outside)
    assert list(release.files.values_list("path", flat=True)) == ["x.png"]


def test_import_reports_every_problem_by_file_and_stores_nothing(storage_root, dataset, society_admin, tmp_path):
    files = {"ok.png": PNG, "sha.png": PNG + b"x", "extra.png": PNG + b"e", "date.png": PNG + b"d"}
    rows = [
        row("ok.png", A),
        row("gone.png", A),
        row("sha.png", A, sha256="0" * 64),
        row("folder.png", A),
        row("broken.png", A),
        row("date.png", A, "2024-13-01"),
    ]
    folder = write_folder(tmp_path / "in", files, rows)
    (folder / "folder.png").mkdir()
    os.symlink(folder / "nowhere", folder / "broken.png")

    with pytest.raises(ReleaseRejected) as excinfo:
        release_import_folder(dataset=dataset, folder=folder, by=society_admin)

    assert excinfo.value.problems == [
        FileProblem("date.png", "The study date “2024-13-01” is not a date (write YYYY-MM-DD)."),
        FileProblem("gone.png", "Listed in the manifest but missing from the folder."),
        FileProblem("sha.png", "The SHA-256 checksum differs from the manifest."),
        FileProblem("folder.png", "This is a folder, not a file."),
        FileProblem("broken.png", "The file cannot be read."),
        FileProblem("extra.png", "In the folder but not listed in the manifest."),
    ]
    _nothing_published(storage_root)


def test_import_reports_duplicates_and_manifest_rules_before_copying(storage_root, dataset, society_admin, tmp_path):
    files = {"one.png": PNG, "two.png": PNG, "bad.png": PNG + b"b"}
    rows = [row("one.png", A), row("two.png", A), row("one.png", A), row("bad.png", "patient-7", annotation_path="x.json")]
    folder = write_folder(tmp_path / "in", files, rows)
    with pytest.raises(ReleaseRejected) as excinfo:
        release_import_folder(dataset=dataset, folder=folder, by=society_admin)
    assert [str(problem) for problem in excinfo.value.problems] == [
        "one.png: The file is listed more than once.",
        "bad.png: The subject ID is not a society-common pseudonym (32 lower-case hexadecimal digits).",
        "bad.png: The annotation file “x.json” is not in the manifest.",
        "two.png: The same content as “one.png” (a duplicate file).",
        "one.png: The same content as “one.png” (a duplicate file).",
    ]
    _nothing_published(storage_root)


def test_import_without_manifest_or_with_missing_columns(storage_root, dataset, society_admin, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.png").write_bytes(PNG)
    with pytest.raises(ReleaseRejected) as excinfo:
        release_import_folder(dataset=dataset, folder=folder, by=society_admin)
    assert excinfo.value.messages == [
        "No manifest found: put manifest.csv or manifest.tsv in the folder, or name it."
    ]
    (folder / "manifest.csv").write_text("path,subject\nx.png,abc\n", encoding="utf-8")
    with pytest.raises(ReleaseRejected) as excinfo:
        release_import_folder(dataset=dataset, folder=folder, by=society_admin)
    assert excinfo.value.messages == [
        "manifest.csv: The manifest lacks the columns: subject_pseudonym, study_date, modality, annotation_path."
    ]
    _nothing_published(storage_root)


def test_failure_after_copying_deletes_every_copied_object(storage_root, dataset, society, society_admin, tmp_path):
    # Every subject opted out: release_build refuses after the files were copied.
    OptOutRequest.objects.create(
        reference="OR-1", society=society, subject_pseudonym=A, received_at="2025-01-01T00:00:00Z",
        channel="phone", requester_type="subject", identity_verification="確認済み", extent="future_only",
        action_taken="stop_use", handled_by=society_admin,
    )
    folder = write_folder(tmp_path / "in", {"x.png": PNG}, [row("x.png", A)])
    with pytest.raises(ReleaseRejected) as excinfo:
        release_import_folder(dataset=dataset, folder=folder, by=society_admin)
    assert excinfo.value.messages == ["Every file belongs to subjects who opted out; the release would be empty."]
    _nothing_published(storage_root)


def test_unexpected_error_while_building_leaves_nothing(storage_root, dataset, society_admin, tmp_path, monkeypatch):
    def broken(*, release):  # type: ignore[no-untyped-def]
        raise RuntimeError("index unavailable")

    monkeypatch.setattr("portal.linkage.services.linkage_index_release", broken)
    folder = _good_folder(tmp_path / "in")
    with pytest.raises(RuntimeError):
        release_import_folder(dataset=dataset, folder=folder, by=society_admin)
    _nothing_published(storage_root)


def test_sniff_media_type_prefers_content_over_name():
    assert sniff_media_type("scan.dat", DICOM) == "application/dicom"
    assert sniff_media_type("photo.png", JPEG) == "image/jpeg"
    assert sniff_media_type("slide.svs", b"II*\x00rest") == "image/tiff"
    assert sniff_media_type("labels.csv", b"a,b\n") == "text/csv"
    assert sniff_media_type("blob", b"\x00\x01") == "application/octet-stream"


# --- The command --------------------------------------------------------------------------------


def test_command_imports_and_prints_progress(storage_root, dataset, society_admin, tmp_path):
    files = {f"img/{index:03d}.png": PNG + str(index).encode() for index in range(150)}
    rows = [row(path, A if index % 2 else B) for index, path in enumerate(files)]
    folder = write_folder(tmp_path / "in", files, rows)
    out, err = StringIO(), StringIO()

    call_command("release_import", "jsp-gastric", str(folder), "--by", society_admin.email,
                 "--notes-ja", "一括取込", stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines[:2]] == ["100/150 files", "150/150 files"]
    assert lines[1].startswith(f"150/150 files, {sum(len(c) for c in files.values())} bytes, ")
    assert lines[1].endswith(" s")
    assert lines[2] == (
        f"Release v1 of jsp-gastric: 150 files, {sum(len(c) for c in files.values())} bytes, 2 cases, "
        "0 subjects excluded by opt-out."
    )
    assert err.getvalue() == ""
    assert DatasetRelease.objects.get().notes_ja == "一括取込"


def test_command_prints_each_problem_and_exits_1(storage_root, dataset, society_admin, tmp_path):
    folder = write_folder(tmp_path / "in", {"extra.png": PNG}, [row("gone.png", A)])
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("release_import", "jsp-gastric", str(folder), "--by", society_admin.email,
                     stdout=out, stderr=err)
    assert excinfo.value.returncode == 1
    assert str(excinfo.value) == "Import refused: 2 problem(s); nothing was published."
    assert err.getvalue().splitlines() == [
        "gone.png: Listed in the manifest but missing from the folder.",
        "extra.png: In the folder but not listed in the manifest.",
    ]
    _nothing_published(storage_root)


def test_command_refuses_non_admin_and_unknown_dataset(storage_root, dataset, outsider, tmp_path):
    folder = _good_folder(tmp_path / "in")
    with pytest.raises(CommandError) as excinfo:
        call_command("release_import", "jsp-gastric", str(folder), "--by", outsider.email,
                     stdout=StringIO(), stderr=StringIO())
    assert str(excinfo.value) == "Refused: Only an admin of the society or the platform operator can do this."
    with pytest.raises(CommandError) as excinfo:
        call_command("release_import", "nope", str(folder), "--by", outsider.email,
                     stdout=StringIO(), stderr=StringIO())
    assert str(excinfo.value) == "No dataset with the slug 'nope'."
    _nothing_published(storage_root)


# --- S3-compatible storage ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_bucket(settings) -> Iterator:  # type: ignore[no-untyped-def]
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"releases-{uuid.uuid4().hex[:12]}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                   "region_name": "ap-northeast-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **credentials)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "access_key": "testing",
                    "secret_key": "testing", "region_name": "ap-northeast-1", "file_overwrite": False},
    }}
    try:
        yield s3, bucket
    finally:
        s3.close()
        server.stop()


def _keys(s3, bucket) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_import_into_s3_storage_and_cleanup_on_failure(s3_bucket, dataset, society_admin, tmp_path):
    s3, bucket = s3_bucket
    folder = _good_folder(tmp_path / "good")
    release = release_import_folder(dataset=dataset, folder=folder, by=society_admin)

    keys = _keys(s3, bucket)
    assert sorted(release.files.values_list("storage_key", flat=True)) == keys
    assert len(keys) == 4
    stored = s3.get_object(Bucket=bucket, Key=release.files.get(path="b/2.png").storage_key)["Body"].read()
    assert stored == PNG

    # A failed import (checksum tampered in storage after copying) leaves the bucket as it was.
    bad = write_folder(tmp_path / "bad", {"y.png": PNG + b"y"}, [row("y.png", A)])
    from portal.datasets.services import importing

    original = importing.release_build

    def tamper_then_build(**kwargs):  # type: ignore[no-untyped-def]
        for entry in kwargs["entries"]:
            s3.put_object(Bucket=bucket, Key=entry.storage_key, Body=b"changed")
        return original(**kwargs)

    importing.release_build = tamper_then_build
    try:
        with pytest.raises(ReleaseRejected) as excinfo:
            release_import_folder(dataset=dataset, folder=bad, by=society_admin)
    finally:
        importing.release_build = original
    assert [str(p) for p in excinfo.value.problems] == [
        f"y.png: The size differs: the manifest says {len(PNG) + 1} bytes, the stored file has 7.",
        "y.png: The SHA-256 checksum differs from the manifest.",
    ]
    assert _keys(s3, bucket) == keys
    assert DatasetRelease.objects.count() == 1
