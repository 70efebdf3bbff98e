"""Every change to agreement templates and signatures: checked, saved and audited in one transaction.

Templates are kept by the society's admins (or the platform operator). A version is written as a
draft, published once (which supersedes the previous one) and never edited after that; agreements
already signed keep the version they signed. A signature is the applicant's authorised signatory's
click-through (name, title, time, IP) on the society's current data-use version; it stores a
snapshot of the terms and the Japanese PDF with its SHA-256. The countersignature of an admin of
the society completes it and re-renders the PDF with both signatures.

A refusal raises ``PermissionDenied`` (not you) or ``ValidationError`` (not now, or bad input) and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.agreements.documents import agreement_pdf_store
from portal.agreements.models import (
    AgreementTemplate,
    AgreementTemplateVersion,
    Owner,
    SignedAgreement,
)
from portal.agreements.selectors import current_version_for, may_countersign, may_manage_agreements
from portal.agreements.workflow import SIGNED_AGREEMENT, TEMPLATE_VERSION
from portal.audit.services import audit_record
from portal.lib.workflow import transition
from portal.notifications.services import notification_send
from portal.societies.models import Society, SocietyMembership
from portal.societies.selectors import member_users

Version = AgreementTemplateVersion
# What a draft's author sets; the terms are the structured fields compared across societies.
VERSION_FIELDS = ("body_ja", "body_en", "change_summary", *Version.TERM_FIELDS)
# Free-text terms that must be written before a version is published.
TEXT_TERMS = ("publication_duties_ja", "fee_terms_ja", "security_obligations_ja", "benefit_sharing_ja")
OWNER_TERMS = ("images_owner", "annotated_data_owner", "model_owner")


# --- Who may act, and e-mail --------------------------------------------------------------------


def _require_manager(user: User | None, society: Society) -> None:
    if user is None or not may_manage_agreements(user, society):
        raise PermissionDenied(_("Only an admin of the society or the platform operator can do this."))


def _link(name: str, *args: Any) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _notify(subject: str, lines: list[str], recipients: Iterable[User | None], url: str) -> None:
    body = "\n\n".join(line for line in lines if line)
    notification_send(recipients=recipients, area=_("Agreements"), subject=subject, body=body, url=url)


# --- Versions -----------------------------------------------------------------------------------


def _check_fields(fields: dict[str, Any], allowed: tuple[str, ...], function: str) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"{function}() got unexpected fields: {sorted(unknown)}")


def _validate_values(version: Version) -> None:
    """Values every draft must hold (publication asks for more: ``agreement_version_publish_problems``)."""
    errors: dict[str, list[str]] = {}
    for name in OWNER_TERMS:
        if getattr(version, name) not in Owner.values:
            errors[name] = [_("Choose who owns this from the list.")]
    for name in ("fee_jpy", "term_months"):
        value = getattr(version, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            errors[name] = [_("Enter a number of zero or more.")]
    if isinstance(version.term_months, int) and version.term_months == 0:
        errors["term_months"] = [_("The term must be at least one month.")]
    if errors:
        raise ValidationError(errors)


def agreement_version_publish_problems(version: Version) -> dict[str, list[str]]:
    """What stops ``version`` from being published, by field (empty when it can be)."""
    errors: dict[str, list[str]] = {}
    if not (version.body_ja or "").strip():
        errors["body_ja"] = [_("Write the full text of the agreement in Japanese before publishing it.")]
    for name in TEXT_TERMS:
        if not (getattr(version, name) or "").strip():
            errors[name] = [_("Set this term before publishing the agreement.")]
    if version.number > 1 and not (version.change_summary or "").strip():
        errors["change_summary"] = [_("Say what changed in this version before publishing it.")]
    return errors


def _locked_version(version: Version) -> Version:
    return Version.objects.select_for_update().select_related("template__society").get(pk=version.pk)


def agreement_template_create(
    *, society: Society, kind: str, name_ja: str, name_en: str = "", by: User, **version_fields: Any
) -> AgreementTemplate:
    """A template of ``society`` with its draft version 1."""
    _require_manager(by, society)
    _check_fields(version_fields, VERSION_FIELDS, "agreement_template_create")
    errors: dict[str, list[str]] = {}
    if kind not in AgreementTemplate.Kind.values:
        errors["kind"] = [_("Choose the kind of agreement.")]
    if not (name_ja or "").strip():
        errors["name_ja"] = [_("Give the agreement a Japanese name.")]
    with transaction.atomic():
        Society.objects.select_for_update().filter(pk=society.pk).first()
        if AgreementTemplate.objects.filter(society=society, kind=kind).exists():
            errors["kind"] = [_("The society already has an agreement of this kind; publish a new version of it "
                                "instead.")]
        if errors:
            raise ValidationError(errors)
        template = AgreementTemplate.objects.create(
            society=society, kind=kind, name_ja=name_ja.strip(), name_en=(name_en or "").strip(), created_by=by,
        )
        version = Version(template=template, number=1, status=Version.Status.DRAFT, created_by=by, **version_fields)
        _validate_values(version)
        version.save()
        audit_record(
            action="agreements.template_created", actor=by, target=template,
            details={"society": society.slug, "kind": kind, "version": version.pk},
        )
    return template


def agreement_version_update_draft(*, version: Version, by: User, **fields: Any) -> Version:
    """Change a draft; a published or superseded version is never edited."""
    _require_manager(by, version.template.society)
    _check_fields(fields, VERSION_FIELDS, "agreement_version_update_draft")
    with transaction.atomic():
        locked = _locked_version(version)
        if locked.status != Version.Status.DRAFT:
            raise ValidationError(
                _("A published agreement version is never edited; publish a new version instead."),
                code="published_version_immutable",
            )
        changed = sorted(name for name, value in fields.items() if getattr(locked, name) != value)
        for name in changed:
            setattr(locked, name, fields[name])
        _validate_values(locked)
        locked.save()
        audit_record(
            action="agreements.version_updated", actor=by, target=locked,
            details={"template": locked.template_id, "version": locked.number, "changed": changed},
        )
    return locked


def agreement_version_new(*, template: AgreementTemplate, by: User, **changes: Any) -> Version:
    """A new draft copied from the published version, with ``changes`` (and a change summary)."""
    _require_manager(by, template.society)
    _check_fields(changes, VERSION_FIELDS, "agreement_version_new")
    with transaction.atomic():
        AgreementTemplate.objects.select_for_update().filter(pk=template.pk).first()
        if template.versions.filter(status=Version.Status.DRAFT).exists():
            raise ValidationError(_("This agreement already has a draft version; edit it instead."), code="draft_exists")
        published = template.versions.filter(status=Version.Status.PUBLISHED).first()
        if published is None:
            raise ValidationError(_("Publish the first version before starting a new one."), code="not_published")
        number = (template.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        fields = {name: getattr(published, name) for name in VERSION_FIELDS if name != "change_summary"}
        fields["change_summary"] = ""
        fields.update(changes)
        version = Version(template=template, number=number, status=Version.Status.DRAFT, created_by=by, **fields)
        _validate_values(version)
        version.save()
        audit_record(
            action="agreements.version_created", actor=by, target=version,
            details={"template": template.pk, "version": number, "from_version": published.number,
                     "changed": sorted(name for name, value in changes.items()
                                       if name != "change_summary" and getattr(published, name) != value)},
        )
    return version


def agreement_version_publish(*, version: Version, by: User) -> Version:
    """Publish a draft: it becomes the version applicants sign, the previous one is superseded."""
    _require_manager(by, version.template.society)
    with transaction.atomic():
        template = AgreementTemplate.objects.select_for_update().get(pk=version.template_id)
        locked = _locked_version(version)
        if locked.status != Version.Status.DRAFT:
            raise ValidationError(_("Only a draft version can be published."), code="not_draft")
        problems = agreement_version_publish_problems(locked)
        if problems:
            raise ValidationError(problems)
        previous = template.versions.filter(status=Version.Status.PUBLISHED).first()
        now = timezone.now()
        if previous is not None:
            # Status only: the guard on the model keeps the superseded text and terms as they were.
            transition(previous, TEMPLATE_VERSION, "supersede")
        locked.published_at = now
        locked.published_by = by
        transition(locked, TEMPLATE_VERSION, "publish", extra_fields=["published_at", "published_by"])
        template.current_version = locked
        template.save(update_fields=["current_version"])
        audit_record(
            action="agreements.version_published", actor=by, target=locked,
            details={"template": template.pk, "society": template.society.slug, "version": locked.number,
                     "superseded": previous.number if previous is not None else None,
                     "resign_on_new_version": locked.resign_on_new_version},
        )
        if previous is not None and locked.resign_on_new_version:
            holders = User.objects.filter(pk__in=SignedAgreement.objects.filter(
                template_version__template=template, status=SignedAgreement.Status.COMPLETED,
            ).exclude(template_version=locked).values("signatory_id")).order_by("pk")
            _notify(
                _("A new version of %(name)s must be signed") % {"name": template.name_ja},
                [_("%(society)s published version %(number)s of %(name)s and asks every holder to sign it again. "
                   "Until you do, access that rests on the earlier version is paused.")
                 % {"society": template.society.name_ja, "number": locked.number, "name": template.name_ja}],
                holders,
                _link("agreements:version_detail", locked.pk),
            )
    return locked


# --- Signatures ---------------------------------------------------------------------------------


def _signature_errors(name: str, title: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors["name"] = [_("Enter the name of the person signing.")]
    if not (title or "").strip():
        errors["title"] = [_("Enter the title of the person signing.")]
    return errors


def agreement_sign(
    *, access_request: Any, society: Society, signatory_name: str, signatory_title: str, ip: str | None, by: User
) -> SignedAgreement:
    """The applicant's authorised signatory signs ``society``'s current data-use version."""
    # The access app stands above this one: its model is reached through our foreign key to it.
    access_requests = SignedAgreement._meta.get_field("access_request").related_model._default_manager

    if by is None or access_request.signatory_id is None or by.pk != access_request.signatory_id:
        raise PermissionDenied(_("Only the authorised signatory named in the application can sign its agreement."))
    errors = _signature_errors(signatory_name, signatory_title)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        request = access_requests.select_for_update().select_related("organization").get(pk=access_request.pk)
        if request.signatory_id != by.pk:
            raise PermissionDenied(_("Only the authorised signatory named in the application can sign its agreement."))
        version = current_version_for(society)
        if version is None:
            raise ValidationError(_("%(society)s has no published data-use agreement yet; it cannot be signed.")
                                  % {"society": society.name_ja}, code="no_published_version")
        if not request.releases.filter(dataset__society=society).exists():
            raise ValidationError(_("The application asks for no data of %(society)s.") % {"society": society.name_ja},
                                  code="society_not_in_request")
        if SignedAgreement.objects.filter(access_request=request, society=society, template_version=version).exists():
            raise ValidationError(_("This version of the agreement has already been signed for this application."),
                                  code="already_signed")
        agreement = SignedAgreement(
            access_request=request, society=society, template_version=version, terms=version.terms(),
            status=SignedAgreement.Status.SIGNED, signatory=by, signatory_name=signatory_name.strip(),
            signatory_title=signatory_title.strip(), signed_at=timezone.now(), signed_ip=ip or None,
        )
        stored = agreement_pdf_store(agreement, stage="signed")
        try:
            agreement.save()
            audit_record(
                action="agreements.signed", actor=by, target=agreement, ip=ip,
                details={"access_request": request.reference, "society": society.slug,
                         "template": version.template_id, "version": version.number,
                         "signatory_name": agreement.signatory_name, "signatory_title": agreement.signatory_title,
                         "pdf": stored, "pdf_sha256": agreement.pdf_sha256},
            )
        except Exception:
            agreement.pdf.storage.delete(stored)
            raise
        _notify(
            _("An agreement is waiting for your countersignature: %(reference)s") % {"reference": request.reference},
            [f"{request.reference} {request.title}",
             _("%(name)s (%(title)s) of %(organisation)s signed %(agreement)s version %(number)s. "
               "An admin of %(society)s now countersigns it.")
             % {"name": agreement.signatory_name, "title": agreement.signatory_title,
                "organisation": request.organization.name_ja, "agreement": version.template.name_ja,
                "number": version.number, "society": society.name_ja}],
            member_users(society, SocietyMembership.Role.ADMIN),
            _link("access:request_detail", request.pk),
        )
    return agreement


def agreement_countersign(
    *, agreement: SignedAgreement, countersigner_name: str, countersigner_title: str, ip: str | None, by: User
) -> SignedAgreement:
    """An admin of the agreement's society countersigns; the PDF is rendered again with both signatures."""
    if by is None or not may_countersign(by, agreement.society):
        raise PermissionDenied(_("Only an admin of the society can countersign its agreement."))
    errors = _signature_errors(countersigner_name, countersigner_title)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = (
            SignedAgreement.objects.select_for_update()
            .select_related("access_request__organization", "society", "template_version__template", "signatory")
            .get(pk=agreement.pk)
        )
        if locked.status != SignedAgreement.Status.SIGNED:
            raise ValidationError(_("This agreement has already been countersigned."), code="already_countersigned")
        previous = {"pdf": locked.pdf.name, "pdf_sha256": locked.pdf_sha256}
        transition(locked, SIGNED_AGREEMENT, "countersign", save=False)  # saved with the PDF below
        locked.countersigned_by = by
        locked.countersigner_name = countersigner_name.strip()
        locked.countersigner_title = countersigner_title.strip()
        locked.countersigned_at = timezone.now()
        locked.countersigned_ip = ip or None
        # The signed-only PDF stays in storage; the audit event of the signature names it and its hash.
        stored = agreement_pdf_store(locked, stage="countersigned")
        try:
            locked.save()
            audit_record(
                action="agreements.countersigned", actor=by, target=locked, ip=ip,
                details={"access_request": locked.access_request.reference, "society": locked.society.slug,
                         "version": locked.template_version.number,
                         "countersigner_name": locked.countersigner_name,
                         "countersigner_title": locked.countersigner_title,
                         "pdf": stored, "pdf_sha256": locked.pdf_sha256, "previous": previous},
            )
        except Exception:
            locked.pdf.storage.delete(stored)
            raise
        request = locked.access_request
        _notify(
            _("Your agreement with %(society)s is complete: %(reference)s")
            % {"society": locked.society.name_ja, "reference": request.reference},
            [f"{request.reference} {request.title}",
             _("%(society)s countersigned the agreement. You can download the signed PDF.")
             % {"society": locked.society.name_ja}],
            [request.applicant, locked.signatory],
            _link("agreements:signed_pdf", locked.pk),
        )
    return locked
