"""Hosted AI models: the services (models, versions with upload validation, the workflow edge by
edge, access requests, provenance from a real release withdrawal and a real opt-out)."""

from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone

from portal.ai import services, workflow
from portal.ai.models import AIModel, ModelAccessRequest, ModelVersion, ProvenanceNotice
from portal.ai.selectors import may_run
from portal.audit.models import AuditEvent
from portal.datasets.services import release_withdraw
from portal.lib.pseudonym import subject_pseudonym
from portal.optout import services as optout
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory, give_totp
from tests.factories.ai import AIModelFactory, demo_trained, published_version
from tests.factories.datasets import DatasetFactory, FileSpec, make_release

pytestmark = pytest.mark.django_db

V = ModelVersion.Status
R = ModelAccessRequest.Status


@pytest.fixture(autouse=True)
def storage_root(settings, tmp_path):  # type: ignore[no-untyped-def]
    root = tmp_path / "storage"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}}}
    return root


@pytest.fixture
def operator(db):  # type: ignore[no-untyped-def]
    user = UserFactory(email="operator@nii.example.ac.jp", is_staff=True, is_superuser=True)
    give_totp(user)
    return user


@pytest.fixture
def model(society, society_admin):  # type: ignore[no-untyped-def]
    return services.model_create(
        society=society, slug="organ", name_ja="臓器分類", name_en="Organ classifier", task="classification",
        modality="endoscopy", summary_ja="概要", by=society_admin,
    )


def _card(**overrides):  # type: ignore[no-untyped-def]
    trained = demo_trained("endoscopy-organ")
    card = {
        "version": "1.0.0", "artefact": trained.onnx, "labels": trained.labels,
        "input_width": trained.input_width, "input_height": trained.input_height,
        "input_channels": trained.input_channels, "input_mean": trained.input_mean,
        "input_std": trained.input_std, "intended_use_ja": "試験", "limitations_ja": "試験",
        "training_data_ja": "合成画像", "metrics": {"auc": 0.95, "accuracy": 0.9}, "evaluation_set_size": 300,
    }
    card.update(overrides)
    return card


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _stored_files(root) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- Models --------------------------------------------------------------------------------------


def test_model_create_by_society_admin_is_audited(model, society_admin):
    assert (model.slug, model.task, model.is_demo, model.open_to_grant_holders) == (
        "organ", "classification", False, False)
    assert model.created_by == society_admin
    [event] = _events("ai.model_created")
    assert event.details["slug"] == "organ" and event.details["society"] == "jsp"


def test_model_create_by_operator_for_any_society(operator):
    other = SocietyFactory(slug="jges")
    created = services.model_create(society=other, slug="x-model", name_ja="X", task="classification",
                                    modality="endoscopy", by=operator)
    assert created.society == other


def test_model_create_refused_for_admin_of_another_society(society):
    stranger = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(slug="jrs"), user=stranger, role="admin")
    with pytest.raises(PermissionDenied):
        services.model_create(society=society, slug="organ", name_ja="臓器", task="classification",
                              modality="endoscopy", by=stranger)
    assert AIModel.objects.count() == 0
    assert not _events("ai.model_created")


@pytest.mark.parametrize("slug", ["jobs", "manage", "requests"])
def test_model_create_refuses_an_identifier_that_is_a_page(society, society_admin, slug):
    with pytest.raises(ValidationError) as refused:
        services.model_create(society=society, slug=slug, name_ja="名前", task="classification",
                              modality="endoscopy", by=society_admin)
    assert refused.value.message_dict["slug"] == ["This identifier is a page of the portal; choose another."]
    assert AIModel.objects.count() == 0


def test_model_create_validates_fields(society, society_admin, model):
    with pytest.raises(ValidationError) as refused:
        services.model_create(society=society, slug="organ", name_ja=" ", task="tracking", modality="x-ray-ish",
                              by=society_admin)
    assert set(refused.value.message_dict) == {"slug", "name_ja", "task", "modality"}
    assert "already exists" in refused.value.message_dict["slug"][0]
    assert AIModel.objects.count() == 1


def test_model_update_records_changed_fields_only(model, society_admin):
    services.model_update(model=model, name_en="Organs", open_to_grant_holders=True, summary_ja="概要",
                          by=society_admin)
    model.refresh_from_db()
    assert (model.name_en, model.open_to_grant_holders) == ("Organs", True)
    [event] = _events("ai.model_updated")
    assert event.details["changed"] == {
        "name_en": {"from": "Organ classifier", "to": "Organs"},
        "open_to_grant_holders": {"from": False, "to": True},
    }


def test_model_update_refuses_other_fields_and_outsiders(model, society_admin, outsider):
    with pytest.raises(ValidationError):
        services.model_update(model=model, slug="renamed", by=society_admin)
    with pytest.raises(PermissionDenied):
        services.model_update(model=model, name_en="Mine", by=outsider)
    model.refresh_from_db()
    assert (model.slug, model.name_en) == ("organ", "Organ classifier")
    assert not _events("ai.model_updated")


# --- Versions: upload validation ---------------------------------------------------------------


def test_version_upload_stores_the_file_with_its_sha256(model, society_admin, storage_root):
    trained = demo_trained("endoscopy-organ")
    version = services.version_upload(model=model, by=society_admin, **_card())
    sha = hashlib.sha256(trained.onnx).hexdigest()
    assert version.status == V.DRAFT
    assert (version.artefact_sha256, version.artefact_size) == (sha, len(trained.onnx))
    assert version.artefact_key == f"ai/models/organ/1.0.0/{sha}.onnx"
    with default_storage.open(version.artefact_key, "rb") as handle:
        assert handle.read() == trained.onnx
    assert (version.input_name, version.output_name) == ("image", "probabilities")
    assert (version.metric_auc, version.metric_accuracy, version.metric_sensitivity) == (0.95, 0.9, None)
    [event] = _events("ai.version_uploaded")
    assert event.details["sha256"] == sha and event.details["labels"] == ["esophagus", "stomach", "duodenum"]


def test_version_upload_accepts_a_file_object(model, society_admin):
    trained = demo_trained("endoscopy-organ")
    version = services.version_upload(model=model, by=society_admin, **_card(artefact=io.BytesIO(trained.onnx)))
    assert version.artefact_size == len(trained.onnx)


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"artefact": b"this is not an onnx file"}, "artefact", "not an ONNX model"),
    ({"input_width": 32, "input_height": 32}, "artefact", "32"),
    ({"labels": [{"code": "a", "ja": "A"}, {"code": "b", "ja": "B"}]}, "artefact", "3"),
    ({"labels": [{"code": "a"}, {"code": "a"}, {"code": "b"}]}, "labels", "unique"),
    ({"labels": [{"code": "only"}]}, "labels", "at least two"),
    ({"input_mean": [0.5]}, "input_mean", "one number per channel"),
    ({"input_std": [0.2, 0.0, 0.2]}, "input_std", "greater than 0"),
    ({"metrics": {"auc": 1.2}}, "metrics", "between 0 and 1"),
    ({"metrics": {"f1": 0.5}}, "metrics", "Unknown"),
    ({"evaluation_set_size": 0}, "evaluation_set_size", "number of images"),
    ({"version": "../1"}, "version", "letters"),
    ({"intended_use_ja": ""}, "intended_use_ja", "required"),
])
def test_version_upload_refusals_write_nothing(model, society_admin, storage_root, overrides, field, words):
    with pytest.raises(ValidationError) as refused:
        services.version_upload(model=model, by=society_admin, **_card(**overrides))
    assert field in refused.value.message_dict
    assert any(words in message for message in refused.value.message_dict[field]), refused.value.message_dict
    assert ModelVersion.objects.count() == 0
    assert _stored_files(storage_root) == []
    assert not _events("ai.version_uploaded")


def test_version_upload_card_mismatch_names_both_sides(model, society_admin):
    with pytest.raises(ValidationError) as refused:
        services.version_upload(model=model, by=society_admin, **_card(input_width=32, input_height=32))
    message = refused.value.message_dict["artefact"][0]
    assert "64" in message and "32" in message


def test_version_upload_too_big(model, society_admin, settings, storage_root):
    settings.PORTAL_AI_MAX_MODEL_MB = 0
    with pytest.raises(ValidationError) as refused:
        services.version_upload(model=model, by=society_admin, **_card())
    assert "at most 0 MB" in refused.value.message_dict["artefact"][0]
    assert ModelVersion.objects.count() == 0 and _stored_files(storage_root) == []


def test_version_upload_same_version_twice_refused(model, society_admin):
    services.version_upload(model=model, by=society_admin, **_card())
    with pytest.raises(ValidationError) as refused:
        services.version_upload(model=model, by=society_admin, **_card())
    assert "already has a version 1.0.0" in refused.value.message_dict["version"][0]
    assert ModelVersion.objects.count() == 1


def test_version_upload_refused_to_outsider(model, outsider, storage_root):
    with pytest.raises(PermissionDenied):
        services.version_upload(model=model, by=outsider, **_card())
    assert ModelVersion.objects.count() == 0 and _stored_files(storage_root) == []


def test_version_upload_removes_the_file_when_the_transaction_fails(model, society_admin, storage_root,
                                                                   monkeypatch):
    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services.versions, "audit_record", broken)
    with pytest.raises(RuntimeError):
        services.version_upload(model=model, by=society_admin, **_card())
    assert ModelVersion.objects.count() == 0
    assert _stored_files(storage_root) == []


def test_version_upload_records_provenance(model, society_admin, society):
    dataset = DatasetFactory(society=society)
    training = make_release(dataset, [FileSpec("s1")], store=False)
    evaluation = make_release(dataset, [FileSpec("s2")], store=False)
    version = services.version_upload(model=model, by=society_admin, training_releases=[training],
                                      evaluation_releases=[evaluation], **_card())
    assert list(version.training_releases.all()) == [training]
    assert list(version.evaluation_releases.all()) == [evaluation]


# --- Versions: the workflow, edge by edge ------------------------------------------------------


def test_every_version_edge_is_tested():
    assert {
        ("publish", V.DRAFT, V.PUBLISHED), ("retire", V.PUBLISHED, V.RETIRED), ("retire", V.DRAFT, V.RETIRED),
    } == workflow.VERSION_EDGES


def test_publish_draft(model, society_admin):
    version = services.version_upload(model=model, by=society_admin, **_card())
    services.version_publish(version=version, by=society_admin)
    assert version.status == V.PUBLISHED and version.published_by == society_admin
    assert version.published_at is not None
    assert _events("ai.version_published")[0].details["to"] == "published"


def test_retire_published_needs_a_reason(model, society_admin):
    version = published_version(model)
    with pytest.raises(ValidationError) as refused:
        services.version_retire(version=version, reason=" ", by=society_admin)
    assert "reason" in refused.value.message_dict
    version.refresh_from_db()
    assert version.status == V.PUBLISHED
    services.version_retire(version=version, reason="新しい版に置き換え", by=society_admin)
    assert (version.status, version.retire_reason, version.retired_by) == (V.RETIRED, "新しい版に置き換え",
                                                                            society_admin)
    assert _events("ai.version_retired")[0].details["from"] == "published"


def test_retire_draft(model, society_admin):
    version = published_version(model, status=V.DRAFT)
    services.version_retire(version=version, reason="誤登録", by=society_admin)
    assert version.status == V.RETIRED


@pytest.mark.parametrize(("status", "action"), [
    (V.PUBLISHED, "publish"), (V.RETIRED, "publish"), (V.RETIRED, "retire"),
])
def test_version_transitions_not_in_the_table_are_refused(model, society_admin, status, action):
    version = published_version(model, status=status)
    with pytest.raises(workflow.TransitionNotAllowed) as refused:
        if action == "publish":
            services.version_publish(version=version, by=society_admin)
        else:
            services.version_retire(version=version, reason="理由", by=society_admin)
    assert "cannot be done while the status is" in refused.value.messages[0]
    version.refresh_from_db()
    assert version.status == status
    assert not _events(f"ai.version_{'published' if action == 'publish' else 'retired'}")


def test_publish_refused_to_outsider(model, outsider):
    version = published_version(model, status=V.DRAFT)
    with pytest.raises(PermissionDenied):
        services.version_publish(version=version, by=outsider)
    version.refresh_from_db()
    assert version.status == V.DRAFT


# --- Access requests ---------------------------------------------------------------------------


def test_every_request_edge_is_tested():
    assert {
        ("approve", R.SUBMITTED, R.APPROVED), ("reject", R.SUBMITTED, R.REJECTED),
        ("withdraw", R.SUBMITTED, R.WITHDRAWN), ("revoke", R.APPROVED, R.REVOKED),
    } == workflow.REQUEST_EDGES


@pytest.fixture
def runnable(model):  # type: ignore[no-untyped-def]
    published_version(model)
    return model


def test_submit_then_approve_gives_the_permission(runnable, applicant, society_admin, mailoutbox,
                                                  django_capture_on_commit_callbacks):
    assert not may_run(applicant, runnable)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.access_request_submit(model=runnable, user=applicant, purpose="製品評価")
    assert request.status == R.SUBMITTED
    assert [m.to for m in mailoutbox] == [[society_admin.email]]
    with django_capture_on_commit_callbacks(execute=True):
        services.access_request_decide(request=request, approve=True, by=society_admin)
    assert (request.status, request.decided_by) == (R.APPROVED, society_admin)
    fresh = type(applicant).objects.get(pk=applicant.pk)
    assert may_run(fresh, runnable)
    assert mailoutbox[-1].to == [applicant.email]
    assert mailoutbox[-1].subject == "[AI models] Your request to run organ was approved"
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="ai.access").order_by("id")] == [
        "ai.access_requested", "ai.access_decided"]


def test_reject_needs_a_note(runnable, applicant, society_admin):
    request = services.access_request_submit(model=runnable, user=applicant, purpose="評価")
    with pytest.raises(ValidationError) as refused:
        services.access_request_decide(request=request, approve=False, by=society_admin)
    assert "note" in refused.value.message_dict
    request.refresh_from_db()
    assert request.status == R.SUBMITTED
    services.access_request_decide(request=request, approve=False, note="目的が不明確", by=society_admin)
    assert (request.status, request.decision_note) == (R.REJECTED, "目的が不明確")
    assert not may_run(type(applicant).objects.get(pk=applicant.pk), runnable)


def test_decide_refused_to_non_admin(runnable, applicant, outsider):
    request = services.access_request_submit(model=runnable, user=applicant, purpose="評価")
    with pytest.raises(PermissionDenied):
        services.access_request_decide(request=request, approve=True, by=outsider)
    with pytest.raises(PermissionDenied):
        services.access_request_decide(request=request, approve=True, by=applicant)
    request.refresh_from_db()
    assert request.status == R.SUBMITTED
    assert not may_run(type(applicant).objects.get(pk=applicant.pk), runnable)


def test_withdraw_only_by_requester_and_only_while_submitted(runnable, applicant, outsider, society_admin):
    request = services.access_request_submit(model=runnable, user=applicant, purpose="評価")
    with pytest.raises(PermissionDenied):
        services.access_request_withdraw(request=request, by=outsider)
    services.access_request_withdraw(request=request, by=applicant)
    assert request.status == R.WITHDRAWN
    again = services.access_request_submit(model=runnable, user=applicant, purpose="再申請")
    services.access_request_decide(request=again, approve=True, by=society_admin)
    with pytest.raises(workflow.TransitionNotAllowed):
        services.access_request_withdraw(request=again, by=applicant)
    again.refresh_from_db()
    assert again.status == R.APPROVED


def test_revoke_removes_the_permission(runnable, applicant, society_admin, mailoutbox,
                                       django_capture_on_commit_callbacks):
    request = services.access_request_submit(model=runnable, user=applicant, purpose="評価")
    services.access_request_decide(request=request, approve=True, by=society_admin)
    with pytest.raises(ValidationError):
        services.access_revoke(request=request, reason="", by=society_admin)
    assert may_run(type(applicant).objects.get(pk=applicant.pk), runnable)
    with django_capture_on_commit_callbacks(execute=True):
        services.access_revoke(request=request, reason="契約違反", by=society_admin)
    assert request.status == R.REVOKED
    assert not may_run(type(applicant).objects.get(pk=applicant.pk), runnable)
    assert mailoutbox[-1].subject == "[AI models] Your access to model organ was revoked"
    with pytest.raises(workflow.TransitionNotAllowed):
        services.access_revoke(request=request, reason="再度", by=society_admin)


@pytest.mark.parametrize("status", [R.REJECTED, R.WITHDRAWN, R.REVOKED])
def test_closed_requests_cannot_be_decided(runnable, applicant, society_admin, status):
    decided = {} if status == R.WITHDRAWN else {"decided_by": society_admin, "decided_at": timezone.now()}
    request = ModelAccessRequest.objects.create(model=runnable, user=applicant, purpose="x", status=status, **decided)
    with pytest.raises(workflow.TransitionNotAllowed):
        services.access_request_decide(request=request, approve=True, by=society_admin)
    request.refresh_from_db()
    assert request.status == status


def test_submit_refusals(model, runnable, applicant, society_admin):
    services.access_request_submit(model=runnable, user=applicant, purpose="評価")
    with pytest.raises(ValidationError) as refused:
        services.access_request_submit(model=runnable, user=applicant, purpose="もう一度")
    assert "already have an open request" in refused.value.messages[0]
    with pytest.raises(ValidationError) as refused:
        services.access_request_submit(model=runnable, user=society_admin, purpose="管理者")
    assert "already run" in refused.value.messages[0]
    with pytest.raises(ValidationError) as refused:
        services.access_request_submit(model=runnable, user=UserFactory(), purpose="")
    assert "purpose" in refused.value.message_dict
    assert ModelAccessRequest.objects.count() == 1


def test_submit_refused_without_published_version(model, applicant):
    published_version(model, status=V.DRAFT)
    with pytest.raises(ValidationError) as refused:
        services.access_request_submit(model=model, user=applicant, purpose="評価")
    assert "no published version" in refused.value.messages[0]
    assert ModelAccessRequest.objects.count() == 0


# --- Provenance ----------------------------------------------------------------------------------


@pytest.fixture
def built_on(society, society_admin):  # type: ignore[no-untyped-def]
    """A version trained on release 1 and evaluated on release 2 of the society's dataset."""
    subject = subject_pseudonym(institution_code="1310001234", patient_id="PT-0098765432")
    dataset = DatasetFactory(society=society, slug="jsp-path", modality="pathology_wsi")
    training = make_release(dataset, [FileSpec(subject, date(2024, 5, 1)), FileSpec(subject, date(2024, 5, 1)),
                                      FileSpec("other", date(2024, 5, 1))], store=False)
    evaluation = make_release(dataset, [FileSpec("third", date(2024, 6, 1))], store=False)
    version = published_version(AIModelFactory(society=society, slug="path-tile"))
    version.training_releases.set([training])
    version.evaluation_releases.set([evaluation])
    return version, training, evaluation


def test_release_withdrawal_flags_the_versions_built_on_it(built_on, society_admin, mailoutbox,
                                                         django_capture_on_commit_callbacks):
    version, _training, evaluation = built_on
    untouched = published_version(AIModelFactory(society=version.model.society, slug="unrelated"))
    with django_capture_on_commit_callbacks(execute=True):
        release_withdraw(release=evaluation, reason="同意撤回の反映漏れ", by=society_admin)
    [notice] = ProvenanceNotice.objects.all()
    assert (notice.version, notice.release, notice.kind) == (version, evaluation, "release_withdrawn")
    assert notice.details == {"reason": "同意撤回の反映漏れ"}
    assert not untouched.provenance_notices.exists()
    [event] = _events("ai.provenance_flagged")
    assert event.details["uses"] == ["evaluation"] and event.details["kind"] == "release_withdrawn"
    ai_mail = [m for m in mailoutbox if m.subject.startswith("[AI models]")]
    assert [m.to for m in ai_mail] == [[society_admin.email]]
    assert "path-tile 1.0.0" in ai_mail[0].subject


def test_withdrawal_refused_flags_nothing(built_on, outsider):
    _version, training, _evaluation = built_on
    with pytest.raises(PermissionDenied):
        release_withdraw(release=training, reason="理由", by=outsider)
    assert not ProvenanceNotice.objects.exists()


def test_opt_out_flags_the_versions_with_reference_and_count(built_on, society, society_admin, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    version, training, _evaluation = built_on
    with django_capture_on_commit_callbacks(execute=True):
        request = optout.optout_request_record(
            society=society, patient_id="PT-0098765432", institution_code="1310001234",
            received_at=timezone.now() - timedelta(hours=1), channel="counter", requester_type="subject",
            identity_verification="診察券で確認", all_protocols=True, protocols=[], modalities=[],
            extent="future_only", action_taken="stop_use", by=society_admin,
        )
    [notice] = ProvenanceNotice.objects.all()
    assert (notice.version, notice.release, notice.kind) == (version, training, "subjects_opted_out")
    assert notice.details == {"reference": request.reference, "files": 2}
    assert request.subject_pseudonym not in str(notice.details)
    [event] = _events("ai.provenance_flagged")
    assert event.details["uses"] == ["training"] and event.details["files"] == 2
    assert request.subject_pseudonym not in str(event.details)
    assert any(m.subject.startswith("[AI models]") and m.to == [society_admin.email] for m in mailoutbox)


def test_provenance_mail_goes_to_the_model_society_admins_only(built_on, society_admin):
    _version, training, _evaluation = built_on
    other_admin = UserFactory(email="admin@jrs.example.jp")
    SocietyMembershipFactory(society=SocietyFactory(slug="jrs"), user=other_admin, role="admin")
    mail.outbox.clear()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        services.provenance_release_withdrawn(release=training)
    assert [m.to for m in mail.outbox] == [[society_admin.email]]
