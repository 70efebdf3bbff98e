"""Withdrawal, signature and countersignature, and what follows the grant (revocation, closing,
comments)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.access import notifications
from portal.access.models import AccessRequest, Grant, RequestComment
from portal.access.request_selectors import request_standing
from portal.access.services import grants
from portal.access.services.request_common import (
    LIVE_GRANT_STATES,
    M,
    _holds,
    _is_applicant,
    _lock,
    _require_steward,
)
from portal.access.workflow import APPROVING, AccessRefused, request_target, transition_request
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.agreements.models import SignedAgreement
from portal.agreements.services import agreement_countersign, agreement_sign
from portal.audit.services import audit_record
from portal.societies.models import Society, SocietyMembership


def access_request_withdraw(*, access_request: AccessRequest, by: User, reason: str = "") -> AccessRequest:
    with transaction.atomic():
        locked = _lock(access_request)
        if not _is_applicant(by, locked):
            raise AccessRefused(_("Only the applicant can withdraw the application."))
        source = locked.status
        request_target("withdraw", source)
        if locked.grants.exists():
            raise AccessRefused(_("Access has already been granted; ask the society to end it instead."))
        transition_request(locked, "withdraw")
        audit_record(action="access.request_withdrawn", actor=by, target=locked,
                     details={"from": source, "reason": reason})
        for society_id in locked.society_reviews.values_list("society_id", flat=True):
            notifications.notify_stewards(locked, society_id, _("A data-access application was withdrawn"))
    access_request.refresh_from_db()
    return access_request


def approving_societies(access_request: AccessRequest) -> list[Society]:
    ids = access_request.society_reviews.filter(status__in=APPROVING).values_list("society_id", flat=True)
    return list(Society.objects.filter(pk__in=ids).order_by("pk"))


def access_request_sign(*, access_request: AccessRequest, signatory_name: str, signatory_title: str,
                        ip: str | None, by: User) -> list:
    """The applicant's authorised signatory signs every approving society's data-use agreement."""
    if not (signatory_name or "").strip() or not (signatory_title or "").strip():
        raise ValidationError({"signatory_name": _("Give the signatory's name and title.")})
    with transaction.atomic():
        locked = _lock(access_request)
        if not locked.signatory_id or locked.signatory_id != by.pk:
            raise AccessRefused(_("Only the authorised signatory named in the application can sign."))
        request_target("sign", locked.status)
        agreements = [
            agreement_sign(access_request=locked, society=society, signatory_name=signatory_name.strip(),
                           signatory_title=signatory_title.strip(), ip=ip, by=by)
            for society in approving_societies(locked)
        ]
        transition_request(locked, "sign")
        audit_record(action="access.request_signed", actor=by, target=locked,
                     details={"agreements": [a.pk for a in agreements], "ip": ip})
        # agreement_sign tells each society's admins that a countersignature awaits them.
    access_request.refresh_from_db()
    return agreements


def access_request_countersign(*, access_request: AccessRequest, society: Society, countersigner_name: str,
                               countersigner_title: str, ip: str | None, by: User,
                               record_custodian: str = "provider") -> Grant:
    """A society admin countersigns its agreement; its grant starts; the last one grants the request.

    ``record_custodian`` is who keeps the provision record (保管者): the society, or the recipient
    when the society delegates custody to it (REGULATION.md a5)."""
    if not (countersigner_name or "").strip() or not (countersigner_title or "").strip():
        raise ValidationError({"countersigner_name": _("Give the countersigner's name and title.")})
    with transaction.atomic():
        locked = _lock(access_request)
        if not _holds(by, society, M.ADMIN):
            raise AccessRefused(_("Only an admin of %(society)s can countersign.") % {"society": society})
        request_target("grant", locked.status)
        agreement = (
            SignedAgreement.objects.select_for_update()
            .filter(access_request=locked, society=society, status=SignedAgreement.Status.SIGNED)
            .order_by("-signed_at", "-id").first()
        )
        if agreement is None:
            raise AccessRefused(_("No agreement of %(society)s awaits a countersignature on this application.")
                                % {"society": society})
        agreement = agreement_countersign(agreement=agreement, countersigner_name=countersigner_name.strip(),
                                          countersigner_title=countersigner_title.strip(), ip=ip, by=by)
        grant = grants.grant_start(access_request=locked, society=society, by=by,
                                   record_custodian=record_custodian)
        audit_record(action="access.request_countersigned", actor=by, target=locked,
                     details={"society": society.pk, "agreement": agreement.pk, "grant": grant.reference})
        approving = {s.pk for s in approving_societies(locked)}
        completed = set(SignedAgreement.objects.filter(
            access_request=locked, status=SignedAgreement.Status.COMPLETED).values_list("society_id", flat=True))
        if approving <= completed:
            transition_request(locked, "grant")
            audit_record(action="access.request_granted", actor=by, target=locked,
                         details={"societies": sorted(approving)})
        # agreement_countersign tells the applicant and the signatory.
    access_request.refresh_from_db()
    return grant


def _live_grants(access_request: AccessRequest):  # type: ignore[no-untyped-def]
    return access_request.grants.filter(status__in=LIVE_GRANT_STATES)


def access_request_revoke(*, access_request: AccessRequest, society: Society, reason: str, by: User) -> AccessRequest:
    """A steward of ``society`` revokes its grants; the application is revoked when none is left."""
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Give the reason for the revocation.")})
    with transaction.atomic():
        locked = _lock(access_request)
        _require_steward(by, society)
        request_target("revoke", locked.status)
        revoked = []
        for grant in _live_grants(locked).filter(society=society):
            grants.grant_revoke(grant=grant, reason=reason.strip(), by=by)
            revoked.append(grant.reference)
        if not revoked:
            raise AccessRefused(_("%(society)s has no grant in force on this application.") % {"society": society})
        audit_record(action="access.request_grants_revoked", actor=by, target=locked,
                     details={"society": society.pk, "grants": revoked, "reason": reason.strip()})
        if not _live_grants(locked).exists():
            transition_request(locked, "revoke")
            audit_record(action="access.request_revoked", actor=by, target=locked, details={"reason": reason.strip()})
        notifications.notify_applicant(locked, _("Access under your data-access application was revoked"),
                                       reason.strip())
    access_request.refresh_from_db()
    return access_request


def access_request_close(*, access_request: AccessRequest, by: User) -> AccessRequest:
    """Close the application after the end of use, once no grant of it is left in force.

    Called by ``usage_report_accept`` after ``grant_end``; while another society's grant is still in
    force the application stays as it is.
    """
    with transaction.atomic():
        locked = _lock(access_request)
        societies = locked.society_reviews.values_list("society_id", flat=True)
        may = has_role(by, Role.OPERATOR) or SocietyMembership.objects.filter(
            user=by, society_id__in=societies, role__in=[M.STEWARD, M.ADMIN]).exists()
        if not may:
            raise AccessRefused(_("Only a data steward of a reviewing society can close the application."))
        request_target("close", locked.status)
        if _live_grants(locked).exists():
            return access_request
        source, _target = transition_request(locked, "close")
        audit_record(action="access.request_closed", actor=by, target=locked, details={"from": source})
        notifications.notify_applicant(locked, _("Your data-access application was closed"))
    access_request.refresh_from_db()
    return access_request


def access_request_comment(*, access_request: AccessRequest, body: str, audience: str, by: User,
                           society: Society | None = None) -> RequestComment:
    """A comment by the applicant (to everybody) or a reviewer (to the chosen audience)."""
    if not (body or "").strip():
        raise ValidationError({"body": _("Write the comment.")})
    if audience not in RequestComment.Audience.values:
        raise ValidationError({"audience": _("Choose who may read the comment.")})
    with transaction.atomic():
        locked = _lock(access_request)
        standing = request_standing(by, locked)
        if not standing.may_see:
            raise AccessRefused(_("You cannot comment on this application."))
        reviewer_societies = standing.steward_society_ids | standing.committee_society_ids
        if society is not None and society.pk not in reviewer_societies:
            raise AccessRefused(_("You do not review this application for %(society)s.") % {"society": society})
        if audience not in standing.comment_audiences() or (
            audience == RequestComment.Audience.STEWARDS and not standing.is_steward
        ):
            raise AccessRefused(_("You cannot write a comment for this audience."))
        if not reviewer_societies and audience != RequestComment.Audience.APPLICANT:
            raise AccessRefused(_("You cannot write a comment for this audience."))
        comment = RequestComment.objects.create(access_request=locked, society=society, author=by,
                                                audience=audience, body=body.strip())
        audit_record(action="access.request_commented", actor=by, target=locked,
                     details={"audience": audience, "society": society.pk if society else None})
        if audience == RequestComment.Audience.APPLICANT and not standing.is_applicant:
            notifications.notify_applicant(locked, _("New comment on your data-access application"), body.strip())
    return comment
