"""Every change to committees and protocols: checked, saved, audited and notified in one transaction.

Who may act is decided here, not in the views: the applicant (the protocol's principal
investigator), the committee's secretariat, its chair and members, and the head of the applicant's
institution each have their own services. A refusal raises ``EthicsRefused`` (the wrong person or
state) or ``ValidationError`` (missing or bad input) and changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import Organization, OrganizationMembership, User
from portal.audit.services import audit_record
from portal.core.vocabulary import Modality
from portal.ethics import notifications
from portal.ethics.items import ITEMS_BY_KEY, ORGANIZATION_ITEM_KEYS, items_for
from portal.ethics.models import (
    Attendance,
    CommitteeMembership,
    ConflictDeclaration,
    Decision,
    EthicsCommittee,
    HeadDecision,
    ItemComment,
    NoncomplianceReport,
    OrganizationEntry,
    PeriodicReport,
    Protocol,
    ProtocolAttachment,
    ProtocolItem,
    ProtocolStatus,
    ProtocolVersion,
    Review,
    ReviewAssignment,
    Vote,
)
from portal.ethics.quorum import Attendee, quorum_failures
from portal.ethics.tasks import issue_decision_notice_task, issue_permission_notice_task
from portal.ethics.workflow import EthicsRefused, transition
from portal.lib.filetypes import detect_document_type
from portal.societies.models import Society

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024

# Fields of a version that the applicant edits while it is a draft.
VERSION_FIELDS = (
    "change_summary", "guideline_version", "invasiveness", "intervention", "uses_existing_data",
    "uses_specimens", "sensitive_personal_info", "multi_site", "review_mode", "modalities",
    "uses_common_hash_id", "foreign_provision", "foreign_country", "company_involvement",
    "consent_procedure", "justification_minimal_risk", "justification_no_disadvantage",
    "justification_impracticable", "justification_social_importance",
)
JUSTIFICATIONS = (
    ("justification_minimal_risk", _("no invasiveness beyond minimal")),
    ("justification_no_disadvantage", _("no disadvantage to subjects")),
    ("justification_impracticable", _("impracticable or seriously harmed without simplification")),
    ("justification_social_importance", _("high social importance")),
)


# --- Who is who ---------------------------------------------------------------------------------


def _membership(committee: EthicsCommittee, user: User) -> CommitteeMembership | None:
    return CommitteeMembership.objects.filter(committee=committee, user=user, active=True).first()


def _require_secretariat(committee: EthicsCommittee, user: User) -> CommitteeMembership:
    membership = _membership(committee, user)
    if membership is None or membership.role not in {
        CommitteeMembership.Role.SECRETARIAT,
        CommitteeMembership.Role.CHAIR,
    }:
        raise EthicsRefused(_("Only the committee's secretariat or chair can do this."))
    return membership


def _require_chair(committee: EthicsCommittee, user: User) -> CommitteeMembership:
    membership = _membership(committee, user)
    if membership is None or membership.role != CommitteeMembership.Role.CHAIR:
        raise EthicsRefused(_("Only the committee's chair can do this."))
    return membership


def _require_applicant(protocol: Protocol, user: User) -> None:
    if protocol.principal_investigator_id != user.pk:
        raise EthicsRefused(_("Only the protocol's principal investigator can do this."))


def _require_head(protocol: Protocol, user: User) -> None:
    if not OrganizationMembership.objects.filter(
        user=user, organization=protocol.institution, role=OrganizationMembership.Role.HEAD
    ).exists():
        raise EthicsRefused(_("Only the head of the research institution can do this."))


def one_year_after(day: date) -> date:
    """The same date next year; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def _locked(protocol: Protocol) -> Protocol:
    return Protocol.objects.select_for_update().get(pk=protocol.pk)


# A draft version can be edited only while the protocol is in one of these states (an amendment
# is drafted while the protocol stays active).
_EDITABLE_STATES = {ProtocolStatus.DRAFT, ProtocolStatus.RETURNED, ProtocolStatus.DEFERRED, ProtocolStatus.ACTIVE}


def _editable_version(protocol: Protocol) -> ProtocolVersion:
    version = latest_version(protocol)
    if version.is_frozen or protocol.status not in _EDITABLE_STATES:
        raise EthicsRefused(_("This version was submitted and can no longer change; start an amendment."))
    return version


def latest_version(protocol: Protocol) -> ProtocolVersion:
    return protocol.versions.order_by("-number").first()  # type: ignore[return-value]


def _audit(action: str, by: User, protocol: Protocol, **details: Any) -> None:
    audit_record(action=f"ethics.{action}", actor=by, target=protocol, details=details)


# --- Committees ---------------------------------------------------------------------------------


def committee_create(
    *, slug: str, name_ja: str, name_en: str, institution: Organization, registration_number: str,
    rules_ja: str = "", rules_en: str = "", by: User | None,
) -> EthicsCommittee:
    with transaction.atomic():
        committee = EthicsCommittee(
            slug=slug, name_ja=name_ja, name_en=name_en, institution=institution,
            registration_number=registration_number, rules_ja=rules_ja, rules_en=rules_en,
        )
        committee.full_clean()
        committee.save()
        audit_record(action="ethics.committee_created", actor=by, target=committee, details={"slug": slug})
    return committee


def committee_member_add(
    *, committee: EthicsCommittee, user: User, role: str, category: str = "", is_external: bool = False,
    sex: str = "", affiliation: str = "", by: User | None,
) -> CommitteeMembership:
    with transaction.atomic():
        membership = CommitteeMembership(
            committee=committee, user=user, role=role, category=category, is_external=is_external,
            sex=sex, affiliation=affiliation,
        )
        if role != CommitteeMembership.Role.SECRETARIAT and not (category and sex):
            raise ValidationError(_("A voting member needs a category and a sex (for the quorum rules)."))
        membership.full_clean()
        membership.save()
        audit_record(
            action="ethics.committee_member_added", actor=by, target=membership,
            details={"committee": committee.slug, "user": user.email, "role": role},
        )
    return membership


# --- Drafting -----------------------------------------------------------------------------------


def protocol_create(
    *, committee: EthicsCommittee, institution: Organization, title: str, by: User,
    kind: str = Protocol.Kind.RESEARCH,
) -> Protocol:
    """A new draft; a collection-and-provision body's protocol (``kind``) has its own items."""
    if not title.strip():
        raise ValidationError({"title": _("Give the research a title.")})
    if kind not in Protocol.Kind.values:
        raise ValidationError({"kind": _("Unknown kind of protocol.")})
    if not OrganizationMembership.objects.filter(user=by, organization=institution).exists():
        raise EthicsRefused(_("You can only apply for an institution you belong to."))
    with transaction.atomic():
        protocol = Protocol.objects.create(
            committee=committee, principal_investigator=by, institution=institution, kind=kind
        )
        version = ProtocolVersion.objects.create(protocol=protocol, number=1)
        ProtocolItem.objects.bulk_create(
            ProtocolItem(version=version, key=item.key, body=title.strip() if item.key == "title" else "")
            for item in items_for(kind)
        )
        # Item ② starts with the applicant: the applying site's principal investigator (研究責任者).
        OrganizationEntry.objects.create(
            version=version, institution_name=institution.name_ja,
            institution_role=OrganizationEntry.InstitutionRole.RESEARCH_INSTITUTION,
            person_name=by.full_name or by.email, person_role=OrganizationEntry.PersonRole.SITE_PI, user=by,
        )
        _audit("protocol_created", by, protocol, committee=committee.slug, kind=kind)
    return protocol


ORGANIZATION_ENTRY_FIELDS = ("institution_name", "institution_role", "person_name", "person_role", "user")


def _organization_entries_replace(version: ProtocolVersion, entries: list[dict[str, Any]]) -> None:
    """Item ② as rows (institution × person × role), replacing the version's rows in the order given."""
    rows = []
    for position, entry in enumerate(entries):
        unknown = set(entry) - set(ORGANIZATION_ENTRY_FIELDS)
        if unknown:
            raise ValidationError(_("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown))})
        row = OrganizationEntry(
            version=version, position=position,
            institution_name=str(entry.get("institution_name", "")).strip(),
            institution_role=entry.get("institution_role", ""),
            person_name=str(entry.get("person_name", "")).strip(),
            person_role=entry.get("person_role", ""),
            user=entry.get("user"),
        )
        row.full_clean(exclude=["version"], validate_constraints=False)
        if row.person_role in {OrganizationEntry.PersonRole.LEAD_PI, OrganizationEntry.PersonRole.SITE_PI} and (
            row.institution_role not in {OrganizationEntry.InstitutionRole.RESEARCH_INSTITUTION,
                                         OrganizationEntry.InstitutionRole.COLLABORATING}
        ):
            raise ValidationError(
                _("%(name)s: a principal investigator belongs to a research institution.") % {"name": row.person_name}
            )
        rows.append(row)
    if sum(1 for row in rows if row.person_role == OrganizationEntry.PersonRole.LEAD_PI) > 1:
        raise ValidationError(_("Name one lead principal investigator, not several."))
    version.organization_entries.all().delete()
    OrganizationEntry.objects.bulk_create(rows)


def protocol_update_draft(
    *, protocol: Protocol, by: User, fields: dict[str, Any] | None = None,
    items: dict[str, dict[str, str]] | None = None,
    named_researchers: Iterable[User] | None = None, societies: Iterable[Society] | None = None,
    organization_entries: list[dict[str, Any]] | None = None,
) -> ProtocolVersion:
    """Change the draft version's fields, items and item ② rows; a submitted version cannot change."""
    _require_applicant(protocol, by)
    fields = fields or {}
    items = items or {}
    unknown_fields = set(fields) - set(VERSION_FIELDS)
    unknown_items = set(items) - {spec.key for spec in items_for(protocol.kind)}
    if unknown_fields or unknown_items:
        raise ValidationError(
            _("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown_fields | unknown_items))}
        )
    with transaction.atomic():
        protocol = _locked(protocol)
        version = _editable_version(protocol)
        unknown_modalities = set(fields.get("modalities", [])) - set(Modality.values)
        if unknown_modalities:
            raise ValidationError({"modalities": _("Unknown modality: %(names)s") % {"names": ", ".join(sorted(unknown_modalities))}})
        for name, value in fields.items():
            setattr(version, name, value)
        version.full_clean(exclude=["protocol"])
        version.save()
        if named_researchers is not None:
            version.named_researchers.set(list(named_researchers))
        if societies is not None:
            version.societies.set(list(societies))
        if organization_entries is not None:
            _organization_entries_replace(version, organization_entries)
        for key, values in items.items():
            ProtocolItem.objects.filter(version=version, key=key).update(
                body=values.get("body", "").strip(),
                not_applicable_reason=values.get("not_applicable_reason", "").strip(),
            )
        _audit("draft_updated", by, protocol, version=version.number,
               fields=sorted(fields), items=sorted(items),
               organization_entries=None if organization_entries is None else len(organization_entries))
    return version


def attachment_add(
    *, protocol: Protocol, kind: str, upload: UploadedFile, by: User
) -> ProtocolAttachment:
    """Attach a PDF or office document to the draft, checking its type by content, not by name."""
    _require_applicant(protocol, by)
    if kind not in ProtocolAttachment.Kind.values:
        raise ValidationError({"kind": _("Unknown kind of attachment.")})
    if upload.size is None or upload.size > MAX_ATTACHMENT_BYTES:
        raise ValidationError(
            {"file": _("The file is larger than %(limit)d MB.") % {"limit": MAX_ATTACHMENT_BYTES // 2**20}}
        )
    if upload.size == 0:
        raise ValidationError({"file": _("The file is empty.")})
    head = upload.read(8192)
    upload.seek(0)
    media_type = detect_document_type(head, upload)
    if media_type is None:
        raise ValidationError(
            {"file": _("Only PDF, Word, Excel or PowerPoint files can be attached; this file is none of them.")}
        )
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    with transaction.atomic():
        protocol = _locked(protocol)
        version = _editable_version(protocol)
        attachment = ProtocolAttachment(
            version=version, kind=kind, original_name=upload.name[:255], media_type=media_type,
            size=upload.size, sha256=digest.hexdigest(), uploaded_by=by,
        )
        attachment.file.save(upload.name, upload, save=False)
        try:
            attachment.save()
            _audit("attachment_added", by, protocol, version=version.number, name=attachment.original_name,
                   sha256=attachment.sha256, kind=kind)
        except Exception:
            attachment.file.delete(save=False)
            raise
    return attachment


def missing_for_submission(version: ProtocolVersion) -> list[str]:
    """Everything a version still lacks before it can be submitted, each named."""
    missing: list[str] = []
    items = {item.key: item for item in version.items.all()}
    entries = list(version.organization_entries.all())
    for spec in items_for(version.protocol.kind):
        item = items.get(spec.key)
        body = item.body if item else ""
        reason = item.not_applicable_reason if item else ""
        if spec.key in ORGANIZATION_ITEM_KEYS:
            # Item ② is stated by its rows; the text beside them is a free note.
            if not entries:
                missing.append(_("%(marker)s %(label)s: name at least one institution and person")
                               % {"marker": spec.marker, "label": spec.label})
        elif spec.always_required and not body:
            missing.append(_("%(marker)s %(label)s: required") % {"marker": spec.marker, "label": spec.label})
        elif not spec.always_required and not body and not reason:
            missing.append(
                _("%(marker)s %(label)s: describe it, or say why it does not apply")
                % {"marker": spec.marker, "label": spec.label}
            )
    if not version.consent_procedure:
        missing.append(_("Consent procedure: choose one"))
    if version.needs_simplification_justification:
        for field, label in JUSTIFICATIONS:
            if not getattr(version, field).strip():
                missing.append(_("Justification (%(requirement)s): required for opt-out or simplified consent")
                               % {"requirement": label})
        if not version.attachments.filter(kind=ProtocolAttachment.Kind.OPT_OUT_NOTICE).exists():
            missing.append(_("Opt-out notice draft: attach it"))
    if version.foreign_provision and not version.foreign_country.strip():
        missing.append(_("Provision abroad: name the country"))
    if version.multi_site and not any(e.person_role == OrganizationEntry.PersonRole.LEAD_PI for e in entries):
        missing.append(_("Multi-site study: name the lead principal investigator in item ②"))
    return missing


def _next_number(protocol: Protocol) -> str:
    year = timezone.localdate().year
    prefix = f"{protocol.committee.slug.upper()}-{year}-"
    used = Protocol.objects.filter(number__startswith=prefix).count()
    return f"{prefix}{used + 1:04d}"


def protocol_submit(*, protocol: Protocol, by: User) -> Protocol:
    _require_applicant(protocol, by)
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        if version.is_frozen:
            raise EthicsRefused(_("This version was already submitted; revise it into a new version first."))
        missing = missing_for_submission(version)
        if missing:
            raise ValidationError(missing)
        source, target = transition(protocol, "submit")
        if not protocol.number:
            # Serialised by the committee row lock, so two submissions cannot take the same number.
            EthicsCommittee.objects.select_for_update().get(pk=protocol.committee_id)
            protocol.number = _next_number(protocol)
            protocol.save(update_fields=["number"])
        version.submitted_at = timezone.now()
        version.save(update_fields=["submitted_at"])
        _audit("protocol_submitted", by, protocol, version=version.number, **{"from": source, "to": target})
        notifications.notify_secretariat(protocol, _("A protocol was submitted for review"))
    return protocol


def protocol_return_for_completion(*, protocol: Protocol, reason: str, by: User) -> Protocol:
    _require_secretariat(protocol.committee, by)
    if not reason.strip():
        raise ValidationError({"reason": _("Say what is missing.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        source, target = transition(protocol, "return_for_completion")
        # The returned version is reopened for editing: it was never reviewed.
        version = latest_version(protocol)
        version.submitted_at = None
        version.save(update_fields=["submitted_at"])
        _audit("protocol_returned", by, protocol, reason=reason, **{"from": source, "to": target})
        notifications.notify_applicant(protocol, _("Your protocol was returned for completion"), reason)
    return protocol


def _recusal_reason(protocol: Protocol, version: ProtocolVersion, member: CommitteeMembership) -> str:
    """Why a member is recused from the start, or "" (REGULATION.md (b): members attached to the study).

    Only the principal investigator and the researchers named in the protocol (its list or its
    item ② rows) are recused outright. Other members of the applicant's institution take part
    unless they declare a conflict of interest (``conflict_declare``), so a committee can still
    reach its quorum on its own institution's research.
    """
    if member.user_id == protocol.principal_investigator_id:
        return _("applicant")
    if version.named_researchers.filter(pk=member.user_id).exists() or version.organization_entries.filter(
        user_id=member.user_id
    ).exists():
        return _("named in the protocol")
    return ""


def review_open(
    *, protocol: Protocol, mode: str, by: User, expedited_ground: str = "",
    meeting_at: Any = None, meeting_format: str = "",
) -> Review:
    """Accept a submitted version for review and assign every voting member of the committee."""
    _require_secretariat(protocol.committee, by)
    if mode not in Review.Mode.values:
        raise ValidationError({"mode": _("Unknown review mode.")})
    if mode == Review.Mode.EXPEDITED and expedited_ground not in Review.ExpeditedGround.values:
        raise ValidationError({"expedited_ground": _("Give the ground for expedited review.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        amendment = protocol.status == ProtocolStatus.AMENDMENT_REVIEW
        if not amendment:
            transition(protocol, "accept_for_review")
        elif hasattr(version, "review"):
            raise EthicsRefused(_("This amendment is already under review."))
        if version.kind == ProtocolVersion.Kind.MAJOR_AMENDMENT and mode != Review.Mode.FULL_BOARD:
            raise ValidationError({"mode": _("A major amendment is reviewed by the full board.")})
        review = Review.objects.create(
            version=version,
            type=Review.Type.AMENDMENT if amendment else Review.Type.NEW,
            mode=mode,
            expedited_ground=expedited_ground if mode == Review.Mode.EXPEDITED else "",
            meeting_at=meeting_at,
            meeting_format=meeting_format,
            opened_by=by,
        )
        voters = protocol.committee.memberships.filter(
            active=True, role__in=[CommitteeMembership.Role.CHAIR, CommitteeMembership.Role.MEMBER]
        ).select_related("user")
        for member in voters:
            reason = _recusal_reason(protocol, version, member)
            ReviewAssignment.objects.create(
                review=review, member=member, recused=bool(reason), recusal_reason=reason
            )
        _audit("review_opened", by, protocol, version=version.number, mode=mode,
               expedited_ground=review.expedited_ground)
        notifications.notify_members(review, _("A protocol was assigned to you for review"))
    return review


def _assignment(review: Review, user: User) -> ReviewAssignment:
    assignment = review.assignments.filter(member__user=user, member__active=True).first()
    if assignment is None:
        raise EthicsRefused(_("You are not assigned to this review."))
    return assignment


def _require_open(review: Review) -> None:
    if review.version.protocol.status not in {ProtocolStatus.UNDER_REVIEW, ProtocolStatus.AMENDMENT_REVIEW}:
        raise EthicsRefused(_("This review is closed."))
    if hasattr(review, "decision"):
        raise EthicsRefused(_("This review is closed."))


def comment_add(
    *, review: Review, item_key: str, body: str, for_applicant: bool, by: User
) -> ItemComment:
    if item_key and item_key not in ITEMS_BY_KEY:
        raise ValidationError({"item_key": _("Unknown protocol item.")})
    if not body.strip():
        raise ValidationError({"body": _("Write a comment.")})
    membership = _membership(review.version.protocol.committee, by)
    if membership is None or membership.role == CommitteeMembership.Role.SECRETARIAT:
        _assignment(review, by)
    with transaction.atomic():
        _require_open(review)
        comment = ItemComment.objects.create(
            review=review, item_key=item_key, author=by, body=body.strip(), for_applicant=for_applicant
        )
        _audit("comment_added", by, review.version.protocol, item=item_key, for_applicant=for_applicant)
    return comment


def vote_cast(*, review: Review, choice: str, reason: str = "", by: User) -> Vote:
    if choice not in Vote.Choice.values:
        raise ValidationError({"choice": _("Unknown vote.")})
    assignment = _assignment(review, by)
    if assignment.recused:
        raise EthicsRefused(
            _("You are recused from this review (%(reason)s) and cannot vote.") % {"reason": assignment.recusal_reason}
        )
    if choice in {Vote.Choice.CONDITIONS, Vote.Choice.DEFER, Vote.Choice.NOT_APPROVE} and not reason.strip():
        raise ValidationError({"reason": _("Give the reason for this vote.")})
    with transaction.atomic():
        _require_open(review)
        vote, _created = Vote.objects.update_or_create(
            review=review, member=assignment.member, defaults={"choice": choice, "reason": reason.strip()}
        )
        _audit("vote_cast", by, review.version.protocol, choice=choice)
    return vote


def conflict_declare(*, review: Review, has_conflict: bool, details: str = "", by: User) -> ConflictDeclaration:
    """委員の利益相反申告: a member assigned to the review declares none or a conflict.

    A declared conflict recuses the member (they neither vote nor count towards the quorum); a
    later declaration of none lifts only a recusal that the conflict caused, never one for being
    the applicant or named in the protocol.
    """
    assignment = _assignment(review, by)
    if has_conflict and not details.strip():
        raise ValidationError({"details": _("Describe the conflict of interest.")})
    with transaction.atomic():
        _require_open(review)
        assignment = ReviewAssignment.objects.select_for_update().get(pk=assignment.pk)
        declaration, _created = ConflictDeclaration.objects.update_or_create(
            review=review, member=assignment.member,
            defaults={"has_conflict": has_conflict, "details": details.strip() if has_conflict else ""},
        )
        if has_conflict and not assignment.recused:
            assignment.recused = True
            assignment.recusal_reason = _("declared a conflict of interest")
            assignment.save(update_fields=["recused", "recusal_reason"])
            # A vote already cast no longer counts: the member is out of the decision.
            Vote.objects.filter(review=review, member=assignment.member).delete()
        elif not has_conflict and assignment.recused and not _recusal_reason(
            review.version.protocol, review.version, assignment.member
        ):
            assignment.recused = False
            assignment.recusal_reason = ""
            assignment.save(update_fields=["recused", "recusal_reason"])
        _audit("conflict_declared", by, review.version.protocol, version=review.version.number,
               has_conflict=has_conflict, details=declaration.details, recused=assignment.recused)
    return declaration


def review_explanation_record(*, review: Review, explanation: str, by: User) -> Review:
    """研究者の説明・質疑: the secretariat records what the researchers explained and were asked."""
    _require_secretariat(review.version.protocol.committee, by)
    if not explanation.strip():
        raise ValidationError({"explanation": _("Write what the researchers explained and were asked.")})
    with transaction.atomic():
        _require_open(review)
        review = Review.objects.select_for_update().get(pk=review.pk)
        review.pi_explanation = explanation.strip()
        review.save(update_fields=["pi_explanation"])
        _audit("explanation_recorded", by, review.version.protocol, version=review.version.number)
    return review


def decision_notified_to_head_set(*, decision: Decision, on: date, by: User | None) -> Decision:
    """研究機関の長への意見通知日: set by the secretariat (``by``), or stamped when the notice is issued."""
    protocol = decision.review.version.protocol
    if by is not None:
        _require_secretariat(protocol.committee, by)
    if on < timezone.localdate(decision.decided_at):
        raise ValidationError({"on": _("The opinion cannot reach the head before it was decided.")})
    if on > timezone.localdate():
        raise ValidationError({"on": _("The date cannot be in the future.")})
    with transaction.atomic():
        decision = Decision.objects.select_for_update().get(pk=decision.pk)
        previous = decision.notified_to_head_on
        decision.notified_to_head_on = on
        decision.save(update_fields=["notified_to_head_on"])
        _audit("opinion_notified_to_head", by, protocol, version=decision.review.version.number,
               on=on, previous=previous)
    return decision


def attendance_record(*, review: Review, members: Iterable[CommitteeMembership], by: User) -> None:
    _require_secretariat(review.version.protocol.committee, by)
    members = list(members)
    if any(m.committee_id != review.version.protocol.committee_id for m in members):
        raise ValidationError(_("Only members of this committee can be recorded as attending."))
    with transaction.atomic():
        _require_open(review)
        Attendance.objects.filter(review=review).delete()
        Attendance.objects.bulk_create(Attendance(review=review, member=m) for m in members)
        _audit("attendance_recorded", by, review.version.protocol,
               members=sorted(m.user.email for m in members))


def quorum_problems(review: Review) -> list[str]:
    """Quorum failures for the members recorded as attending, recused members not counted."""
    # A list page prefetches "assignments" and "attendance__member" (a fixed number of queries for
    # any number of reviews); one review alone reads them here.
    prefetched = getattr(review, "_prefetched_objects_cache", {})
    assignments = review.assignments.all() if "assignments" in prefetched else review.assignments.filter(recused=True)
    attendance = review.attendance.all() if "attendance" in prefetched else review.attendance.select_related("member")
    recused = {a.member_id for a in assignments if a.recused}
    attendees = [
        Attendee(a.member.category, a.member.is_external, a.member.sex)
        for a in attendance
        if a.member_id not in recused and a.member.votes
    ]
    return quorum_failures(attendees)


_OUTCOME_ACTIONS = {
    Decision.Outcome.APPROVED: "decide_approved",
    Decision.Outcome.CONDITIONS: "decide_conditions",
    Decision.Outcome.DEFERRED: "decide_deferred",
    Decision.Outcome.NOT_APPROVED: "decide_not_approved",
    Decision.Outcome.NOT_SUBJECT: "decide_not_subject",
}


def decision_record(
    *, review: Review, outcome: str, method: str, reasons: str, by: User, conditions: str = "",
    approved_until: date | None = None,
) -> Decision:
    """The chair records the committee's opinion; a full-board decision needs the quorum."""
    protocol = review.version.protocol
    _require_chair(protocol.committee, by)
    if outcome not in _OUTCOME_ACTIONS:
        raise ValidationError({"outcome": _("Unknown opinion.")})
    if method not in Decision.Method.values:
        raise ValidationError({"method": _("Unknown decision method.")})
    if not reasons.strip():
        raise ValidationError({"reasons": _("Give the reasons for the opinion.")})
    if outcome == Decision.Outcome.CONDITIONS and not conditions.strip():
        raise ValidationError({"conditions": _("State the conditions.")})
    if outcome in {Decision.Outcome.APPROVED, Decision.Outcome.CONDITIONS} and approved_until is None:
        raise ValidationError({"approved_until": _("Give the date until which the approval is valid.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        _require_open(review)
        if review.mode == Review.Mode.FULL_BOARD:
            problems = quorum_problems(review)
            if problems:
                raise ValidationError([_("The quorum is not met:"), *problems])
        source, target = transition(protocol, _OUTCOME_ACTIONS[outcome])
        decision = Decision.objects.create(
            review=review, outcome=outcome, method=method, reasons=reasons.strip(),
            conditions=conditions.strip(), approved_until=approved_until, decided_by=by,
        )
        # The notice (審査結果通知書) is rendered by a worker after commit, so a PDF failure cannot
        # undo the decision; its download view issues it on demand if the task has not run yet.
        transaction.on_commit(lambda: issue_decision_notice_task.delay(decision.pk, by.pk))
        _audit("decision_recorded", by, protocol, outcome=outcome, method=method, mode=review.mode,
               version=review.version.number, **{"from": source, "to": target})
        notifications.notify_applicant(protocol, _("The committee has decided on your protocol"),
                                       decision.get_outcome_display())
        if review.mode == Review.Mode.EXPEDITED:
            notifications.notify_all_members(protocol, _("Result of an expedited review"),
                                             decision.get_outcome_display())
    return decision


def conditions_answer(*, protocol: Protocol, answer: str, by: User) -> Decision:
    _require_applicant(protocol, by)
    if not answer.strip():
        raise ValidationError({"answer": _("Answer the conditions.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        transition(protocol, "answer_conditions")
        decision = latest_version(protocol).review.decision
        decision.conditions_answer = answer.strip()
        decision.conditions_answered_at = timezone.now()
        decision.save(update_fields=["conditions_answer", "conditions_answered_at"])
        _audit("conditions_answered", by, protocol)
        notifications.notify_secretariat(protocol, _("The applicant answered the conditions"))
    return decision


def conditions_verify(*, protocol: Protocol, accepted: bool, by: User, note: str = "") -> Protocol:
    _require_chair(protocol.committee, by)
    with transaction.atomic():
        protocol = _locked(protocol)
        if accepted:
            transition(protocol, "verify_conditions")
            decision = latest_version(protocol).review.decision
            decision.conditions_verified_by = by
            decision.conditions_verified_at = timezone.now()
            decision.save(update_fields=["conditions_verified_by", "conditions_verified_at"])
        else:
            if not note.strip():
                raise ValidationError({"note": _("Say what the answer still lacks.")})
            transition(protocol, "reject_conditions_answer")
        _audit("conditions_verified" if accepted else "conditions_answer_rejected", by, protocol, note=note)
        notifications.notify_applicant(
            protocol,
            _("The chair accepted your answer to the conditions") if accepted
            else _("The chair asks for more on the conditions"),
            note,
        )
    return protocol


def head_decide(
    *, protocol: Protocol, permitted: bool, by: User, conditions: str = "", reasons: str = ""
) -> HeadDecision:
    """The head of the institution permits or denies what the committee approved, never more."""
    _require_head(protocol, by)
    if not permitted and not reasons.strip():
        raise ValidationError({"reasons": _("Give the reasons for not permitting the research.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        decision = getattr(getattr(version, "review", None), "decision", None)
        committee_approved = decision is not None and (
            decision.outcome == Decision.Outcome.APPROVED
            or (decision.outcome == Decision.Outcome.CONDITIONS and decision.conditions_verified_at)
        )
        if permitted and not committee_approved:
            raise EthicsRefused(_("The head cannot permit research that the committee has not approved."))
        transition(protocol, "permit" if permitted else "deny")
        head_decision = HeadDecision.objects.create(
            version=version, permitted=permitted, conditions=conditions.strip(), reasons=reasons.strip(),
            decided_by=by,
        )
        transaction.on_commit(lambda: issue_permission_notice_task.delay(head_decision.pk, by.pk))
        if permitted and decision is not None:
            protocol.approved_until = decision.approved_until
            if protocol.periodic_report_due is None:
                protocol.periodic_report_due = one_year_after(timezone.localdate())
            protocol.save(update_fields=["approved_until", "periodic_report_due"])
        _audit("head_permitted" if permitted else "head_denied", by, protocol, version=version.number)
        notifications.notify_applicant(
            protocol,
            _("The head of the institution permitted your research") if permitted
            else _("The head of the institution did not permit your research"),
            reasons or conditions,
        )
    return head_decision


# --- After permission ---------------------------------------------------------------------------


def _copy_version(previous: ProtocolVersion, *, kind: str, summary: str) -> ProtocolVersion:
    """A new draft version with the previous one's fields, items and attachments."""
    protocol = previous.protocol
    number = (protocol.versions.aggregate(Max("number"))["number__max"] or 0) + 1
    version = ProtocolVersion.objects.get(pk=previous.pk)
    societies = list(previous.societies.all())
    researchers = list(previous.named_researchers.all())
    version.pk = None
    version.id = None
    version._state.adding = True
    version.number = number
    version.kind = kind
    version.change_summary = summary.strip()
    version.submitted_at = None
    version.save()
    version.societies.set(societies)
    version.named_researchers.set(researchers)
    OrganizationEntry.objects.bulk_create(
        OrganizationEntry(
            version=version, position=e.position, institution_name=e.institution_name,
            institution_role=e.institution_role, person_name=e.person_name, person_role=e.person_role,
            user_id=e.user_id,
        )
        for e in previous.organization_entries.all()
    )
    ProtocolItem.objects.bulk_create(
        ProtocolItem(version=version, key=i.key, body=i.body, not_applicable_reason=i.not_applicable_reason)
        for i in previous.items.all()
    )
    # Attachments carry over by reference: the stored files are never changed, only added.
    ProtocolAttachment.objects.bulk_create(
        ProtocolAttachment(
            version=version, kind=a.kind, file=a.file.name, original_name=a.original_name,
            media_type=a.media_type, size=a.size, sha256=a.sha256, uploaded_by=a.uploaded_by,
        )
        for a in previous.attachments.all()
    )
    return version


def protocol_revise_refusal(*, protocol: Protocol, by: User) -> str | None:
    """Why ``by`` may not open a revision of ``protocol`` now, or None if they may.

    The one rule: ``protocol_revise`` refuses with it, and the page offers the revision only when
    it answers None.
    """
    if protocol.principal_investigator_id != by.pk:
        return str(_("Only the protocol's principal investigator can do this."))
    if protocol.status != ProtocolStatus.DEFERRED:
        return str(_("Only a deferred protocol is revised for resubmission."))
    if not latest_version(protocol).is_frozen:
        return str(_("A revision is already being drafted."))
    return None


def protocol_revise(*, protocol: Protocol, summary: str, by: User) -> ProtocolVersion:
    """After a deferral (継続審査), open a revised version to resubmit."""
    _require_applicant(protocol, by)
    if not summary.strip():
        raise ValidationError({"summary": _("Summarise the changes.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        refusal = protocol_revise_refusal(protocol=protocol, by=by)
        if refusal is not None:
            raise EthicsRefused(refusal)
        previous = latest_version(protocol)
        version = _copy_version(previous, kind=previous.kind, summary=summary)
        _audit("protocol_revised", by, protocol, version=version.number)
    return version


def amendment_start(*, protocol: Protocol, kind: str, summary: str, by: User) -> ProtocolVersion:
    """Open a new draft version copied from the current one; the protocol stays active meanwhile."""
    _require_applicant(protocol, by)
    if kind not in {ProtocolVersion.Kind.MINOR_AMENDMENT, ProtocolVersion.Kind.MAJOR_AMENDMENT}:
        raise ValidationError({"kind": _("Choose a minor or a major amendment.")})
    if not summary.strip():
        raise ValidationError({"summary": _("Summarise the changes.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        if protocol.status != ProtocolStatus.ACTIVE:
            raise EthicsRefused(_("Only an active protocol can be amended."))
        previous = latest_version(protocol)
        if not previous.is_frozen:
            raise EthicsRefused(_("An amendment is already being drafted."))
        version = _copy_version(previous, kind=kind, summary=summary)
        _audit("amendment_started", by, protocol, version=version.number, kind=kind)
    return version


def amendment_submit(*, protocol: Protocol, by: User) -> Protocol:
    _require_applicant(protocol, by)
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        if version.kind == ProtocolVersion.Kind.INITIAL or version.is_frozen:
            raise EthicsRefused(_("There is no amendment draft to submit."))
        missing = missing_for_submission(version)
        if missing:
            raise ValidationError(missing)
        transition(protocol, "submit_amendment")
        version.submitted_at = timezone.now()
        version.save(update_fields=["submitted_at"])
        _audit("amendment_submitted", by, protocol, version=version.number, kind=version.kind)
        notifications.notify_secretariat(protocol, _("An amendment was submitted"))
    return protocol


def draft_submit(*, protocol: Protocol, by: User) -> Protocol:
    """Submit the open draft, whichever it is: pages and the API call this one.

    An amendment drafted while the research is active goes to amendment review; anything else (a
    first draft, one returned for completion, a revision after deferral, even of an amendment) is
    submitted anew.
    """
    submit = amendment_submit if protocol.status == ProtocolStatus.ACTIVE else protocol_submit
    return submit(protocol=protocol, by=by)


def minor_amendment_acknowledge(*, protocol: Protocol, by: User) -> Protocol:
    """A minor amendment handled as a notification (報告事項): the secretariat takes note."""
    _require_secretariat(protocol.committee, by)
    with transaction.atomic():
        protocol = _locked(protocol)
        version = latest_version(protocol)
        if version.kind != ProtocolVersion.Kind.MINOR_AMENDMENT:
            raise EthicsRefused(_("Only a minor amendment can be acknowledged as a notification."))
        transition(protocol, "acknowledge_minor_amendment")
        _audit("minor_amendment_acknowledged", by, protocol, version=version.number)
        notifications.notify_applicant(protocol, _("Your minor amendment was acknowledged"), "")
    return protocol


def periodic_report_submit(
    *, protocol: Protocol, period_end: date, subjects_enrolled: int, body: str, by: User
) -> PeriodicReport:
    """定期報告: the principal investigator reports once a year while the research runs."""
    _require_applicant(protocol, by)
    if not body.strip():
        raise ValidationError({"body": _("Describe the progress and any problems.")})
    if subjects_enrolled < 0:
        raise ValidationError({"subjects_enrolled": _("The number cannot be negative.")})
    if period_end > timezone.localdate():
        raise ValidationError({"period_end": _("The period cannot end in the future.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        if protocol.status not in {ProtocolStatus.ACTIVE, ProtocolStatus.AMENDMENT_REVIEW, ProtocolStatus.SUSPENDED}:
            raise EthicsRefused(_("Periodic reports are made while the research is running."))
        if protocol.periodic_reports.filter(period_end=period_end).exists():
            raise ValidationError({"period_end": _("A report for this period was already submitted.")})
        report = PeriodicReport.objects.create(
            protocol=protocol, period_end=period_end, subjects_enrolled=subjects_enrolled,
            body=body.strip(), submitted_by=by,
        )
        protocol.periodic_report_due = one_year_after(period_end)
        protocol.save(update_fields=["periodic_report_due"])
        _audit("periodic_report_submitted", by, protocol, period_end=period_end,
               subjects_enrolled=subjects_enrolled)
        notifications.notify_secretariat(protocol, _("A periodic report was submitted"))
    return report


def periodic_report_acknowledge(*, report: PeriodicReport, by: User) -> PeriodicReport:
    _require_secretariat(report.protocol.committee, by)
    with transaction.atomic():
        report = PeriodicReport.objects.select_for_update().get(pk=report.pk)
        if report.acknowledged_at is not None:
            raise EthicsRefused(_("This report was already acknowledged."))
        report.acknowledged_by = by
        report.acknowledged_at = timezone.now()
        report.save(update_fields=["acknowledged_by", "acknowledged_at"])
        _audit("periodic_report_acknowledged", by, report.protocol, period_end=report.period_end)
    return report


# While the research runs (or is suspended), serious non-compliance can be found and reported.
REPORTABLE_STATES = {ProtocolStatus.ACTIVE, ProtocolStatus.AMENDMENT_REVIEW, ProtocolStatus.SUSPENDED}


def noncompliance_report_file(*, protocol: Protocol, body: str, by: User) -> NoncomplianceReport:
    """重大な不適合の報告: the principal investigator or the head reports it to the committee."""
    if protocol.principal_investigator_id == by.pk:
        filed_as = NoncomplianceReport.FiledAs.PRINCIPAL_INVESTIGATOR
    else:
        _require_head(protocol, by)
        filed_as = NoncomplianceReport.FiledAs.HEAD
    if not body.strip():
        raise ValidationError({"body": _("Describe what happened and what was done about it.")})
    with transaction.atomic():
        protocol = _locked(protocol)
        if protocol.status not in REPORTABLE_STATES:
            raise EthicsRefused(_("Serious non-compliance is reported while the research is running."))
        report = NoncomplianceReport.objects.create(
            protocol=protocol, filed_by=by, filed_as=filed_as, body=body.strip()
        )
        _audit("noncompliance_reported", by, protocol, report=report.pk, filed_as=filed_as)
        notifications.notify_secretariat(protocol, _("A report of serious non-compliance was filed"))
    return report


def noncompliance_opinion_record(*, report: NoncomplianceReport, opinion: str, by: User) -> NoncomplianceReport:
    """The committee's opinion on a report of serious non-compliance, recorded by the chair."""
    protocol = report.protocol
    _require_chair(protocol.committee, by)
    if not opinion.strip():
        raise ValidationError({"opinion": _("Give the committee's opinion.")})
    with transaction.atomic():
        report = NoncomplianceReport.objects.select_for_update().get(pk=report.pk)
        if report.opinion_at is not None:
            raise EthicsRefused(_("The committee has already given its opinion on this report."))
        report.opinion = opinion.strip()
        report.opinion_by = by
        report.opinion_at = timezone.now()
        report.save(update_fields=["opinion", "opinion_by", "opinion_at"])
        _audit("noncompliance_opinion_recorded", by, protocol, report=report.pk)
        notifications.notify_applicant(protocol, _("The committee gave its opinion on a report of serious non-compliance"),
                                       report.opinion)
    return report


def _simple_transition(action: str, audit_action: str, protocol: Protocol, by: User, **details: Any) -> Protocol:
    with transaction.atomic():
        protocol = _locked(protocol)
        source, target = transition(protocol, action)
        _audit(audit_action, by, protocol, **details, **{"from": source, "to": target})
    return protocol


def protocol_suspend(*, protocol: Protocol, reason: str, by: User) -> Protocol:
    try:
        _require_chair(protocol.committee, by)
    except EthicsRefused:
        _require_head(protocol, by)
    if not reason.strip():
        raise ValidationError({"reason": _("Give the reason for the suspension.")})
    protocol = _simple_transition("suspend", "protocol_suspended", protocol, by, reason=reason)
    notifications.notify_applicant(protocol, _("Your research was suspended"), reason)
    return protocol


def protocol_resume(*, protocol: Protocol, by: User) -> Protocol:
    try:
        _require_chair(protocol.committee, by)
    except EthicsRefused:
        _require_head(protocol, by)
    return _simple_transition("resume", "protocol_resumed", protocol, by)


def _end_with_report(
    action: str, audit_action: str, protocol: Protocol, report: str, by: User, subject: str
) -> Protocol:
    with transaction.atomic():
        protocol = _locked(protocol)
        source, target = transition(protocol, action, end_report=report.strip())
        _audit(audit_action, by, protocol, report=report.strip(), **{"from": source, "to": target})
        notifications.notify_secretariat(protocol, subject)
    return protocol


def protocol_report_completion(*, protocol: Protocol, report: str, by: User) -> Protocol:
    """終了報告: the research ends as completed (終了)."""
    _require_applicant(protocol, by)
    if not report.strip():
        raise ValidationError({"report": _("Write the completion report.")})
    return _end_with_report("report_completion", "completion_reported", protocol, report, by,
                            _("A completion report was submitted"))


def protocol_discontinue(*, protocol: Protocol, report: str, by: User) -> Protocol:
    """中止報告: the principal investigator stops the research before its planned end (中止)."""
    _require_applicant(protocol, by)
    if not report.strip():
        raise ValidationError({"report": _("Write the discontinuation report: why the research stopped and what was done.")})
    return _end_with_report("discontinue", "protocol_discontinued", protocol, report, by,
                            _("A discontinuation report was submitted"))


def protocol_withdraw(*, protocol: Protocol, by: User) -> Protocol:
    """取下げ: the applicant withdraws a protocol that has not been decided."""
    _require_applicant(protocol, by)
    return _simple_transition("withdraw", "protocol_withdrawn", protocol, by)
