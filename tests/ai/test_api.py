"""Hosted AI models over the API (/api/v1/ai/): cards, versions, access requests and inference jobs.

The API asks the same questions as the pages (``may_run``, the visibility selectors) and calls the
same services; these tests pin what each endpoint answers, who is refused (403 without the right,
404 for what one may not see) and that a refusal changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.urls import reverse
from guardian.shortcuts import assign_perm
from knox.models import AuthToken

from portal.ai.models import (
    RUN_PERMISSION,
    InferenceItem,
    InferenceJob,
    ModelAccessRequest,
    ModelVersion,
    ProvenanceNotice,
)
from portal.audit.models import AuditEvent
from portal.datasets.models import DatasetStatus
from tests.factories import SocietyFactory, UserFactory
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
# The names the schema gives the hosted-AI enums (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
AI_ENUM_NAME_OVERRIDES = {
    "AIModelVersionStatusEnum": "portal.ai.models.ModelVersion.Status",
    "AIModelAccessRequestStatusEnum": "portal.ai.models.ModelAccessRequest.Status",
    "InferenceJobStatusEnum": "portal.ai.models.InferenceJob.Status",
    "InferenceItemStatusEnum": "portal.ai.models.InferenceItem.Status",
    "InferenceJobSourceEnum": "portal.ai.models.InferenceJob.Source",
    "AIModelTaskEnum": "portal.ai.models.AIModel.Task",
    "ProvenanceNoticeKindEnum": "portal.ai.models.ProvenanceNotice.Kind",
}


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


def _auth(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"HTTP_AUTHORIZATION": f"Token {AuthToken.objects.create(user)[1]}", "HTTP_ACCEPT_LANGUAGE": "en"}


def _png(label: str = "stomach", seed: int = 1) -> bytes:
    from portal.ai.demo_models import synthetic_png

    return synthetic_png("endoscopy-organ", label, seed)


def _upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def model(society):  # type: ignore[no-untyped-def]
    return AIModelFactory(society=society, slug="organ", name_ja="臓器分類", name_en="Organ classifier",
                          is_demo=True)


@pytest.fixture
def version(model):  # type: ignore[no-untyped-def]
    return published_version(model)


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(society=society, slug="endo-images", status=DatasetStatus.PUBLISHED)
    published_notice(dataset)
    return dataset


@pytest.fixture
def release(dataset):  # type: ignore[no-untyped-def]
    return make_release(dataset, [
        FileSpec("S-1", content=_png("stomach", 11), path="cases/a.png"),
        FileSpec("S-2", content=_png("duodenum", 12), path="cases/b.png"),
    ])


@pytest.fixture
def holder(release):  # type: ignore[no-untyped-def]
    """A named user of a grant in force on a release of the model's society."""
    user = UserFactory(email="holder@company.example.jp")
    active_grant([user], [release])
    return user


@pytest.fixture
def runner(model, version):  # type: ignore[no-untyped-def]
    """A user whose light request was approved (the run permission assigned)."""
    user = UserFactory(email="runner@univ.example.ac.jp")
    assign_perm(RUN_PERMISSION, user, model)
    return user


# --- Models and their cards ----------------------------------------------------------------------


def test_api_model_list_is_public_and_shows_the_demo_notice(client, model, version, society):
    AIModelFactory(society=society, slug="only-a-draft")  # no published version: not listed

    response = client.get("/api/v1/ai/models/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert row["slug"] == "organ"
    assert row["society"] == "jsp"
    assert row["name"] == "Organ classifier"
    assert row["is_demo"] is True
    assert row["demo_notice"] == DEMO_NOTICE_EN
    assert row["may_run"] is False
    assert row["published_versions"] == ["1.0.0"]


def test_api_model_list_and_card_agree_on_may_run(client, model, version, holder, runner, society_admin, outsider):
    model.open_to_grant_holders = True
    model.save()
    expected = {holder: True, runner: True, society_admin: True, outsider: False}

    for user, allowed in expected.items():
        listed = client.get("/api/v1/ai/models/", **_auth(user)).json()["results"][0]["may_run"]
        card = client.get("/api/v1/ai/models/organ/", **_auth(user)).json()["may_run"]

        assert (listed, card) == (allowed, allowed), user.email
        assert user.has_perm(RUN_PERMISSION, model) is allowed


def test_api_model_list_grant_holder_may_not_run_unless_card_allows(client, model, version, holder):
    response = client.get("/api/v1/ai/models/", **_auth(holder))

    assert response.json()["results"][0]["may_run"] is False


def test_api_model_list_drafts_visible_to_their_admins_only(client, model, version, society, society_admin, outsider):
    AIModelFactory(society=society, slug="only-a-draft")

    mine = client.get("/api/v1/ai/models/", **_auth(society_admin)).json()
    theirs = client.get("/api/v1/ai/models/", **_auth(outsider)).json()

    assert [row["slug"] for row in mine["results"]] == ["only-a-draft", "organ"]
    assert [row["slug"] for row in theirs["results"]] == ["organ"]


@pytest.mark.parametrize("count", [1, 4])
def test_api_model_list_query_count_fixed(client, society, runner, count, django_assert_num_queries):
    for n in range(count):
        extra = AIModelFactory(society=society, slug=f"extra-{n}")
        published_version(extra)
        assign_perm(RUN_PERMISSION, runner, extra)
    headers = _auth(runner)

    # token and user, the user's tokens, roles (3), admin societies, count, page, versions,
    # guardian's user and group permissions for the page
    with django_assert_num_queries(11):
        response = client.get("/api/v1/ai/models/", **headers)

    assert response.status_code == 200
    assert response.json()["count"] == count + 1
    assert all(row["may_run"] for row in response.json()["results"])


def test_api_model_card_shows_versions_metrics_provenance_and_notice(client, model, version, release, outsider):
    trained = demo_trained("endoscopy-organ")
    version.training_releases.set([release])
    version.evaluation_releases.set([release])
    ProvenanceNotice.objects.create(version=version, release=release, kind=ProvenanceNotice.Kind.RELEASE_WITHDRAWN,
                                    details={"reason": "同意の撤回"})
    published_version(model, version="0.9.0", status=ModelVersion.Status.RETIRED)
    published_version(model, version="2.0.0-draft", status=ModelVersion.Status.DRAFT)

    response = client.get("/api/v1/ai/models/organ/", **_auth(outsider))

    assert response.status_code == 200
    card = response.json()
    assert card["demo_notice"] == DEMO_NOTICE_EN
    assert card["may_run"] is False
    assert card["may_manage"] is False
    assert card["my_access_request"] is None
    assert [v["version"] for v in card["versions"]] == ["0.9.0", "1.0.0"]  # no draft for outsiders
    current = next(v for v in card["versions"] if v["version"] == "1.0.0")
    assert current["status"] == "published"
    assert current["is_runnable"] is True
    assert current["demo_notice"] == DEMO_NOTICE_EN
    assert [label["code"] for label in current["labels"]] == ["esophagus", "stomach", "duodenum"]
    assert (current["input_width"], current["input_height"], current["input_channels"]) == (
        trained.input_width, trained.input_height, 3)
    assert current["metrics"] == {
        "auc": trained.metrics["auc"], "accuracy": trained.metrics["accuracy"],
        "sensitivity": trained.metrics["sensitivity"], "specificity": trained.metrics["specificity"],
        "evaluation_set_size": trained.evaluation_set_size,
    }
    assert current["artefact_sha256"] == hashlib.sha256(trained.onnx).hexdigest()
    ref = {"id": release.pk, "dataset": "endo-images", "version": release.version, "status": "available"}
    assert current["training_releases"] == [ref]
    assert current["evaluation_releases"] == [ref]
    (notice,) = current["provenance_notices"]
    assert notice["kind"] == "release_withdrawn"
    assert notice["kind_display"] == "Release withdrawn"
    assert notice["release"] == ref
    assert notice["details"] == {"reason": "同意の撤回"}


def test_api_model_card_drafts_for_admins(client, model, version, society_admin):
    published_version(model, version="2.0.0", status=ModelVersion.Status.DRAFT)

    card = client.get("/api/v1/ai/models/organ/", **_auth(society_admin)).json()

    assert sorted(v["version"] for v in card["versions"]) == ["1.0.0", "2.0.0"]
    assert card["may_manage"] is True
    assert card["may_run"] is True


def test_api_model_card_of_unpublished_model_is_404_for_others(client, society, society_admin, outsider):
    draft_only = AIModelFactory(society=society, slug="secret")
    published_version(draft_only, status=ModelVersion.Status.DRAFT)

    assert client.get("/api/v1/ai/models/secret/", **_auth(outsider)).status_code == 404
    assert client.get("/api/v1/ai/models/secret/").status_code == 404
    assert client.get("/api/v1/ai/models/secret/", **_auth(society_admin)).status_code == 200


def test_api_version_detail_and_draft_hidden(client, model, version, outsider, society_admin):
    published_version(model, version="2.0.0", status=ModelVersion.Status.DRAFT)

    response = client.get("/api/v1/ai/models/organ/versions/1.0.0/")

    assert response.status_code == 200
    assert response.json()["model"] == "organ"
    assert response.json()["version"] == "1.0.0"
    assert client.get("/api/v1/ai/models/organ/versions/2.0.0/", **_auth(outsider)).status_code == 404
    assert client.get("/api/v1/ai/models/organ/versions/2.0.0/", **_auth(society_admin)).status_code == 200
    assert client.get("/api/v1/ai/models/organ/versions/9.9.9/", **_auth(society_admin)).status_code == 404


# --- Versions: upload, publish, retire ---------------------------------------------------------


def _version_form(**overrides):  # type: ignore[no-untyped-def]
    trained = demo_trained("endoscopy-organ")
    form = {
        "version": "2.0.0", "artefact": _upload("organ.onnx", trained.onnx),
        "labels": json.dumps(trained.labels, ensure_ascii=False),
        "input_width": trained.input_width, "input_height": trained.input_height, "input_channels": 3,
        "input_mean": json.dumps(list(trained.input_mean)), "input_std": [str(v) for v in trained.input_std],
        "intended_use_ja": "研究用の試行", "limitations_ja": "臨床には使えない", "training_data_ja": "合成画像",
        "metric_auc": trained.metrics["auc"], "metric_accuracy": trained.metrics["accuracy"],
        "evaluation_set_size": trained.evaluation_set_size,
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_api_version_upload_by_society_admin_creates_draft(client, model, version, society_admin, release):
    trained = demo_trained("endoscopy-organ")

    response = client.post("/api/v1/ai/models/organ/versions/",
                           data=_version_form(training_releases=[release.pk]), **_auth(society_admin))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == "2.0.0"
    assert body["status"] == "draft"
    assert body["artefact_sha256"] == hashlib.sha256(trained.onnx).hexdigest()
    assert body["input_mean"] == list(trained.input_mean)
    assert body["input_std"] == list(trained.input_std)
    assert body["metrics"]["auc"] == trained.metrics["auc"]
    assert body["metrics"]["sensitivity"] is None
    assert [r["id"] for r in body["training_releases"]] == [release.pk]
    stored = ModelVersion.objects.get(model=model, version="2.0.0")
    assert stored.labels == trained.labels
    assert AuditEvent.objects.filter(action="ai.version_uploaded").count() == 1


def test_api_version_upload_not_onnx_is_400_and_nothing_stored(client, model, version, society_admin, storage_root):
    response = client.post("/api/v1/ai/models/organ/versions/",
                           data=_version_form(artefact=_upload("notes.onnx", b"this is not a model")),
                           **_auth(society_admin))

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "not an ONNX model" in body["errors"]["artefact"][0]
    assert not ModelVersion.objects.filter(version="2.0.0").exists()
    assert not (storage_root / "ai" / "models" / "organ" / "2.0.0").exists()
    assert not AuditEvent.objects.filter(action="ai.version_uploaded").exists()


def test_api_version_upload_card_mismatch_is_400(client, model, version, society_admin):
    response = client.post("/api/v1/ai/models/organ/versions/",
                           data=_version_form(input_width=32, input_height=32), **_auth(society_admin))

    assert response.status_code == 400
    message = response.json()["errors"]["artefact"][0]
    assert "32" in message
    assert not ModelVersion.objects.filter(version="2.0.0").exists()


def test_api_version_upload_wrong_label_count_is_400(client, model, version, society_admin):
    labels = [{"code": "a", "ja": "甲", "en": "A"}, {"code": "b", "ja": "乙", "en": "B"}]

    response = client.post("/api/v1/ai/models/organ/versions/",
                           data=_version_form(labels=json.dumps(labels)), **_auth(society_admin))

    assert response.status_code == 400
    assert "artefact" in response.json()["errors"]
    assert not ModelVersion.objects.filter(version="2.0.0").exists()


def test_api_version_upload_too_big_is_400(client, model, version, society_admin, settings):
    settings.PORTAL_AI_MAX_MODEL_MB = 0

    response = client.post("/api/v1/ai/models/organ/versions/", data=_version_form(), **_auth(society_admin))

    assert response.status_code == 400
    assert "at most 0 MB" in response.json()["errors"]["artefact"][0]
    assert not ModelVersion.objects.filter(version="2.0.0").exists()


def test_api_version_upload_missing_and_malformed_fields_are_400(client, model, version, society_admin):
    response = client.post("/api/v1/ai/models/organ/versions/",
                           data=_version_form(labels=None, input_mean="[0.5, oops"), **_auth(society_admin))

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"labels", "input_mean"}
    assert not ModelVersion.objects.filter(version="2.0.0").exists()


def test_api_version_upload_duplicate_version_is_400(client, model, version, society_admin):
    response = client.post("/api/v1/ai/models/organ/versions/", data=_version_form(version="1.0.0"),
                           **_auth(society_admin))

    assert response.status_code == 400
    assert "already has a version 1.0.0" in response.json()["errors"]["version"][0]
    assert model.versions.count() == 1


def test_api_version_upload_refused_to_others(client, model, version, runner, steward):
    for user in (runner, steward):
        response = client.post("/api/v1/ai/models/organ/versions/", data=_version_form(), **_auth(user))

        assert response.status_code == 403, user.email
    assert model.versions.count() == 1
    assert not AuditEvent.objects.filter(action="ai.version_uploaded").exists()


def test_api_version_publish_and_retire(client, model, version, society_admin):
    published_version(model, version="2.0.0", status=ModelVersion.Status.DRAFT)
    headers = _auth(society_admin)

    published = client.post("/api/v1/ai/models/organ/versions/2.0.0/publish/", **headers)
    no_reason = client.post("/api/v1/ai/models/organ/versions/1.0.0/retire/", data={}, **headers)
    retired = client.post("/api/v1/ai/models/organ/versions/1.0.0/retire/",
                          data={"reason": "2.0.0 に置き換え"}, **headers)
    again = client.post("/api/v1/ai/models/organ/versions/1.0.0/publish/", **headers)

    assert published.status_code == 200
    assert published.json()["status"] == "published"
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["errors"]
    assert retired.status_code == 200
    assert retired.json()["status"] == "retired"
    assert retired.json()["retire_reason"] == "2.0.0 に置き換え"
    assert retired.json()["is_runnable"] is False
    assert again.status_code == 400  # retired is final
    statuses = dict(model.versions.values_list("version", "status"))
    assert statuses == {"1.0.0": "retired", "2.0.0": "published"}


def test_api_version_publish_refused_to_non_admins(client, model, version, runner):
    response = client.post("/api/v1/ai/models/organ/versions/1.0.0/retire/", data={"reason": "x"}, **_auth(runner))

    assert response.status_code == 403
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.PUBLISHED
    assert not AuditEvent.objects.filter(action__startswith="ai.version").exists()


# --- Access requests ---------------------------------------------------------------------------


def test_api_access_request_submit_then_approved_lets_the_user_run(client, model, version, outsider, society_admin):
    submitted = client.post("/api/v1/ai/models/organ/access-requests/", data={"purpose": "内視鏡研究の予備検討"},
                            **_auth(outsider))

    assert submitted.status_code == 201
    assert submitted.json()["status"] == "submitted"
    assert submitted.json()["user"] == "outsider@example.com"
    pk = submitted.json()["id"]
    card = client.get("/api/v1/ai/models/organ/", **_auth(outsider)).json()
    assert card["my_access_request"]["id"] == pk
    assert card["may_run"] is False

    decided = client.post(f"/api/v1/ai/access-requests/{pk}/decision/", data={"approve": True},
                          content_type="application/json", **_auth(society_admin))

    assert decided.status_code == 200
    assert decided.json()["status"] == "approved"
    assert client.get("/api/v1/ai/models/organ/", **_auth(outsider)).json()["may_run"] is True


def test_api_access_request_twice_or_without_purpose_is_400(client, model, version, outsider):
    headers = _auth(outsider)
    client.post("/api/v1/ai/models/organ/access-requests/", data={"purpose": "研究"}, **headers)

    twice = client.post("/api/v1/ai/models/organ/access-requests/", data={"purpose": "研究"}, **headers)
    empty = client.post("/api/v1/ai/models/organ/access-requests/", data={"purpose": ""}, **headers)

    assert twice.status_code == 400
    assert twice.json()["errors"]["non_field_errors"] == ["You already have an open request for this model."]
    assert empty.status_code == 400
    assert "purpose" in empty.json()["errors"]
    assert ModelAccessRequest.objects.count() == 1


def test_api_access_requests_mine_and_to_decide(client, model, version, outsider, society_admin):
    other = UserFactory(email="other@example.com")
    ModelAccessRequest.objects.create(model=model, user=outsider, purpose="私の依頼")
    ModelAccessRequest.objects.create(model=model, user=other, purpose="他人の依頼")
    foreign = AIModelFactory(society=SocietyFactory(slug="jges"), slug="foreign")
    ModelAccessRequest.objects.create(model=foreign, user=other, purpose="他学会")
    headers = _auth(society_admin)

    mine = client.get("/api/v1/ai/access-requests/", **_auth(outsider)).json()
    outsider_to_decide = client.get("/api/v1/ai/access-requests/?to_decide=1", **_auth(outsider)).json()
    to_decide = client.get("/api/v1/ai/access-requests/?to_decide=1", **headers).json()

    assert [r["purpose"] for r in mine["results"]] == ["私の依頼"]
    assert outsider_to_decide["results"] == []
    assert sorted(r["purpose"] for r in to_decide["results"]) == ["他人の依頼", "私の依頼"]


@pytest.mark.parametrize("count", [1, 4])
def test_api_access_request_list_query_count_fixed(client, model, version, society_admin, count,
                                                   django_assert_num_queries):
    for n in range(count):
        ModelAccessRequest.objects.create(model=model, user=UserFactory(), purpose=f"依頼{n}")
    headers = _auth(society_admin)

    # auth (2), roles (3), second factor, admin societies, count, page with model and user
    with django_assert_num_queries(9):
        response = client.get("/api/v1/ai/access-requests/?to_decide=1", **headers)

    assert response.json()["count"] == count


def test_api_access_request_decision_refusals_change_nothing(client, model, version, outsider, society_admin):
    request = ModelAccessRequest.objects.create(model=model, user=outsider, purpose="研究")
    stranger = UserFactory(email="stranger@example.com")
    url = f"/api/v1/ai/access-requests/{request.pk}/decision/"

    own = client.post(url, data={"approve": True}, content_type="application/json", **_auth(outsider))
    foreign = client.post(url, data={"approve": True}, content_type="application/json", **_auth(stranger))
    no_note = client.post(url, data={"approve": False}, content_type="application/json", **_auth(society_admin))

    assert own.status_code == 403
    assert foreign.status_code == 404
    assert no_note.status_code == 400
    assert no_note.json()["errors"]["note"] == ["Say why the request is rejected."]
    request.refresh_from_db()
    assert request.status == ModelAccessRequest.Status.SUBMITTED
    assert not outsider.has_perm(RUN_PERMISSION, model)
    assert not AuditEvent.objects.filter(action="ai.access_decided").exists()


def test_api_access_request_rejected_with_note(client, model, version, outsider, society_admin):
    request = ModelAccessRequest.objects.create(model=model, user=outsider, purpose="研究")

    response = client.post(f"/api/v1/ai/access-requests/{request.pk}/decision/",
                           data={"approve": False, "note": "目的が不明確です"}, content_type="application/json",
                           **_auth(society_admin))

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["decision_note"] == "目的が不明確です"


def test_api_access_request_withdraw_by_the_requester_only(client, model, version, outsider, society_admin):
    request = ModelAccessRequest.objects.create(model=model, user=outsider, purpose="研究")
    url = f"/api/v1/ai/access-requests/{request.pk}/withdraw/"

    by_admin = client.post(url, **_auth(society_admin))
    request.refresh_from_db()
    assert by_admin.status_code == 403
    assert request.status == ModelAccessRequest.Status.SUBMITTED

    by_requester = client.post(url, **_auth(outsider))

    assert by_requester.status_code == 200
    assert by_requester.json()["status"] == "withdrawn"
    assert AuditEvent.objects.filter(action="ai.access_withdrawn").count() == 1


def test_api_access_revoke_takes_the_right_back(client, model, version, outsider, society_admin):
    request = ModelAccessRequest.objects.create(model=model, user=outsider, purpose="研究")
    client.post(f"/api/v1/ai/access-requests/{request.pk}/decision/", data={"approve": True},
                content_type="application/json", **_auth(society_admin))
    url = f"/api/v1/ai/access-requests/{request.pk}/revoke/"

    by_requester = client.post(url, data={"reason": "自分で"}, **_auth(outsider))
    no_reason = client.post(url, data={}, **_auth(society_admin))
    assert (by_requester.status_code, no_reason.status_code) == (403, 400)
    assert client.get("/api/v1/ai/models/organ/", **_auth(outsider)).json()["may_run"] is True

    revoked = client.post(url, data={"reason": "利用目的の逸脱"}, **_auth(society_admin))

    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["decision_note"] == "利用目的の逸脱"
    assert client.get("/api/v1/ai/models/organ/", **_auth(outsider)).json()["may_run"] is False
    job = client.post("/api/v1/ai/jobs/", data={"model": "organ", "version": "1.0.0",
                                                "files": [_upload("a.png", _png())]}, **_auth(outsider))
    assert job.status_code == 403


# --- Inference jobs ------------------------------------------------------------------------------


def test_api_job_without_permission_is_403_and_nothing_written(client, model, version, outsider, holder):
    for user in (outsider, holder):  # a grant holder too: the card does not open the model to them
        response = client.post("/api/v1/ai/jobs/", data={
            "model": "organ", "version": "1.0.0", "files": [_upload("a.png", _png())],
        }, **_auth(user))

        assert response.status_code == 403, user.email
        assert response.json()["code"] == "permission_denied"
    assert not InferenceJob.objects.exists()
    assert not AuditEvent.objects.filter(action="ai.job_created").exists()


def test_api_job_page_and_api_agree_on_refusal(client, model, version, outsider):
    client.force_login(outsider)

    page = client.get(reverse("ai:run", args=["organ", "1.0.0"]))
    api = client.post("/api/v1/ai/jobs/", data={"model": "organ", "version": "1.0.0",
                                                "files": [_upload("a.png", _png())]})

    assert (page.status_code, api.status_code) == (403, 403)


def test_api_job_upload_runs_and_reports_results(client, model, version, runner, storage_root,
                                                 django_capture_on_commit_callbacks):
    headers = _auth(runner)
    files = [_upload("stomach.png", _png("stomach", 3)), _upload("notes.txt", b"not an image"),
             _upload("duodenum.png", _png("duodenum", 4))]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/ai/jobs/", data={"model": "organ", "version": "1.0.0", "files": files},
                               **headers)

    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["model"] == "organ"
    assert created["version"] == "1.0.0"
    assert created["source"] == "upload"
    assert created["total"] == 3
    assert created["demo_notice"] == DEMO_NOTICE_EN
    job = InferenceJob.objects.get(pk=created["id"])
    assert job.status == InferenceJob.Status.FINISHED_WITH_FAILURES

    detail = client.get(f"/api/v1/ai/jobs/{job.pk}/", **headers).json()

    assert detail["status"] == "finished_with_failures"
    assert (detail["total"], detail["done"], detail["failed"], detail["percent"]) == (3, 3, 1, 100)
    assert detail["model_sha256"] == version.artefact_sha256
    assert detail["demo_notice"] == DEMO_NOTICE_EN
    assert [item["name"] for item in detail["items"]] == ["stomach.png", "notes.txt", "duodenum.png"]
    ok, bad, ok2 = detail["items"]
    assert bad["status"] == "failed"
    assert "not a JPEG, PNG or DICOM image" in bad["reason"]
    assert bad["label"] == "" and bad["probabilities"] == {}
    for item in (ok, ok2):
        assert item["status"] == "succeeded"
        assert list(item["probabilities"]) == ["esophagus", "stomach", "duodenum"]
        assert sum(item["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert item["label"] == max(item["probabilities"], key=item["probabilities"].get)
        assert item["label_name"] == {"esophagus": "Esophagus", "stomach": "Stomach",
                                      "duodenum": "Duodenum"}[item["label"]]
        assert item["thumbnail_url"] == reverse("ai:thumbnail", args=[job.pk, item["position"]])
    assert ok["input_sha256"] == hashlib.sha256(files[0].getvalue()).hexdigest()
    event = AuditEvent.objects.get(action="ai.job_created")
    assert event.actor_id == runner.pk
    assert event.details["inputs"] == [hashlib.sha256(f.getvalue()).hexdigest() for f in files]


def test_api_job_results_csv_and_json(client, model, version, runner, django_capture_on_commit_callbacks):
    headers = _auth(runner)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/v1/ai/jobs/", data={
            "model": "organ", "version": "1.0.0", "files[]": [_upload("胃.png", _png("stomach", 5))],
        }, **headers).json()

    as_csv = client.get(f"/api/v1/ai/jobs/{created['id']}/results.csv", **headers)
    as_json = client.get(f"/api/v1/ai/jobs/{created['id']}/results.json", **headers)

    assert as_csv.status_code == 200
    assert as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in as_csv["Content-Disposition"]
    text = as_csv.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [DEMO_NOTICE_EN]
    assert rows[1][:6] == ["position", "file", "input_sha256", "status", "label", "label_name"]
    assert rows[2][1] == "胃.png"
    assert rows[2][3] == "succeeded"
    assert as_json.status_code == 200
    body = as_json.json()
    assert body["demo_notice"] == DEMO_NOTICE_EN
    assert body["model"]["sha256"] == version.artefact_sha256
    assert [item["file"] for item in body["items"]] == ["胃.png"]


def test_api_job_from_release_files(client, model, version, holder, release):
    model.open_to_grant_holders = True
    model.save()
    picks = list(release.files.order_by("path").values_list("pk", flat=True))

    response = client.post("/api/v1/ai/jobs/", data={"model": "organ", "version": "1.0.0", "release_files": picks},
                           **_auth(holder))

    assert response.status_code == 201, response.json()
    assert response.json()["source"] == "release"
    assert response.json()["release"] == release.pk
    assert [item["name"] for item in response.json()["items"]] == ["cases/a.png", "cases/b.png"]


def test_api_job_release_file_without_grant_is_400_naming_it(client, model, version, runner, release):
    pick = release.files.get(path="cases/a.png").pk

    response = client.post("/api/v1/ai/jobs/", data={"model": "organ", "version": "1.0.0", "release_files": [pick]},
                           **_auth(runner))

    assert response.status_code == 400
    assert "cases/a.png" in response.json()["errors"]["release_files"][0]
    assert not InferenceJob.objects.exists()


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"version": "1.0.0"}, "model", "This field is required."),
    ({"model": "nope", "version": "1.0.0"}, "model", "No such model."),
    ({"model": "organ", "version": "9.9.9"}, "version", "This model has no version 9.9.9."),
    ({"model": "organ", "version": "1.0.0"}, "non_field_errors", "Choose at least one image."),
    ({"model": "organ", "version": "1.0.0", "release_files": ["x"]}, "release_files",
     "Give the files as numeric ids."),
    ({"model": "organ", "version": "1.0.0", "release_files": [999999]}, "release_files",
     "No such release file: 999999."),
])
def test_api_job_bad_requests_are_400_with_messages(client, model, version, runner, form, field, message):
    response = client.post("/api/v1/ai/jobs/", data=form, **_auth(runner))

    assert response.status_code == 400
    assert response.json()["errors"][field] == [message]
    assert not InferenceJob.objects.exists()


def test_api_job_too_many_images_is_400(client, model, version, runner, settings):
    settings.PORTAL_AI_MAX_IMAGES = 1

    response = client.post("/api/v1/ai/jobs/", data={
        "model": "organ", "version": "1.0.0", "files": [_upload("a.png", _png()), _upload("b.png", _png())],
    }, **_auth(runner))

    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"] == [
        "2 images were given; at most 1 can be run in one job."]
    assert not InferenceJob.objects.exists()


def test_api_job_on_retired_version_is_400(client, model, version, runner):
    published_version(model, version="0.9.0", status=ModelVersion.Status.RETIRED)

    response = client.post("/api/v1/ai/jobs/", data={
        "model": "organ", "version": "0.9.0", "files": [_upload("a.png", _png())],
    }, **_auth(runner))

    assert response.status_code == 400
    (message,) = response.json()["errors"]["non_field_errors"]
    assert message.startswith("This version was retired on")
    assert message.endswith("choose a published version.")
    assert not InferenceJob.objects.exists()


def test_api_jobs_are_private(client, model, version, runner, outsider):
    job = InferenceJob.objects.create(user=runner, version=version, source=InferenceJob.Source.UPLOAD, total=1)
    InferenceItem.objects.create(job=job, position=1, name="a.png", input_sha256="a" * 64)
    headers = _auth(outsider)

    assert client.get("/api/v1/ai/jobs/", **headers).json()["results"] == []
    for suffix in ("", "results.csv", "results.json"):
        assert client.get(f"/api/v1/ai/jobs/{job.pk}/{suffix}", **headers).status_code == 404, suffix
    assert client.get(f"/api/v1/ai/jobs/{job.pk}/", **_auth(runner)).status_code == 200


@pytest.mark.parametrize("count", [1, 3])
def test_api_job_list_query_count_fixed(client, model, version, runner, count, django_assert_num_queries):
    for _ in range(count):
        InferenceJob.objects.create(user=runner, version=version, source=InferenceJob.Source.UPLOAD, total=1)
    headers = _auth(runner)

    with django_assert_num_queries(7):  # auth (2), roles (3), count, page with model and version
        response = client.get("/api/v1/ai/jobs/", **headers)

    body = response.json()
    assert body["count"] == count
    assert body["results"][0]["model"] == "organ"
    assert body["results"][0]["status"] == "pending"
    assert body["results"][0]["percent"] == 0


# --- Schema ------------------------------------------------------------------------------------


def test_api_schema_of_ai_endpoints_has_no_warnings():
    """Generated from this app's endpoints alone, with the schema's enum names for the AI models."""
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.plumbing import _load_enum_name_overrides
    from drf_spectacular.settings import spectacular_settings

    overrides = {**spectacular_settings.ENUM_NAME_OVERRIDES, **AI_ENUM_NAME_OVERRIDES}
    spectacular_settings.apply_patches({"ENUM_NAME_OVERRIDES": overrides})
    _load_enum_name_overrides.cache_clear()
    GENERATOR_STATS.reset()
    try:
        schema = SchemaGenerator(patterns=[path("api/v1/", include("portal.ai.api_urls"))]).get_schema(
            request=None, public=True)
    finally:
        spectacular_settings.clear_patches()
        _load_enum_name_overrides.cache_clear()

    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    assert sorted(schema["paths"]) == [
        "/api/v1/ai/access-requests/", "/api/v1/ai/access-requests/{id}/decision/",
        "/api/v1/ai/access-requests/{id}/revoke/", "/api/v1/ai/access-requests/{id}/withdraw/", "/api/v1/ai/jobs/",
        "/api/v1/ai/jobs/{id}/", "/api/v1/ai/jobs/{id}/images/delete/", "/api/v1/ai/jobs/{id}/results.csv", "/api/v1/ai/jobs/{id}/results.json",
        "/api/v1/ai/models/", "/api/v1/ai/models/{slug}/", "/api/v1/ai/models/{slug}/access-requests/",
        "/api/v1/ai/models/{slug}/versions/", "/api/v1/ai/models/{slug}/versions/{version}/",
        "/api/v1/ai/models/{slug}/versions/{version}/publish/",
        "/api/v1/ai/models/{slug}/versions/{version}/retire/",
    ]
    assert set(AI_ENUM_NAME_OVERRIDES) <= set(schema["components"]["schemas"])
    assert "multipart/form-data" in schema["paths"]["/api/v1/ai/jobs/"]["post"]["requestBody"]["content"]
    assert {} in schema["paths"]["/api/v1/ai/models/"]["get"]["security"]  # public, like the page
    assert {} not in schema["paths"]["/api/v1/ai/jobs/"]["get"]["security"]


def test_api_schema_whole_has_no_enum_collisions_with_ai_names(client, db):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.plumbing import _load_enum_name_overrides
    from drf_spectacular.settings import spectacular_settings

    overrides = {**spectacular_settings.ENUM_NAME_OVERRIDES, **AI_ENUM_NAME_OVERRIDES}
    spectacular_settings.apply_patches({"ENUM_NAME_OVERRIDES": overrides})
    _load_enum_name_overrides.cache_clear()
    GENERATOR_STATS.reset()
    try:
        SchemaGenerator().get_schema(request=None, public=True)
    finally:
        spectacular_settings.clear_patches()
        _load_enum_name_overrides.cache_clear()

    assert not GENERATOR_STATS, dict(GENERATOR_STATS._warn_cache)

