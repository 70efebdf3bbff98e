"""The database itself refuses a row that breaks a status invariant (issue 13, item 3).

Each case starts from one valid row of every stateful model (``rows``) and writes a violation
past the services (a queryset update or a bare insert); the database names the constraint that
refused it, and the row is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.access.models import (
    AccessRequest,
    Grant,
    GrantAmendment,
    SecurityAnswer,
    SocietyReview,
    UsageReport,
)
from portal.agreements.models import AgreementTemplateVersion, SignedAgreement
from portal.ai.models import InferenceItem, InferenceJob, ModelAccessRequest, ModelVersion
from portal.datasets.models import Dataset, DatasetRelease
from portal.deid.models import DeidFileResult, DeidJob
from portal.ethics.models import Protocol
from portal.lib.constraints import status_in_choices
from portal.linkage.models import LinkageApproval
from portal.notifications.models import Notification
from portal.optout.models import (
    DeletionConfirmation,
    OptOutNotice,
    OptOutNoticeVersion,
    OptOutRequest,
)
from tests.access.test_links import make_world
from tests.factories import UserFactory
from tests.factories.ai import AIModelFactory, published_version


@dataclass
class Rows:
    user: Any
    grant: Grant
    release: DatasetRelease
    notice: OptOutNotice
    version: ModelVersion
    extra: dict[str, Any]


@pytest.fixture
def rows(society, settings, tmp_path) -> Rows:  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    world = make_world(society)
    user = UserFactory()
    now = timezone.now()
    version = published_version(AIModelFactory())
    job = InferenceJob.objects.create(user=user, version=version, source=InferenceJob.Source.UPLOAD, total=1)
    deid_job = DeidJob.objects.create(society=society, source_kind=DeidJob.SourceKind.choices[0][0])
    request = OptOutRequest.objects.create(
        handled_by=user, reference="OR-C1", society=society, subject_pseudonym="c" * 32, received_at=now,
        channel="phone", requester_type="subject", identity_verification="確認", extent="future_only",
        action_taken="stop_use",
    )
    extra = {
        "report": UsageReport.objects.create(grant=world.grant, kind="annual", due_on=now.date(),
                                             period_from=now.date(), period_to=now.date()),
        "amendment": GrantAmendment.objects.create(grant=world.grant, requested_by=world.user,
                                                   previous_expires_at=world.grant.expires_at, reason="延長"),
        "access": ModelAccessRequest.objects.create(model=version.model, user=user, purpose="評価"),
        "job": job,
        "item": InferenceItem.objects.create(job=job, position=1, name="a.png", input_sha256="a" * 64),
        "deid_job": deid_job,
        "deid_result": DeidFileResult.objects.create(job=deid_job, source_path="a.dcm", status="changed"),
        "optout_request": request,
        "deletion": DeletionConfirmation.objects.create(request=request, release=world.release, grant=world.grant,
                                                        holder=world.user, notified_at=now),
        "approval": LinkageApproval.objects.create(user=user, purpose="照合", valid_until=now.date() + timedelta(days=30),
                                                   granted_by=UserFactory()),
        "notification": Notification.objects.create(recipient=user, area="test", subject="件名"),
    }
    return Rows(world.user, world.grant, world.release, world.notice, version, extra)


def _update(model: type, pick: Callable[[Rows], Any], **fields: Any) -> Callable[[Rows], None]:
    def write(rows: Rows) -> None:
        model.objects.filter(pk=pick(rows).pk).update(**fields)  # type: ignore[attr-defined]
    return write


def _review(rows: Rows) -> SocietyReview:
    return SocietyReview.objects.get(access_request=rows.grant.access_request)


def _release(rows: Rows, **fields: Any) -> None:
    # A release is never updated (a trigger on PostgreSQL): the violation is a new row.
    DatasetRelease.objects.create(dataset=rows.release.dataset, version=99, source="upload",
                                  manifest_sha256="0" * 64, **fields)


def _agreement(rows: Rows) -> SignedAgreement:
    return SignedAgreement.objects.get(access_request=rows.grant.access_request)


def _notice_version(rows: Rows) -> OptOutNoticeVersion:
    return OptOutNoticeVersion.objects.get(notice=rows.notice)


def _extra(name: str) -> Callable[[Rows], Any]:
    return lambda rows: rows.extra[name]


NOW = timezone.now
BOGUS = "bogus"  # shorter than every status column (varchar(10) on PostgreSQL)

CASES: dict[str, Callable[[Rows], None]] = {
    # Every status column holds one of its choices.
    "access_request_status_valid": _update(AccessRequest, lambda r: r.grant.access_request, status=BOGUS),
    "security_answer_status_valid": _update(
        SecurityAnswer, lambda r: SecurityAnswer.objects.get(access_request=r.grant.access_request), status=BOGUS),
    "society_review_status_valid": _update(SocietyReview, _review, status=BOGUS),
    "grant_status_valid": _update(Grant, lambda r: r.grant, status=BOGUS),
    "usage_report_status_valid": _update(UsageReport, _extra("report"), status=BOGUS),
    "grant_amendment_status_valid": _update(GrantAmendment, _extra("amendment"), status=BOGUS),
    "agreement_version_status_valid": _update(
        AgreementTemplateVersion, lambda r: _agreement(r).template_version, status=BOGUS),
    "signed_agreement_status_valid": _update(SignedAgreement, _agreement, status=BOGUS),
    "ai_version_status_valid": _update(ModelVersion, lambda r: r.version, status=BOGUS),
    "ai_access_request_status_valid": _update(ModelAccessRequest, _extra("access"), status=BOGUS),
    "ai_job_status_valid": _update(InferenceJob, _extra("job"), status=BOGUS),
    "ai_item_status_valid": _update(InferenceItem, _extra("item"), status=BOGUS),
    "dataset_status_valid": _update(Dataset, lambda r: r.release.dataset, status=BOGUS),
    "release_status_valid": lambda rows: _release(rows, status=BOGUS),
    "deid_job_status_valid": _update(DeidJob, _extra("deid_job"), status=BOGUS),
    "deid_result_status_valid": _update(DeidFileResult, _extra("deid_result"), status=BOGUS),
    "protocol_status_valid": _update(Protocol, lambda r: r.grant.access_request.ethics_protocol, status=BOGUS),
    "optout_notice_status_valid": _update(OptOutNotice, lambda r: r.notice, status=BOGUS),
    "optout_notice_version_status_valid": _update(OptOutNoticeVersion, _notice_version, status=BOGUS),
    "optout_request_status_valid": _update(OptOutRequest, _extra("optout_request"), status=BOGUS),
    "deletion_confirmation_status_valid": _update(DeletionConfirmation, _extra("deletion"), status=BOGUS),
    "notification_mail_status_valid": _update(Notification, _extra("notification"), mail_status=BOGUS),
    # Each state records what it implies.
    "society_review_screening_paired": _update(SocietyReview, _review, screened_by=None),
    "society_review_decision_paired": _update(SocietyReview, _review, decided_by=None),
    "society_review_past_screening_screened": _update(
        SocietyReview, _review, status="committee", screened_at=None, screened_by=None),
    "society_review_decided_has_decision": _update(SocietyReview, _review, decided_at=None, decided_by=None),
    "grant_revoked_iff_revoked_at": _update(Grant, lambda r: r.grant, status="revoked"),
    "grant_amendment_decided_has_decision": _update(GrantAmendment, _extra("amendment"), status="approved"),
    "agreement_version_published_has_published_at": _update(
        AgreementTemplateVersion, lambda r: _agreement(r).template_version, published_at=None),
    "signed_agreement_completed_countersigned": _update(
        SignedAgreement, _agreement, countersigned_at=None, countersigned_by=None),
    "ai_version_published_has_published_at": _update(ModelVersion, lambda r: r.version, published_at=None),
    "ai_version_retired_has_retired_at": _update(ModelVersion, lambda r: r.version, status="retired"),
    "ai_access_request_decision_paired": _update(ModelAccessRequest, _extra("access"), decided_at=NOW()),
    "ai_access_request_decided_has_decision": _update(ModelAccessRequest, _extra("access"), status="approved"),
    "dataset_published_has_published_at": _update(
        Dataset, lambda r: r.release.dataset, status="published", published_at=None),
    "dataset_withdrawn_has_withdrawal": _update(
        Dataset, lambda r: r.release.dataset, status="withdrawn", withdrawn_at=NOW()),
    "release_withdrawn_has_withdrawal": lambda rows: _release(rows, status="withdrawn", withdrawn_at=NOW()),
    "optout_notice_published_has_first_published_at": _update(
        OptOutNotice, lambda r: r.notice, first_published_at=None),
    "optout_notice_withdrawn_has_withdrawal": _update(OptOutNotice, lambda r: r.notice, status="withdrawn"),
    "optout_notice_version_published_has_published_at": _update(
        OptOutNoticeVersion, _notice_version, published_at=None),
    "deletion_confirmation_confirmed_has_confirmed_at": _update(
        DeletionConfirmation, _extra("deletion"), status="confirmed"),
    "linkage_approval_revocation_paired": _update(LinkageApproval, _extra("approval"), revoked_at=NOW()),
}


@pytest.mark.parametrize("constraint", sorted(CASES))
def test_database_refuses_violation(rows, constraint):
    violate = CASES[constraint]
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        violate(rows)
    assert constraint in str(error.value)


def test_grant_revoked_with_its_record_accepted(rows):
    Grant.objects.filter(pk=rows.grant.pk).update(
        status="revoked", revoked_at=timezone.now(), revoked_by=rows.user, revoke_reason="目的外利用")
    assert Grant.objects.get(pk=rows.grant.pk).status == "revoked"


def test_status_in_choices_follows_the_choices():
    constraint = status_in_choices(Grant.Status, name="x")
    assert constraint.condition.children == [("status__in", ["active", "paused", "expired", "revoked", "ended"])]
