"""Every change to opt-out notices and requests: checked, saved, audited and notified in one transaction.

Notices are drafted, published and withdrawn by the society's admins (or the platform operator).
Published versions are never edited: a change is a new version that supersedes the published one
when it is itself published, and the old version is kept.

Requests are recorded by the society's admins and data stewards (or the operator). The patient
identifier is hashed into the society-common pseudonym before anything else happens, and only the
pseudonym is kept; the identifier is not stored, logged, audited, or repeated in any message.
Because the pseudonym is society-common, a request recorded at one society excludes the subject from
the datasets of every society in the request's scope.

A refusal raises ``OptOutRefused`` (the wrong person or state), ``PermissionDenied`` (not allowed at
all) or ``ValidationError`` (missing or bad input) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from portal.accounts.models import Organization, User
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.datasets.models import Dataset
from portal.ethics.models import Protocol
from portal.ethics.selectors import protocol_data_flow
from portal.lib import hooks
from portal.lib.numbering import create_numbered
from portal.lib.pseudonym import subject_pseudonym
from portal.lib.workflow import transition
from portal.optout import notifications
from portal.optout.items import NOTICE_ITEMS, REQUIRED_KEYS, VERSION_FIELDS
from portal.optout.models import (
    DeletionConfirmation,
    OptOutNotice,
    OptOutNoticeVersion,
    OptOutRequest,
)
from portal.optout.selectors import (
    datasets_in_scope,
    datasets_left_without_notice,
    may_handle_requests,
    may_manage_notices,
    releases_holding,
)
from portal.optout.workflow import (
    DELETION_CONFIRMATION,
    NOTICE_VERSION,
    OptOutRefused,
    notice_transition,
    request_transition,
)
from portal.societies.models import Society

M = TypeVar("M", bound=models.Model)

# --- Numbering ------------------------------------------------------------------------------------


def _create_numbered(model: type[M], prefix: str, create: Callable[[str], M]) -> M:
    return create_numbered(model, prefix, create, digits=4)


# --- Notices --------------------------------------------------------------------------------------


def _require_notice_admin(society: Society, by: User) -> None:
    if not may_manage_notices(by, society):
        raise PermissionDenied(_("Only the society's admins can manage its opt-out notices."))


def _check_version_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(VERSION_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown))})


def _check_datasets(society: Society, protocol: Protocol, datasets: list[Dataset]) -> None:
    foreign = [d.title_ja for d in datasets if d.society_id != society.pk]
    if foreign:
        raise ValidationError({"datasets": _("These datasets belong to another society: %(names)s")
                               % {"names": ", ".join(foreign)}})
    other_protocol = [d.title_ja for d in datasets if d.protocol_id != protocol.pk]
    if other_protocol:
        raise ValidationError({"datasets": _("These datasets rest on another research protocol: %(names)s")
                               % {"names": ", ".join(other_protocol)}})


def _apply_fields(version: OptOutNoticeVersion, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if isinstance(value, str):
            value = value.strip()
        setattr(version, name, value)
    if version.start_date and version.end_date and version.end_date < version.start_date:
        raise ValidationError({"end_date": _("The end of the research period is before its start.")})


def _locked_notice(notice: OptOutNotice) -> OptOutNotice:
    return OptOutNotice.objects.select_for_update().select_related("society", "protocol").get(pk=notice.pk)


def _draft_of(notice: OptOutNotice) -> OptOutNoticeVersion | None:
    return notice.versions.filter(status=OptOutNoticeVersion.Status.DRAFT).first()


def optout_notice_create(
    *, society: Society, protocol: Protocol, datasets: Iterable[Dataset] = (), by: User, **version_fields: Any
) -> OptOutNotice:
    """A new notice with its first version as a draft; numbered ``OPT-<society>-<year>-<seq>``."""
    _require_notice_admin(society, by)
    _check_version_fields(version_fields)
    datasets = list(datasets)
    _check_datasets(society, protocol, datasets)
    if not str(version_fields.get("title_ja", "")).strip():
        raise ValidationError({"title_ja": _("Give the notice a title in Japanese.")})
    with transaction.atomic():
        prefix = f"OPT-{society.slug}-{timezone.localdate().year}-"
        notice = _create_numbered(
            OptOutNotice, prefix,
            lambda reference: OptOutNotice.objects.create(
                society=society, protocol=protocol, reference=reference, created_by=by
            ),
        )
        version = OptOutNoticeVersion(notice=notice, number=1, created_by=by)
        _apply_fields(version, version_fields)
        version.save()
        version.datasets.set(datasets)
        audit_record(action="optout.notice_created", actor=by, target=notice, details={
            "society": society.slug, "protocol": protocol.number, "datasets": sorted(d.slug for d in datasets),
        })
    return notice


def optout_notice_update_draft(
    *, notice: OptOutNotice, by: User, datasets: Iterable[Dataset] | None = None,
    protocol: Protocol | None = None, **version_fields: Any,
) -> OptOutNoticeVersion:
    """Change the draft version; a published version is never edited (start a new version)."""
    _require_notice_admin(notice.society, by)
    _check_version_fields(version_fields)
    with transaction.atomic():
        notice = _locked_notice(notice)
        if notice.status == OptOutNotice.Status.WITHDRAWN:
            raise OptOutRefused(_("This notice was withdrawn and can no longer change."))
        version = _draft_of(notice)
        if version is None:
            raise OptOutRefused(_("There is no draft to edit: published versions never change; start a new version."))
        if protocol is not None and protocol.pk != notice.protocol_id:
            if notice.first_published_at is not None:
                raise OptOutRefused(_("The research protocol of a published notice cannot change."))
            notice.protocol = protocol
            notice.save(update_fields=["protocol"])
        if datasets is not None:
            datasets = list(datasets)
            _check_datasets(notice.society, notice.protocol, datasets)
            version.datasets.set(datasets)
        _apply_fields(version, version_fields)
        if not version.title_ja:
            raise ValidationError({"title_ja": _("Give the notice a title in Japanese.")})
        version.save()
        audit_record(action="optout.notice_draft_updated", actor=by, target=notice, details={
            "version": version.number, "fields": sorted(version_fields),
            **({"datasets": sorted(d.slug for d in datasets)} if datasets is not None else {}),
        })
    return version


def optout_notice_new_version(*, notice: OptOutNotice, change_summary: str, by: User) -> OptOutNoticeVersion:
    """A new draft copied from the published version, to be edited and published in its place."""
    _require_notice_admin(notice.society, by)
    if not change_summary.strip():
        raise ValidationError({"change_summary": _("Say what changes in the new version.")})
    with transaction.atomic():
        notice = _locked_notice(notice)
        if notice.status != OptOutNotice.Status.PUBLISHED or notice.current_version_id is None:
            raise OptOutRefused(_("Only a published notice can have a new version."))
        if _draft_of(notice) is not None:
            raise OptOutRefused(_("A new version is already being drafted."))
        current = OptOutNoticeVersion.objects.get(pk=notice.current_version_id)
        version = OptOutNoticeVersion(
            notice=notice, number=current.number + 1, created_by=by, change_summary=change_summary.strip(),
            **{name: getattr(current, name) for name in VERSION_FIELDS if name != "change_summary"},
        )
        version.save()
        version.datasets.set(current.datasets.all())
        audit_record(action="optout.notice_version_started", actor=by, target=notice,
                     details={"version": version.number, "from_version": current.number})
    return version


def notice_problems(notice: OptOutNotice, version: OptOutNoticeVersion) -> list[str]:
    """What stops a draft version from being published (empty when it may be)."""
    problems: list[str] = []
    labels = {item.key: item.label for item in NOTICE_ITEMS}
    for key in REQUIRED_KEYS:
        if not getattr(version, f"{key}_ja").strip():
            problems.append(_("Missing (in Japanese): %(item)s") % {"item": labels[key]})
    if version.start_date is None:
        problems.append(_("Missing: the planned start of use or provision."))
    if version.start_date and version.end_date and version.end_date < version.start_date:
        problems.append(_("The end of the research period is before its start."))
    if version.number > 1 and not version.change_summary.strip():
        problems.append(_("Missing: what changed in this version."))
    datasets = list(version.datasets.all())
    try:
        _check_datasets(notice.society, notice.protocol, datasets)
    except ValidationError as error:
        problems.extend(error.messages)
    flow = protocol_data_flow(notice.protocol)
    if not flow.allowed:
        problems.append(_("The research protocol does not allow data to flow: %(reason)s") % {"reason": flow.reason})
    return problems


def optout_notice_publish(*, notice: OptOutNotice, by: User) -> OptOutNoticeVersion:
    """Publish the draft version; it supersedes the version published before, which is kept."""
    _require_notice_admin(notice.society, by)
    with transaction.atomic():
        notice = _locked_notice(notice)
        version = _draft_of(notice)
        if version is None:
            raise OptOutRefused(_("There is no draft version to publish."))
        problems = notice_problems(notice, version)
        if problems:
            raise ValidationError(problems)
        now = timezone.now()
        previous = notice.current_version_id
        source, _target = notice_transition(notice, "publish")
        if previous is not None:
            # Status only: the guard on the model keeps the superseded text as it was.
            transition(OptOutNoticeVersion.objects.select_for_update().get(pk=previous), NOTICE_VERSION, "supersede")
        version.published_at = now
        version.published_by = by
        transition(version, NOTICE_VERSION, "publish", extra_fields=["published_at", "published_by"])
        notice.current_version = version
        notice.first_published_at = notice.first_published_at or now
        notice.save(update_fields=["status", "current_version", "first_published_at"])
        datasets = list(version.datasets.all())
        notice.datasets.set(datasets)
        audit_record(action="optout.notice_published", actor=by, target=notice, details={
            "version": version.number, "from_status": source,
            "datasets": sorted(d.slug for d in datasets), "protocol": notice.protocol.number,
        })
    return version


def optout_notice_withdraw(*, notice: OptOutNotice, reason: str, by: User) -> list[Dataset]:
    """Withdraw a notice. Returns the published datasets now left without a published notice.

    Those datasets stay published (withdrawing a dataset is its own decision, for its owners), but
    their pages no longer show a notice; the caller warns the admin.
    """
    _require_notice_admin(notice.society, by)
    if not reason.strip():
        raise ValidationError({"reason": _("Give the reason for the withdrawal.")})
    with transaction.atomic():
        notice = _locked_notice(notice)
        source, _target = notice_transition(notice, "withdraw")
        left = datasets_left_without_notice(notice) if source == OptOutNotice.Status.PUBLISHED else []
        notice.withdrawn_at = timezone.now()
        notice.withdrawal_reason = reason.strip()
        notice.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
        audit_record(action="optout.notice_withdrawn", actor=by, target=notice, details={
            "reason": notice.withdrawal_reason, "from_status": source,
            "datasets_left_without_notice": [d.slug for d in left],
        })
    return left


# --- Requests -------------------------------------------------------------------------------------


def _require_request_handler(society: Society, by: User) -> None:
    if not may_handle_requests(by, society):
        raise PermissionDenied(_("Only the society's admins and data stewards can handle its opt-out requests."))


def _validate_request(
    *, received_at: datetime, channel: str, requester_type: str, identity_verification: str,
    all_protocols: bool, protocols: list[Protocol], modalities: list[str], extent: str, action_taken: str,
    reason_not_stopped: str,
) -> None:
    errors: dict[str, str] = {}
    R = OptOutRequest
    if channel not in R.Channel.values:
        errors["channel"] = _("Choose how the request was received.")
    if requester_type not in R.RequesterType.values:
        errors["requester_type"] = _("Choose who made the request.")
    if extent not in R.Extent.values:
        errors["extent"] = _("Choose the extent of the request.")
    if action_taken not in R.Action.values:
        errors["action_taken"] = _("Choose the action taken.")
    if not identity_verification.strip():
        errors["identity_verification"] = _("Say how the requester's identity was verified.")
    if received_at > timezone.now():
        errors["received_at"] = _("The request cannot have been received in the future.")
    if not all_protocols and not protocols:
        errors["protocols"] = _("Choose the research concerned, or all research.")
    unknown = set(modalities) - set(Modality.values)
    if unknown:
        errors["modalities"] = _("Unknown modality: %(names)s") % {"names": ", ".join(sorted(unknown))}
    if action_taken == R.Action.CANNOT_STOP and not reason_not_stopped.strip():
        errors["reason_not_stopped"] = _("Explain why use cannot be stopped; the requester must be told.")
    if errors:
        raise ValidationError(errors)


@sensitive_variables("patient_id", "institution_code")
def optout_request_record(
    *, society: Society, patient_id: str, institution_code: str, received_at: datetime, channel: str,
    requester_type: str, identity_verification: str, all_protocols: bool, protocols: Iterable[Protocol],
    modalities: Iterable[str], extent: str, action_taken: str, reason_not_stopped: str = "", by: User,
    institution: Organization | None = None,
) -> OptOutRequest:
    """Record a refusal by the subject's pseudonym, and propagate it to the releases that hold them.

    The releases of datasets in scope (of any society) that contain the subject are recorded on the
    request. When the requester asked for data already provided to be deleted, every named user of
    an active grant on such a release must confirm deletion: each gets a pending confirmation, an
    e-mail and an entry on their deletions page, and the request waits for them.
    """
    _require_request_handler(society, by)
    # Hashed first: from here on only the pseudonym exists. The raw value is never put in a
    # message (subject_pseudonym's own errors do not repeat it).
    pseudonym = subject_pseudonym(institution_code=institution_code, patient_id=patient_id)
    del patient_id
    protocols = list(protocols)
    modalities = sorted(set(modalities))
    _validate_request(
        received_at=received_at, channel=channel, requester_type=requester_type,
        identity_verification=identity_verification, all_protocols=all_protocols, protocols=protocols,
        modalities=modalities, extent=extent, action_taken=action_taken, reason_not_stopped=reason_not_stopped,
    )
    with transaction.atomic():
        prefix = f"REQ-{timezone.localdate().year}-"
        request = _create_numbered(
            OptOutRequest, prefix,
            lambda reference: OptOutRequest.objects.create(
                reference=reference, society=society, institution=institution, subject_pseudonym=pseudonym,
                received_at=received_at, channel=channel, requester_type=requester_type,
                identity_verification=identity_verification.strip(), all_protocols=all_protocols,
                modalities=modalities, extent=extent, action_taken=action_taken,
                reason_not_stopped=reason_not_stopped.strip(), handled_by=by,
            ),
        )
        if not all_protocols:
            request.protocols.set(protocols)
        in_scope = datasets_in_scope(request)
        releases = list(releases_holding(pseudonym=pseudonym, datasets=in_scope))
        request.affected_releases.set(releases)
        # The subject leaves the linkage index (portal.linkage) at once; rebuilds leave them out too.
        forgotten = sum(hooks.run("optout_subject_forget", pseudonym=pseudonym, datasets=in_scope))
        confirmations = 0
        if extent == OptOutRequest.Extent.DELETE_PROVIDED and releases:
            confirmations = _ask_holders_to_delete(request, releases)
        if confirmations:
            request_transition(request, "await_deletion")
        audit_record(action="optout.request_recorded", actor=by, target=request, details={
            "society": society.slug, "extent": extent, "action_taken": action_taken,
            "all_protocols": all_protocols, "protocols": sorted(p.number or str(p.pk) for p in protocols),
            "modalities": modalities, "affected_releases": sorted(str(r) for r in releases),
            "deletion_confirmations": confirmations, "linkage_records_removed": forgotten,
        })
        # Hosted AI models trained or evaluated on these releases: a notice on their cards, admins
        # told (portal.ai).
        hooks.run(
            "optout_request_recorded", releases=releases, reference=request.reference,
            counts={release.pk: release.subject_files for release in releases}, by=by,
        )
    return request


def _ask_holders_to_delete(request: OptOutRequest, releases: list[Any]) -> int:
    by_release = {release.pk: release for release in releases}
    now = timezone.now()
    rows: list[DeletionConfirmation] = []
    per_holder: dict[int, tuple[User, set[str]]] = {}
    # The access app, above this one, knows who holds the releases.
    grants = hooks.joined("release_holders", release_ids=list(by_release))
    prefetch_related_objects(grants, "users", "releases")
    for grant in grants:
        held = [r for r in grant.releases.all() if r.pk in by_release]
        for user in grant.users.all():
            for release in held:
                rows.append(DeletionConfirmation(
                    request=request, release=by_release[release.pk], grant=grant, holder=user,
                    file_count=by_release[release.pk].subject_files, notified_at=now,
                ))
                per_holder.setdefault(user.pk, (user, set()))[1].add(str(by_release[release.pk]))
    DeletionConfirmation.objects.bulk_create(rows)
    for user, names in per_holder.values():
        notifications.notify_holder_of_deletion(holder=user, reference=request.reference, releases=sorted(names))
    return len(rows)


def optout_deletion_confirm(*, confirmation: DeletionConfirmation, note: str, by: User) -> DeletionConfirmation:
    """The holder confirms they deleted the subject's files; the last one lets the request close."""
    if confirmation.holder_id != by.pk:
        raise PermissionDenied(_("Only the data holder it was sent to can confirm this deletion."))
    if not note.strip():
        raise ValidationError({"note": _("Say how and when the data were deleted.")})
    with transaction.atomic():
        # Lock the request first, then the confirmation: the same order as every writer.
        request = OptOutRequest.objects.select_for_update().get(pk=confirmation.request_id)
        confirmation = DeletionConfirmation.objects.select_for_update().select_related("release").get(
            pk=confirmation.pk
        )
        if confirmation.status != DeletionConfirmation.Status.PENDING:
            raise OptOutRefused(_("This deletion was confirmed already."))
        confirmation.confirmed_at = timezone.now()
        confirmation.confirmation_note = note.strip()
        transition(confirmation, DELETION_CONFIRMATION, "confirm", extra_fields=["confirmed_at", "confirmation_note"])
        pending = request.deletions.filter(status=DeletionConfirmation.Status.PENDING).exists()
        if not pending and request.status == OptOutRequest.Status.AWAITING_DELETION:
            request_transition(request, "deletions_confirmed")
        audit_record(action="optout.deletion_confirmed", actor=by, target=request, details={
            "confirmation": confirmation.pk, "release": str(confirmation.release),
            "grant": confirmation.grant_id, "all_confirmed": not pending,
        })
    return confirmation


def optout_request_notify_requester(*, request: OptOutRequest, notified_at: datetime, by: User) -> OptOutRequest:
    """Record the date the requester was told the result (結果通知日)."""
    _require_request_handler(request.society, by)
    with transaction.atomic():
        request = OptOutRequest.objects.select_for_update().select_related("society").get(pk=request.pk)
        if request.status == OptOutRequest.Status.CLOSED:
            raise OptOutRefused(_("The request is closed."))
        if notified_at > timezone.now():
            raise ValidationError({"notified_at": _("The requester cannot have been told in the future.")})
        if notified_at < request.received_at:
            raise ValidationError({"notified_at": _("The requester cannot have been told before the request was received.")})
        request.requester_notified_at = notified_at
        request.save(update_fields=["requester_notified_at"])
        audit_record(action="optout.requester_notified", actor=by, target=request,
                     details={"notified_at": notified_at.isoformat()})
    return request


def optout_request_close(*, request: OptOutRequest, by: User) -> OptOutRequest:
    """Close a request once every holder confirmed deletion and the requester was told the result."""
    _require_request_handler(request.society, by)
    with transaction.atomic():
        request = OptOutRequest.objects.select_for_update().select_related("society").get(pk=request.pk)
        pending = request.deletions.filter(status=DeletionConfirmation.Status.PENDING).count()
        if pending:
            raise OptOutRefused(
                _("%(count)d data holders have still to confirm deletion; the request cannot be closed yet.")
                % {"count": pending}
            )
        if request.requester_notified_at is None:
            raise OptOutRefused(_("Record when the requester was told the result before closing the request."))
        request_transition(request, "close")
        request.closed_at = timezone.now()
        request.save(update_fields=["closed_at"])
        audit_record(action="optout.request_closed", actor=by, target=request, details={})
    return request
