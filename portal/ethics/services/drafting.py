"""Drafting: the applicant creates, edits and submits a protocol; the secretariat may return it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import Organization, OrganizationMembership, User
from portal.core.vocabulary import Modality
from portal.ethics import notifications
from portal.ethics.items import ORGANIZATION_ITEM_KEYS, items_for
from portal.ethics.models import (
    EthicsCommittee,
    OrganizationEntry,
    Protocol,
    ProtocolAttachment,
    ProtocolItem,
    ProtocolVersion,
)
from portal.ethics.services.common import (
    _audit,
    _editable_version,
    _locked,
    _require_applicant,
    _require_secretariat,
    latest_version,
)
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
