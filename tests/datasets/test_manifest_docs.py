"""The release upload page documents the manifest from the parser's own column table, and the
example manifest it offers parses and builds a release as it is."""

from __future__ import annotations

import io
import re
from dataclasses import fields

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.core.vocabulary import Modality
from portal.datasets.manifest import (
    EXAMPLE_PSEUDONYMS,
    MANIFEST_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ManifestRow,
    parse_manifest,
)
from portal.datasets.models import DatasetRelease
from portal.lib.pseudonym import is_pseudonym
from tests.factories.datasets import DatasetFactory
from tests.factories.manifests import PNG

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-gastric", modality="pathology_wsi")


@pytest.fixture
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


def _upload_page(client, user, dataset) -> str:  # type: ignore[no-untyped-def]
    client.force_login(user)
    response = client.get(reverse("datasets:release_upload", args=[dataset.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_parser_reads_exactly_the_documented_columns():
    read = {field.name for field in fields(ManifestRow)} - {"line"}

    assert read == {column.name for column in MANIFEST_COLUMNS}
    assert (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) == tuple(column.name for column in MANIFEST_COLUMNS)


def test_parser_refuses_a_manifest_without_each_required_column():
    for missing in REQUIRED_COLUMNS:
        header = ",".join(name for name in REQUIRED_COLUMNS if name != missing)

        rows, problems = parse_manifest(io.BytesIO(f"{header}\n".encode()), "manifest.csv")

        assert rows == []
        assert [str(p) for p in problems] == [f"manifest.csv: The manifest lacks the columns: {missing}."]


def test_upload_page_documents_every_column(client, society_admin, dataset):
    body = _upload_page(client, society_admin, dataset)

    assert re.findall(r'<tr data-column="([a-z0-9_]+)">', body) == [column.name for column in MANIFEST_COLUMNS]
    row = re.search(r'<tr data-column="subject_pseudonym">(.*?)</tr>', body, re.S).group(1)
    assert "必須" in row
    assert "32桁の16進数（0〜9、a〜f の英小文字）" in row
    assert "列ごと省略することも" in re.search(r'<tr data-column="sha256">(.*?)</tr>', body, re.S).group(1)
    assert "列は必須（値は空欄可）" in re.search(r'<tr data-column="study_date">(.*?)</tr>', body, re.S).group(1)


def test_upload_page_lists_every_modality_value(client, society_admin, dataset):
    body = _upload_page(client, society_admin, dataset)

    table = re.search(r'data-testid="manifest-modalities".*?</table>', body, re.S).group(0)
    assert re.findall(r"<code>([a-z_]+)</code>", table) == list(Modality.values)


def test_upload_page_explains_the_pseudonym(client, society_admin, dataset):
    body = _upload_page(client, society_admin, dataset)

    paragraph = re.search(r'data-testid="manifest-pseudonym">(.*?)</p>', body, re.S).group(1)
    assert "32桁の16進数" in paragraph
    assert EXAMPLE_PSEUDONYMS[0] in paragraph
    assert all(is_pseudonym(example) for example in EXAMPLE_PSEUDONYMS)


def test_example_manifest_is_written_from_the_column_table(client, society_admin, dataset):
    client.force_login(society_admin)

    response = client.get(reverse("datasets:manifest_example", args=[dataset.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="manifest-example.csv"'
    text = response.content.decode("utf-8-sig")
    assert text.splitlines() == [
        "path,subject_pseudonym,study_date,modality,annotation_path,sha256",
        f"image0001.png,{EXAMPLE_PSEUDONYMS[0]},2024-04-01,pathology_wsi,image0001_mask.png,",
        f"image0001_mask.png,{EXAMPLE_PSEUDONYMS[0]},2024-04-01,pathology_wsi,,",
        f"image0002.png,{EXAMPLE_PSEUDONYMS[1]},,,,",
    ]


def test_example_manifest_parses_cleanly(client, society_admin, dataset):
    client.force_login(society_admin)
    content = client.get(reverse("datasets:manifest_example", args=[dataset.pk])).content

    rows, problems = parse_manifest(io.BytesIO(content), "manifest-example.csv")

    assert problems == []
    assert [row.path for row in rows] == ["image0001.png", "image0001_mask.png", "image0002.png"]


def test_example_manifest_builds_a_release_as_it_is(client, society_admin, dataset, storage_root):
    client.force_login(society_admin)
    content = client.get(reverse("datasets:manifest_example", args=[dataset.pk])).content
    files = [SimpleUploadedFile(name, PNG + name.encode(), content_type="image/png")
             for name in ("image0001.png", "image0001_mask.png", "image0002.png")]

    response = client.post(reverse("datasets:release_upload", args=[dataset.pk]), {
        "files": files, "manifest": SimpleUploadedFile("manifest-example.csv", content, content_type="text/csv")})

    release = DatasetRelease.objects.get()
    assert response.status_code == 302
    assert (release.file_count, release.case_count) == (3, 2)
    assert sorted(release.files.values_list("path", "is_annotation")) == [
        ("image0001.png", False), ("image0001_mask.png", True), ("image0002.png", False)]


def test_example_manifest_refused_to_outsiders_and_members_without_admin(client, outsider, steward, dataset):
    client.force_login(outsider)
    assert client.get(reverse("datasets:manifest_example", args=[dataset.pk])).status_code == 404
    client.force_login(steward)
    assert client.get(reverse("datasets:manifest_example", args=[dataset.pk])).status_code == 403
