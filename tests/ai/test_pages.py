"""The pages of the hosted AI models: the catalogue of models and their cards, who may open the run
page (403 without ``ai.run_aimodel``, GET and POST alike), running a demo model on uploaded images and
on files of a granted release, the job page with its progress partial, results table, thumbnails and
downloads (404 to everybody but the runner), light access requests, and the management pages of the
society admins (403 to the rest). Query counts of the list pages are pinned."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from django.urls import reverse

from portal.ai.demo_models import synthetic_png
from portal.ai.models import (
    AIModel,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.audit.models import AuditEvent
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.access import granted_request
from tests.factories.ai import AIModelFactory, demo_trained, published_version
from tests.factories.datasets import (
    DatasetFactory,
    FileSpec,
    active_grant,
    make_release,
    published_notice,
)

pytestmark = pytest.mark.django_db

DEMO_NOTICE_EN = "Demo model, synthetic data, not for clinical use"


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def client(client):  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-tiles", modality="pathology_wsi")


@pytest.fixture
def release(dataset):  # type: ignore[no-untyped-def]
    return make_release(dataset, [
        FileSpec(subject="S-1", study_date=date(2024, 4, 1), content=synthetic_png("endoscopy-organ", "stomach", 1),
                 path="images/a.png"),
        FileSpec(subject="S-2", study_date=date(2024, 4, 2), content=synthetic_png("endoscopy-organ", "duodenum", 2),
                 path="images/b.png"),
    ])


@pytest.fixture
def model(society):  # type: ignore[no-untyped-def]
    return AIModelFactory(
        society=society, slug="endoscopy-organ", name_ja="内視鏡臓器分類", name_en="Endoscopy organ classifier",
        open_to_grant_holders=True, is_demo=True,
    )


@pytest.fixture
def version(model, release):  # type: ignore[no-untyped-def]
    version = published_version(model, version="1.0.0")
    version.training_releases.set([release])
    version.evaluation_releases.set([release])
    return version


@pytest.fixture
def holder(applicant, release):  # type: ignore[no-untyped-def]
    """A user named on a grant in force on a release of the model's society."""
    active_grant([applicant], [release])
    return applicant


def _run_upload(client, version, files, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    uploads = [SimpleUploadedFile(name, content, content_type="application/octet-stream") for name, content in files]
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("ai:run", args=[version.model.slug, version.version]),
                           {"source": "upload", "uploads": uploads})


# --- The list of models and their cards --------------------------------------------------------

def test_model_list_shows_published_models_with_the_demo_notice(client, version, society, django_assert_max_num_queries):
    draft_only = AIModelFactory(society=society, slug="draft-only")
    published_version(draft_only, status=ModelVersion.Status.DRAFT)
    for n in range(4):
        published_version(AIModelFactory(society=SocietyFactory(), slug=f"other-{n}", is_demo=False))
    with django_assert_max_num_queries(6):
        response = client.get(reverse("ai:model_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-model="endoscopy-organ"' in body
    assert "Endoscopy organ classifier" in body
    assert DEMO_NOTICE_EN in body
    assert body.count('data-model="other-') == 4
    assert 'data-model="draft-only"' not in body


def _queries(client, url, data=None):  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        response = client.get(url, data or {})
    assert response.status_code == 200
    return len(context.captured_queries), response


def test_model_list_query_count_does_not_grow_with_models(client, society):
    published_version(AIModelFactory(society=society, slug="first"))
    few, _response = _queries(client, reverse("ai:model_list"))
    for n in range(6):
        published_version(AIModelFactory(society=SocietyFactory(), slug=f"more-{n}"))
    many, response = _queries(client, reverse("ai:model_list"))
    assert many == few <= 4
    assert response.content.decode().count('data-model="more-') == 6


def test_model_card_shows_every_field_provenance_and_notices(client, version, release):
    ProvenanceNotice.objects.create(
        version=version, release=release, kind=ProvenanceNotice.Kind.SUBJECTS_OPTED_OUT,
        details={"reference": "OPT-R-00042", "files": 1},
    )
    response = client.get(reverse("ai:model_detail", args=["endoscopy-organ"]))
    assert response.status_code == 200
    body = response.content.decode()
    trained = demo_trained("endoscopy-organ")
    assert 'data-testid="ai-demo-notice"' in body and DEMO_NOTICE_EN in body
    for label in trained.labels:
        assert f"<code>{label['code']}</code> {label['ja']} / {label['en']}" in body
    assert f"{trained.input_width} × {trained.input_height} pixels, 3 channels" in body
    assert f'data-metric="auc">{trained.metrics["auc"]:.3f}<' in body
    assert f'data-metric="accuracy">{trained.metrics["accuracy"]:.3f}<' in body
    assert f"held-out evaluation set of {trained.evaluation_set_size} images" in body
    assert version.artefact_sha256 in body
    release_url = reverse("catalogue:release", args=[release.dataset.slug, release.version])
    assert body.count(f'href="{release_url}"') == 3  # trained on, evaluated on, and the notice
    assert 'data-testid="ai-provenance-notice" data-kind="subjects_opted_out"' in body
    assert "OPT-R-00042" in body
    assert 'data-version="1.0.0" data-status="published"' in body


def test_model_card_of_a_version_and_retired_versions(client, version, model, society_admin):
    retired = published_version(model, version="0.9.0", status=ModelVersion.Status.RETIRED,
                                retire_reason="superseded by 1.0.0")
    response = client.get(reverse("ai:version_detail", args=[model.slug, "0.9.0"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="ai-retired"' in body and "superseded by 1.0.0" in body
    assert 'data-testid="ai-run"' not in body
    assert retired.artefact_sha256 in body


def test_drafts_are_hidden_from_everyone_but_the_managers(client, model, version, society_admin, outsider):
    published_version(model, version="2.0.0-rc", status=ModelVersion.Status.DRAFT)
    url = reverse("ai:version_detail", args=[model.slug, "2.0.0-rc"])
    assert client.get(url).status_code == 404
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert 'data-version="2.0.0-rc"' not in client.get(reverse("ai:model_detail", args=[model.slug])).content.decode()
    client.force_login(society_admin)
    response = client.get(url)
    assert response.status_code == 200
    assert 'data-testid="ai-publish"' in response.content.decode()


def test_unknown_model_is_404(client):
    assert client.get(reverse("ai:model_detail", args=["no-such-model"])).status_code == 404


def test_run_button_only_for_those_who_may_run(client, version, holder, outsider):
    url = reverse("ai:model_detail", args=[version.model.slug])
    run_url = reverse("ai:run", args=[version.model.slug, version.version])
    anonymous = client.get(url).content.decode()
    assert run_url not in anonymous and reverse("account_login") in anonymous
    client.force_login(outsider)
    body = client.get(url).content.decode()
    assert run_url not in body
    assert 'data-testid="ai-request-form"' in body
    client.force_login(holder)
    body = client.get(url).content.decode()
    assert f'href="{run_url}"' in body
    assert 'data-testid="ai-request-form"' not in body


# --- The run page: who may open it ------------------------------------------------------------

def test_run_page_refuses_users_without_permission_get_and_post(client, version, outsider):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("ai:run", args=[version.model.slug, version.version])
    client.force_login(outsider)
    assert client.get(url).status_code == 403
    response = client.post(url, {"source": "upload", "uploads": [
        SimpleUploadedFile("a.png", synthetic_png("endoscopy-organ", "stomach", 3))]})
    assert response.status_code == 403
    assert InferenceJob.objects.count() == 0
    assert not AuditEvent.objects.filter(action="ai.job_created").exists()


def test_run_page_sends_anonymous_visitors_to_sign_in(client, version):
    response = client.get(reverse("ai:run", args=[version.model.slug, version.version]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_run_page_refuses_a_grant_holder_when_the_model_is_not_open_to_them(client, version, holder):
    AIModel.objects.filter(pk=version.model_id).update(open_to_grant_holders=False)
    assert client.get(reverse("ai:run", args=[version.model.slug, version.version])).status_code == 302
    client.force_login(holder)
    assert client.get(reverse("ai:run", args=[version.model.slug, version.version])).status_code == 403


def test_an_approved_request_opens_the_run_page(client, version, outsider):
    from guardian.shortcuts import assign_perm

    AIModel.objects.filter(pk=version.model_id).update(open_to_grant_holders=False)
    client.force_login(outsider)
    url = reverse("ai:run", args=[version.model.slug, version.version])
    assert client.get(url).status_code == 403
    assign_perm("ai.run_aimodel", outsider, version.model)
    response = client.get(url)
    assert response.status_code == 200
    assert 'data-testid="ai-upload-form"' in response.content.decode()


# --- Running the model ---------------------------------------------------------------------------

def test_uploaded_images_are_classified_and_a_bad_file_fails_alone(client, version, holder,
                                                                   django_capture_on_commit_callbacks):
    client.force_login(holder)
    response = _run_upload(client, version, [
        ("stomach.png", synthetic_png("endoscopy-organ", "stomach", 11)),
        ("notes.txt", b"not an image at all"),
    ], django_capture_on_commit_callbacks)
    job = InferenceJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("ai:job_detail", args=[job.pk])
    job.refresh_from_db()
    assert job.user == holder and job.total == 2
    assert job.status == InferenceJob.Status.FINISHED_WITH_FAILURES
    good, bad = job.items.order_by("position")
    assert good.status == InferenceItem.Status.SUCCEEDED and good.thumbnail_key
    assert bad.status == InferenceItem.Status.FAILED and bad.reason

    body = client.get(reverse("ai:job_detail", args=[job.pk])).content.decode()
    assert DEMO_NOTICE_EN in body
    assert f'data-position="1" data-status="succeeded" data-label="{good.label}"' in body
    assert f"<strong>{version.label_name(good.label)}</strong>" in body
    top = good.probabilities[good.label] * 100
    assert f'class="ai-probabilities__top" data-code="{good.label}"><strong>{version.label_name(good.label)} {top:.1f}%' in body
    assert reverse("ai:thumbnail", args=[job.pk, 1]) in body
    assert 'data-position="2" data-status="failed"' in body
    assert bad.reason in body
    assert 'hx-trigger="every 2s"' not in body  # finished: no more polling

    thumb = client.get(reverse("ai:thumbnail", args=[job.pk, 1]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/png"
    assert b"".join(thumb.streaming_content).startswith(b"\x89PNG")
    assert client.get(reverse("ai:thumbnail", args=[job.pk, 2])).status_code == 404

    csv_response = client.get(reverse("ai:job_results_csv", args=[job.pk]))
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="ai-job-{job.pk}-results.csv"' in csv_response["Content-Disposition"]
    text = csv_response.content.decode("utf-8-sig")
    assert "stomach.png" in text and "notes.txt" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert any(good.label in row for row in rows)

    data = json.loads(client.get(reverse("ai:job_results_json", args=[job.pk])).content)
    assert data["demo_notice"]
    assert [item["status"] for item in data["items"]] == ["succeeded", "failed"]


def test_run_form_shows_its_errors(client, version, holder):
    client.force_login(holder)
    url = reverse("ai:run", args=[version.model.slug, version.version])
    response = client.post(url, {"source": "upload"})
    assert response.status_code == 400
    assert "Choose at least one image file." in response.content.decode()
    response = client.post(url, {"source": "release"})
    assert "Choose a release." in response.content.decode()
    assert InferenceJob.objects.count() == 0


def test_too_many_images_are_refused_with_the_services_message(client, version, holder, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.PORTAL_AI_MAX_IMAGES = 1
    client.force_login(holder)
    response = client.post(reverse("ai:run", args=[version.model.slug, version.version]), {"source": "upload", "uploads": [
        SimpleUploadedFile(f"{n}.png", synthetic_png("endoscopy-organ", "stomach", n)) for n in range(2)]})
    assert response.status_code == 400
    assert "2 images were given; at most 1 can be run in one job." in response.content.decode()
    assert InferenceJob.objects.count() == 0


def test_a_retired_version_is_refused(client, model, version, holder):
    from django.core.files.uploadedfile import SimpleUploadedFile

    published_version(model, version="0.9.0", status=ModelVersion.Status.RETIRED)
    client.force_login(holder)
    url = reverse("ai:run", args=[model.slug, "0.9.0"])
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="ai-retired"' in page.content.decode()
    response = client.post(url, {"source": "upload", "uploads": [
        SimpleUploadedFile("a.png", synthetic_png("endoscopy-organ", "stomach", 5))]})
    assert response.status_code == 400
    assert "retired" in response.content.decode()
    assert InferenceJob.objects.count() == 0


def test_files_of_a_granted_release_are_picked_and_run(client, version, applicant, release, dataset,
                                                       django_capture_on_commit_callbacks):
    from portal.access.models import SecurityAnswer

    published_notice(dataset)
    request, _grant = granted_request([applicant], [release])
    SecurityAnswer.objects.create(access_request=request, item="encryption", status="done")
    client.force_login(applicant)
    url = reverse("ai:run", args=[version.model.slug, version.version])
    page = client.get(url, {"release": release.pk}).content.decode()
    files = list(release.files.order_by("path"))
    for file in files:
        assert f'name="release_files" value="{file.pk}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"source": "release", "release": release.pk, "release_files": [files[1].pk]})
    assert response.status_code == 302, response.content.decode()
    job = InferenceJob.objects.get()
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.source == InferenceJob.Source.RELEASE and job.release == release
    assert list(job.items.values_list("release_file_id", "status")) == [(files[1].pk, "succeeded")]


def test_files_of_another_release_are_refused(client, version, holder, society):
    other = make_release(DatasetFactory(society=society, slug="not-granted"), [FileSpec(subject="S-9")])
    client.force_login(holder)
    response = client.post(reverse("ai:run", args=[version.model.slug, version.version]),
                           {"source": "release", "release": other.pk,
                            "release_files": [other.files.get().pk]})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert InferenceJob.objects.count() == 0


# --- Jobs ----------------------------------------------------------------------------------------

def _job(version, user, *, items: int = 1, status: str = InferenceJob.Status.FINISHED) -> InferenceJob:
    job = InferenceJob.objects.create(user=user, version=version, source=InferenceJob.Source.UPLOAD,
                                      status=status, total=items, done=items)
    codes = version.label_codes
    InferenceItem.objects.bulk_create([
        InferenceItem(job=job, position=n, name=f"img-{n}.png", input_sha256=f"{n:064d}",
                      status=InferenceItem.Status.SUCCEEDED, label=codes[n % len(codes)],
                      probabilities={code: (0.8 if code == codes[n % len(codes)] else 0.1) for code in codes})
        for n in range(1, items + 1)
    ])
    return job


def test_jobs_of_others_are_404(client, version, holder, outsider):
    job = _job(version, holder)
    client.force_login(outsider)
    for name, args in (("job_detail", [job.pk]), ("job_progress", [job.pk]), ("job_results_csv", [job.pk]),
                       ("job_results_json", [job.pk]), ("thumbnail", [job.pk, 1])):
        assert client.get(reverse(f"ai:{name}", args=args)).status_code == 404, name
    assert f'data-job="{job.pk}"' not in client.get(reverse("ai:job_list")).content.decode()


def test_job_list_shows_my_jobs_with_pinned_queries(client, version, holder):
    client.force_login(holder)
    _job(version, holder)
    few, _response = _queries(client, reverse("ai:job_list"))
    for _n in range(5):
        _job(version, holder)
    many, response = _queries(client, reverse("ai:job_list"))
    assert many == few == 7  # session, user, three for the navigation's roles, count, page
    body = response.content.decode()
    assert body.count('<tr data-job="') == 6
    assert DEMO_NOTICE_EN in body


def test_job_results_are_paged_with_pinned_queries(client, version, holder, django_assert_num_queries):
    job = _job(version, holder, items=130)
    client.force_login(holder)
    # session, user, three for the navigation's roles, the job with its model, count, page of items
    with django_assert_num_queries(8):
        first = client.get(reverse("ai:job_detail", args=[job.pk]))
    assert first.content.decode().count('<tr data-position="') == 100
    with django_assert_num_queries(8):
        second = client.get(reverse("ai:job_detail", args=[job.pk]), {"page": 2})
    body = second.content.decode()
    assert body.count('<tr data-position="') == 30
    assert 'data-position="130"' in body and "Page 2 of 2" in body


def test_progress_partial_polls_while_active_then_reloads_the_page(client, version, holder):
    job = _job(version, holder, items=4, status=InferenceJob.Status.RUNNING)
    InferenceJob.objects.filter(pk=job.pk).update(done=1)
    client.force_login(holder)
    url = reverse("ai:job_progress", args=[job.pk])
    partial = client.get(url, headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert partial.status_code == 200
    assert f'hx-get="{url}"' in body and 'hx-trigger="every 2s"' in body
    assert 'value="25"' in body and "1 of 4 images processed" in body
    detail = client.get(reverse("ai:job_detail", args=[job.pk])).content.decode()
    assert f'hx-get="{url}"' in detail and 'data-testid="ai-results-csv"' not in detail
    InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.FINISHED, done=4)
    finished = client.get(url, headers={"HX-Request": "true"})
    assert finished.status_code == 200 and finished["HX-Refresh"] == "true"
    assert 'data-testid="ai-results-csv"' in client.get(reverse("ai:job_detail", args=[job.pk])).content.decode()


# --- Light access requests -----------------------------------------------------------------------

@pytest.fixture
def closed_version(version):  # type: ignore[no-untyped-def]
    AIModel.objects.filter(pk=version.model_id).update(open_to_grant_holders=False)
    version.model.refresh_from_db()
    return version


def test_a_user_asks_for_access_and_withdraws(client, closed_version, outsider):
    model = closed_version.model
    client.force_login(outsider)
    response = client.post(reverse("ai:access_request", args=[model.slug]), {"purpose": "Trying it on my images"})
    assert response.status_code == 302
    access = ModelAccessRequest.objects.get()
    assert (access.user, access.status, access.purpose) == (outsider, "submitted", "Trying it on my images")
    body = client.get(reverse("ai:model_detail", args=[model.slug])).content.decode()
    assert 'data-testid="ai-request-status" data-status="submitted"' in body
    assert 'data-testid="ai-request-form"' not in body
    client.post(reverse("ai:request_withdraw", args=[access.pk]))
    access.refresh_from_db()
    assert access.status == "withdrawn"


def test_access_request_needs_a_purpose(client, closed_version, outsider):
    client.force_login(outsider)
    response = client.post(reverse("ai:access_request", args=[closed_version.model.slug]), {"purpose": ""}, follow=True)
    assert "This field is required." in response.content.decode()
    assert ModelAccessRequest.objects.count() == 0


def test_others_cannot_withdraw_a_request(client, closed_version, outsider, applicant):
    access = ModelAccessRequest.objects.create(model=closed_version.model, user=applicant, purpose="x")
    client.force_login(outsider)
    assert client.post(reverse("ai:request_withdraw", args=[access.pk])).status_code == 404
    access.refresh_from_db()
    assert access.status == "submitted"


# --- Management -----------------------------------------------------------------------------------

@pytest.fixture
def admin_client(client, society_admin):  # type: ignore[no-untyped-def]
    client.force_login(society_admin)
    return client


def test_management_pages_are_refused_to_non_admins(client, version, outsider, steward):
    access = ModelAccessRequest.objects.create(model=version.model, user=outsider, purpose="x")
    for user in (outsider, steward):
        client.force_login(user)
        for url in (reverse("ai:manage"), reverse("ai:model_create"), reverse("ai:request_list"),
                    reverse("ai:model_edit", args=[version.model.slug]),
                    reverse("ai:version_upload", args=[version.model.slug])):
            assert client.get(url).status_code == 403, (user, url)
        for url in (reverse("ai:version_publish", args=[version.model.slug, version.version]),
                    reverse("ai:version_retire", args=[version.model.slug, version.version])):
            assert client.post(url, {"reason": "no"}).status_code == 403
    client.force_login(steward)
    assert client.post(reverse("ai:request_decide", args=[access.pk]), {"approve": "1"}).status_code == 404
    client.force_login(outsider)  # the requester may not decide their own request
    assert client.post(reverse("ai:request_decide", args=[access.pk]), {"approve": "1"}).status_code == 403
    version.refresh_from_db()
    access.refresh_from_db()
    assert version.status == "published" and access.status == "submitted"


def test_admins_of_another_society_are_refused_on_this_societys_model(client, version):
    other_admin = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(), user=other_admin, role="admin")
    give_totp(other_admin)
    client.force_login(other_admin)
    assert client.get(reverse("ai:manage")).status_code == 200
    assert client.get(reverse("ai:model_edit", args=[version.model.slug])).status_code == 403
    assert client.get(reverse("ai:version_upload", args=[version.model.slug])).status_code == 403


def test_manage_page_lists_models_and_waiting_requests(admin_client, version, outsider, django_assert_max_num_queries):
    ModelAccessRequest.objects.create(model=version.model, user=outsider, purpose="x")
    with django_assert_max_num_queries(10):
        response = admin_client.get(reverse("ai:manage"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-model="endoscopy-organ"' in body and outsider.email in body


def test_admin_registers_a_model_and_sees_form_errors(admin_client, society):
    url = reverse("ai:model_create")
    response = admin_client.post(url, {"society": society.pk, "slug": "Not a slug!", "name_ja": "", "task": "classification",
                                       "modality": "endoscopy"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid “slug”" in body and "This field is required." in body
    assert not AIModel.objects.exists()
    response = admin_client.post(url, {"society": society.pk, "slug": "gastric-tiles", "name_ja": "胃生検タイル分類",
                                       "name_en": "Gastric tiles", "task": "classification", "modality": "pathology_wsi"})
    model = AIModel.objects.get(slug="gastric-tiles")
    assert response.status_code == 302
    assert response["Location"] == reverse("ai:version_upload", args=["gastric-tiles"])
    assert model.society == society and not model.open_to_grant_holders


def test_admin_edits_a_model(admin_client, version):
    model = version.model
    response = admin_client.post(reverse("ai:model_edit", args=[model.slug]), {
        "name_ja": "新しい名前", "name_en": "New name", "summary_ja": "", "summary_en": "", "open_to_grant_holders": "",
    })
    assert response.status_code == 302
    model.refresh_from_db()
    assert (model.name_ja, model.name_en, model.open_to_grant_holders) == ("新しい名前", "New name", False)


def _card(**overrides):  # type: ignore[no-untyped-def]
    trained = demo_trained("endoscopy-organ")
    data = {
        "version": "2.0.0", "labels": "\n".join(f"{x['code']},{x['ja']},{x['en']}" for x in trained.labels),
        "input_width": trained.input_width, "input_height": trained.input_height, "input_channels": 3,
        "input_mean": ", ".join(str(v) for v in trained.input_mean),
        "input_std": ", ".join(str(v) for v in trained.input_std),
        "intended_use_ja": "デモ", "limitations_ja": "臨床使用不可", "training_data_ja": "合成画像",
        "metric_auc": "0.95", "metric_accuracy": "0.9", "evaluation_set_size": "300",
    }
    data.update(overrides)
    return data


def test_admin_uploads_publishes_and_retires_a_version(admin_client, version, release):
    from django.core.files.uploadedfile import SimpleUploadedFile

    model = version.model
    onnx = SimpleUploadedFile("model.onnx", demo_trained("endoscopy-organ").onnx)
    response = admin_client.post(reverse("ai:version_upload", args=[model.slug]),
                                 _card(artefact=onnx, training_releases=[release.pk]))
    assert response.status_code == 302, response.content.decode()[:2000]
    new = model.versions.get(version="2.0.0")
    assert new.status == "draft" and new.metric_auc == 0.95 and new.evaluation_set_size == 300
    assert list(new.training_releases.all()) == [release]
    assert new.labels[1] == {"code": "stomach", "ja": "胃", "en": "Stomach"}

    admin_client.post(reverse("ai:version_publish", args=[model.slug, "2.0.0"]))
    new.refresh_from_db()
    assert new.status == "published"

    response = admin_client.post(reverse("ai:version_retire", args=[model.slug, "1.0.0"]), {"reason": ""}, follow=True)
    assert "Give the reason for retiring the version." in response.content.decode()
    version.refresh_from_db()
    assert version.status == "published"
    admin_client.post(reverse("ai:version_retire", args=[model.slug, "1.0.0"]), {"reason": "replaced by 2.0.0"})
    version.refresh_from_db()
    assert version.status == "retired" and version.retire_reason == "replaced by 2.0.0"


def test_version_upload_shows_form_and_model_file_errors(admin_client, version):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("ai:version_upload", args=[version.model.slug])
    response = admin_client.post(url, _card(artefact=SimpleUploadedFile("m.onnx", b"x"), labels="only-one"))
    assert response.status_code == 400
    assert "Line 1: write code,日本語,English" in response.content.decode()
    response = admin_client.post(url, _card(artefact=SimpleUploadedFile("m.onnx", b"this is not onnx")))
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_artefact_error"' in body and "not an ONNX model" in body
    assert not version.model.versions.filter(version="2.0.0").exists()


def test_admin_decides_and_revokes_requests(admin_client, closed_version, outsider, applicant):
    model = closed_version.model
    approved = ModelAccessRequest.objects.create(model=model, user=outsider, purpose="research")
    rejected = ModelAccessRequest.objects.create(model=model, user=applicant, purpose="testing")
    body = admin_client.get(reverse("ai:request_list")).content.decode()
    assert f'data-request="{approved.pk}"' in body and f'data-request="{rejected.pk}"' in body

    response = admin_client.post(reverse("ai:request_decide", args=[rejected.pk]), {"approve": "0", "note": ""},
                                 follow=True)
    rejected.refresh_from_db()
    assert rejected.status == "submitted"
    assert response.status_code == 200 and 'class="message message--error"' in response.content.decode()
    admin_client.post(reverse("ai:request_decide", args=[rejected.pk]), {"approve": "0", "note": "Not a fit"})
    admin_client.post(reverse("ai:request_decide", args=[approved.pk]), {"approve": "1"})
    approved.refresh_from_db()
    rejected.refresh_from_db()
    assert (approved.status, rejected.status, rejected.decision_note) == ("approved", "rejected", "Not a fit")
    outsider = type(outsider).objects.get(pk=outsider.pk)
    assert outsider.has_perm("ai.run_aimodel", model)

    admin_client.post(reverse("ai:request_revoke", args=[approved.pk]), {"reason": "Misuse"})
    approved.refresh_from_db()
    assert approved.status == "revoked"
    outsider = type(outsider).objects.get(pk=outsider.pk)
    assert not outsider.has_perm("ai.run_aimodel", model)


def test_request_list_query_count_is_pinned(admin_client, closed_version):
    ModelAccessRequest.objects.create(model=closed_version.model, user=UserFactory(), purpose="x")
    few, _response = _queries(admin_client, reverse("ai:request_list"))
    for _n in range(5):
        ModelAccessRequest.objects.create(model=closed_version.model, user=UserFactory(), purpose="x")
    many, response = _queries(admin_client, reverse("ai:request_list"))
    assert many == few <= 10
    assert response.content.decode().count("<tr data-request=") == 6


def test_release_picker_shows_only_granted_releases_and_their_files(client, version, holder, release, society):
    other = make_release(DatasetFactory(society=society, slug="not-granted"), [FileSpec(subject="S-9")])
    client.force_login(holder)
    url = reverse("ai:run", args=[version.model.slug, version.version])
    page = client.get(url).content.decode()
    assert f'<option value="{release.pk}"' in page and f'<option value="{other.pk}"' not in page
    assert 'name="release_files"' not in client.get(url, {"release": other.pk}).content.decode()
    response = client.post(url, {"source": "release", "release": release.pk, "release_files": [other.files.get().pk]})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose files from the list." in body
    assert f'name="release_files" value="{release.files.first().pk}"' in body  # the list is shown again
    assert InferenceJob.objects.count() == 0


def test_release_picker_leaves_out_files_of_subjects_who_opted_out(client, version, holder, release, monkeypatch):
    import portal.ai.views as views

    opted = release.files.get(path="images/b.png")
    monkeypatch.setattr(views, "excluded_pseudonyms", lambda *, dataset: {opted.subject_pseudonym})
    client.force_login(holder)
    page = client.get(reverse("ai:run", args=[version.model.slug, version.version]), {"release": release.pk})
    body = page.content.decode()
    assert f'name="release_files" value="{release.files.get(path="images/a.png").pk}"' in body
    assert f'value="{opted.pk}"' not in body and "images/b.png" not in body


def test_demo_model_card_offers_a_sample_image_per_label(client, db):
    from portal.ai.preprocess import image_kind

    model = AIModelFactory(slug="demo-endoscopy-organ", is_demo=True)
    published_version(model)
    client.cookies["django_language"] = "en"
    body = client.get(reverse("ai:model_detail", args=[model.slug])).content.decode()
    assert "Sample images to try" in body
    for code in ("esophagus", "stomach", "duodenum"):
        url = reverse("ai:demo_sample", args=[model.slug, code])
        assert f'href="{url}"' in body
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert image_kind(response.content) == "png"
        assert response.content == client.get(url).content  # the same sample every time
    assert client.get(reverse("ai:demo_sample", args=[model.slug, "colon"])).status_code == 404


def test_a_societys_own_model_offers_no_samples(client, db):
    model = AIModelFactory(slug="demo-endoscopy-organ", is_demo=False)
    published_version(model)
    client.cookies["django_language"] = "en"
    assert "Sample images to try" not in client.get(reverse("ai:model_detail", args=[model.slug])).content.decode()
    assert client.get(reverse("ai:demo_sample", args=[model.slug, "stomach"])).status_code == 404
