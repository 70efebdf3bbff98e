"""The society admins' dataset pages: who sees what, each action through the browser, the upload
form (Japanese errors, nothing kept after a failure), and constant query counts."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from portal.datasets.models import Dataset, DatasetRelease, ReleaseFile
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.datasets import DatasetFactory, FileSpec, make_release, published_notice
from tests.factories.ethics import permitted_protocol
from tests.factories.manifests import JPEG, PNG, pseudonym, storage_files

pytestmark = pytest.mark.django_db

A = pseudonym("P-0001")
B = pseudonym("P-0002")


def ja(message: str, **params: object) -> str:
    """``message`` as a Japanese page shows it (the English msgid until its translation is merged)."""
    with translation.override("ja"):
        text = translation.gettext(message)
    return text % params if params else text


@pytest.fixture
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-gastric", title_ja="胃生検病理画像", modality="pathology_wsi")


@pytest.fixture
def admin_client(client, society_admin):  # type: ignore[no-untyped-def]
    client.force_login(society_admin)
    return client


# --- Who sees what ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, dataset):
    response = client.get(reverse("datasets:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_list_shows_only_the_admins_societies(admin_client, dataset):
    DatasetFactory(society=SocietyFactory(slug="jges"), slug="jges-colon", title_ja="大腸内視鏡")
    response = admin_client.get(reverse("datasets:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<html lang="ja">' in body
    assert 'data-dataset="jsp-gastric"' in body
    assert "jges-colon" not in body


def test_list_refused_to_users_who_manage_nothing(client, outsider, steward):
    for user in (outsider, steward):
        client.force_login(user)
        assert client.get(reverse("datasets:list")).status_code == 403


def test_dataset_pages_404_for_outsiders_and_403_for_members_without_admin(client, dataset, outsider, steward):
    pages = [reverse("datasets:detail", args=[dataset.pk]), reverse("datasets:edit", args=[dataset.pk]),
             reverse("datasets:release_upload", args=[dataset.pk])]
    client.force_login(outsider)
    assert [client.get(page).status_code for page in pages] == [404, 404, 404]
    client.force_login(steward)
    assert [client.get(page).status_code for page in pages] == [403, 403, 403]


def test_operator_manages_every_society(client, dataset):
    operator = UserFactory(is_staff=True)
    give_totp(operator)
    client.force_login(operator)
    assert client.get(reverse("datasets:detail", args=[dataset.pk])).status_code == 200
    assert 'data-dataset="jsp-gastric"' in client.get(reverse("datasets:list")).content.decode()


def test_unknown_dataset_and_release_are_404(admin_client):
    assert admin_client.get(reverse("datasets:detail", args=[999])).status_code == 404
    assert admin_client.get(reverse("datasets:release_detail", args=[999])).status_code == 404


def test_other_societys_admin_gets_404_and_changes_nothing(client, dataset):
    other = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(slug="jges"), user=other, role="admin")
    give_totp(other)
    client.force_login(other)
    published_notice(dataset)
    assert client.post(reverse("datasets:publish", args=[dataset.pk])).status_code == 404
    assert client.post(reverse("datasets:withdraw", args=[dataset.pk]), {"reason": "x"}).status_code == 404
    dataset.refresh_from_db()
    assert dataset.status == "draft"


def test_steward_post_refused_and_changes_nothing(client, dataset, steward):
    published_notice(dataset)
    client.force_login(steward)
    assert client.post(reverse("datasets:publish", args=[dataset.pk])).status_code == 403
    assert client.post(reverse("datasets:edit", args=[dataset.pk]), {"title_ja": "乗っ取り"}).status_code == 403
    dataset.refresh_from_db()
    assert (dataset.status, dataset.title_ja) == ("draft", "胃生検病理画像")


# --- Creating, editing, publishing, withdrawing -------------------------------------------------


def _form_data(protocol, **overrides):  # type: ignore[no-untyped-def]
    return {
        "society": "", "slug": "jsp-colon", "title_ja": "大腸病理画像", "title_en": "", "description_ja": "",
        "description_en": "", "modality": "pathology_wsi", "body_part": "大腸", "disease_areas": "大腸がん",
        "annotation_granularity": "diagnosis", "annotation_format": "JSON", "case_count": "5",
        "image_count": "10", "collection_start": "2020-01-01", "collection_end": "2021-01-01",
        "legal_status": "pseudonymised", "protocol": str(protocol.pk), "access_tier": "controlled",
    } | overrides


def test_create_through_the_form(admin_client, society):
    protocol = permitted_protocol()
    response = admin_client.post(reverse("datasets:create"), _form_data(protocol, society=str(society.pk)))
    dataset = Dataset.objects.get(slug="jsp-colon")
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:detail", args=[dataset.pk])
    assert (dataset.society, dataset.protocol, dataset.status) == (society, protocol, "draft")


def test_create_form_shows_errors_in_japanese(admin_client, society):
    protocol = permitted_protocol()
    data = _form_data(protocol, society=str(society.pk), title_ja="", collection_start="2022-01-01")
    response = admin_client.post(reverse("datasets:create"), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert ja("This field is required.") in body
    assert Dataset.objects.count() == 0

    response = admin_client.post(reverse("datasets:create"), _form_data(protocol, society=str(society.pk),
                                                                      collection_start="2022-01-01"))
    assert ja("The collection period must end on or after the day it starts.") in response.content.decode()
    assert Dataset.objects.count() == 0


def test_create_refuses_a_society_the_user_does_not_manage(admin_client):
    other = SocietyFactory(slug="jges")
    response = admin_client.post(reverse("datasets:create"), _form_data(permitted_protocol(), society=str(other.pk)))
    assert response.status_code == 200
    assert Dataset.objects.count() == 0


def test_edit_keeps_protocol_fixed_once_published(admin_client, dataset):
    dataset.status = "published"
    dataset.published_at = timezone.now()
    dataset.save()
    original = dataset.protocol
    data = _form_data(permitted_protocol(), slug="jsp-gastric", title_ja="改題")
    response = admin_client.post(reverse("datasets:edit", args=[dataset.pk]), data)
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert (dataset.title_ja, dataset.protocol) == ("改題", original)


def test_detail_shows_publish_checklist(admin_client, dataset):
    response = admin_client.get(reverse("datasets:detail", args=[dataset.pk]))
    body = response.content.decode()
    assert 'data-ok="yes"' in body
    assert 'data-ok="no"' in body
    assert ja("No published opt-out notice covers this dataset.") in body
    assert ja("Approved and permitted.") in body


def test_publish_refused_then_allowed(admin_client, dataset):
    response = admin_client.post(reverse("datasets:publish", args=[dataset.pk]), follow=True)
    assert ja("No published opt-out notice covers this dataset.") in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.status == "draft"

    published_notice(dataset)
    response = admin_client.post(reverse("datasets:publish", args=[dataset.pk]))
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.status == "published"


def test_withdraw_needs_reason_then_withdraws(admin_client, dataset):
    dataset.status = "published"
    dataset.published_at = timezone.now()
    dataset.save()
    admin_client.post(reverse("datasets:withdraw", args=[dataset.pk]), {"reason": ""})
    dataset.refresh_from_db()
    assert dataset.status == "published"
    admin_client.post(reverse("datasets:withdraw", args=[dataset.pk]), {"reason": "不備のため"})
    dataset.refresh_from_db()
    assert (dataset.status, dataset.withdrawal_reason) == ("withdrawn", "不備のため")


# --- Upload form --------------------------------------------------------------------------------


def _manifest(rows: list[str], name: str = "manifest.csv") -> SimpleUploadedFile:
    text = "path,subject_pseudonym,study_date,modality,annotation_path,sha256\n" + "".join(r + "\n" for r in rows)
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_upload_builds_release(admin_client, dataset, storage_root):
    files = [SimpleUploadedFile("a.png", PNG, content_type="image/png"),
             SimpleUploadedFile("b.jpg", JPEG, content_type="image/jpeg")]
    manifest = _manifest([f"a.png,{A},2024-04-01,,,{hashlib.sha256(PNG).hexdigest()}", f"b.jpg,{B},2024-04-02,,,"])
    response = admin_client.post(reverse("datasets:release_upload", args=[dataset.pk]),
                                 {"files": files, "manifest": manifest, "notes_ja": "少数の追加"})
    release = DatasetRelease.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:release_detail", args=[release.pk])
    assert (release.source, release.file_count, release.notes_ja) == ("upload", 2, "少数の追加")
    assert len(storage_files(storage_root)) == 2


def test_upload_problems_listed_in_japanese_and_nothing_kept(admin_client, dataset, storage_root):
    files = [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("extra.png", PNG + b"x")]
    manifest = _manifest([f"a.png,{A},2024-04-01,,,{'0' * 64}", f"gone.png,{A},2024-04-01,,,"])
    response = admin_client.post(reverse("datasets:release_upload", args=[dataset.pk]),
                                 {"files": files, "manifest": manifest})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-testid="release-problems"' in body
    for path, message in [("gone.png", "Listed in the manifest but missing from the folder."),
                          ("a.png", "The SHA-256 checksum differs from the manifest."),
                          ("extra.png", "In the folder but not listed in the manifest.")]:
        assert f"{path}: {ja(message)}" in body
    assert DatasetRelease.objects.count() == 0
    assert storage_files(storage_root) == [] if storage_root.exists() else True


def test_upload_without_files_shows_required_error(admin_client, dataset, storage_root):
    response = admin_client.post(reverse("datasets:release_upload", args=[dataset.pk]),
                                 {"manifest": _manifest([])})
    assert response.status_code == 200
    assert ja("This field is required.") in response.content.decode()
    assert DatasetRelease.objects.count() == 0


# --- Releases -----------------------------------------------------------------------------------


def test_release_detail_paginates_manifest_100_per_page(admin_client, dataset):
    release = make_release(dataset, [FileSpec(subject=A) for _ in range(150)], store=False)
    first = admin_client.get(reverse("datasets:release_detail", args=[release.pk])).content.decode()
    second = admin_client.get(reverse("datasets:release_detail", args=[release.pk]) + "?page=2").content.decode()
    assert first.count("<tr data-path=") == 100
    assert second.count("<tr data-path=") == 50


def test_release_withdraw_through_the_page(admin_client, dataset):
    release = make_release(dataset, [FileSpec(subject=A)], store=False)
    admin_client.post(reverse("datasets:release_withdraw", args=[release.pk]), {"reason": "誤り"})
    release.refresh_from_db()
    assert (release.status, release.withdrawal_reason) == ("withdrawn", "誤り")
    assert ReleaseFile.objects.filter(release=release).count() == 1


def test_release_withdraw_refused_to_steward(client, dataset, steward):
    release = make_release(dataset, [FileSpec(subject=A)], store=False)
    client.force_login(steward)
    assert client.post(reverse("datasets:release_withdraw", args=[release.pk]), {"reason": "x"}).status_code == 403
    release.refresh_from_db()
    assert release.status == "available"


# --- Query counts -------------------------------------------------------------------------------


def test_list_query_count_is_constant(admin_client, society, django_assert_num_queries):
    DatasetFactory(society=society)
    url = reverse("datasets:list")
    admin_client.get(url)
    with django_assert_num_queries(LIST_QUERIES):
        assert admin_client.get(url).status_code == 200
    for _ in range(5):
        dataset = DatasetFactory(society=society)
        make_release(dataset, [FileSpec(subject=A)], store=False)
    with django_assert_num_queries(LIST_QUERIES):
        assert admin_client.get(url).status_code == 200


def test_release_detail_query_count_is_constant(admin_client, dataset, django_assert_num_queries):
    small = make_release(dataset, [FileSpec(subject=A)], store=False)
    large = make_release(dataset, [FileSpec(subject=B) for _ in range(120)], store=False)
    for release in (small, large):
        with django_assert_num_queries(RELEASE_QUERIES):
            assert admin_client.get(reverse("datasets:release_detail", args=[release.pk])).status_code == 200


LIST_QUERIES = 8
RELEASE_QUERIES = 10


def test_admin_is_read_only_for_datasets_and_releases(client, dataset):
    release = make_release(dataset, [FileSpec(subject=A)], store=False)
    superuser = UserFactory(is_staff=True, is_superuser=True)
    give_totp(superuser)
    client.force_login(superuser)
    assert client.get("/admin/datasets/datasetrelease/").status_code == 200
    assert client.get("/admin/datasets/releasefile/").status_code == 200
    assert client.get("/admin/datasets/dataset/?q=jsp").status_code == 200
    assert client.get("/admin/datasets/datasetrelease/add/").status_code == 403
    assert client.get("/admin/datasets/dataset/add/").status_code == 403
    response = client.post(f"/admin/datasets/datasetrelease/{release.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert DatasetRelease.objects.filter(pk=release.pk).exists()


def test_upload_limits_give_clear_errors(admin_client, dataset, storage_root, settings, monkeypatch):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = None
    monkeypatch.setattr("portal.datasets.services.importing.UPLOAD_MAX_FILES", 2)
    monkeypatch.setattr("portal.datasets.services.importing.UPLOAD_MAX_BYTES", 20)
    files = [SimpleUploadedFile(f"{n}.png", PNG + bytes([n])) for n in range(3)]
    response = admin_client.post(reverse("datasets:release_upload", args=[dataset.pk]),
                                 {"files": files, "manifest": _manifest([])})
    assert response.status_code == 400
    body = response.content.decode()
    assert ja("Upload at most %(count)s files at a time; use the import command for more.", count=2) in body
    assert ja("Upload at most %(megabytes)s MB at a time; use the import command for more.", megabytes=0) in body
    assert DatasetRelease.objects.count() == 0


def test_upload_limit_stays_below_djangos_file_limit(settings):
    from portal.datasets.services import upload_max_files

    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 100
    assert upload_max_files() == 99
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 1000
    assert upload_max_files() == 500
