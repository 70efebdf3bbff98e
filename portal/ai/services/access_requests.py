"""Requests for access to a model: submitting, deciding, withdrawing and revoking."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ai.models import RUN_PERMISSION, AIModel, ModelAccessRequest, ModelVersion
from portal.ai.selectors import may_run
from portal.ai.services._common import _model_url, _require_manager, _send
from portal.ai.workflow import request_transition
from portal.audit.services import audit_record
from portal.societies.models import SocietyMembership
from portal.societies.selectors import member_users


def access_request_submit(*, model: AIModel, user: User, purpose: str) -> ModelAccessRequest:
    """A light request to run ``model``, for its society's admins to decide."""
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied(_("Sign in to ask for access."))
    purpose = (purpose or "").strip()
    if not purpose:
        raise ValidationError({"purpose": _("Say what you want to use the model for.")})
    if not model.versions.filter(status=ModelVersion.Status.PUBLISHED).exists():
        raise ValidationError(_("This model has no published version yet."), code="no_version")
    if may_run(user, model):
        raise ValidationError(_("You may already run this model."), code="already")
    with transaction.atomic():
        AIModel.objects.select_for_update().get(pk=model.pk)
        if ModelAccessRequest.objects.filter(
            model=model, user=user, status__in=ModelAccessRequest.OPEN_STATUSES
        ).exists():
            raise ValidationError(_("You already have an open request for this model."), code="open")
        request = ModelAccessRequest.objects.create(model=model, user=user, purpose=purpose)
        audit_record(action="ai.access_requested", actor=user, target=request, details={
            "model": model.slug, "purpose": purpose,
        })
        _send(
            _("Request to run model %(model)s") % {"model": model.slug},
            _("%(user)s asks to run %(model)s:\n\n%(purpose)s") % {
                "user": user.email, "model": model.name_ja, "purpose": purpose},
            member_users(model.society_id, SocietyMembership.Role.ADMIN),
            "/ai/manage/requests/",
        )
    return request


def _locked_request(request: ModelAccessRequest) -> ModelAccessRequest:
    return ModelAccessRequest.objects.select_for_update().select_related("model", "user").get(pk=request.pk)


def access_request_decide(
    *, request: ModelAccessRequest, approve: bool, note: str = "", by: User
) -> ModelAccessRequest:
    """Approve (the run permission is assigned) or reject (a note is required) a submitted request."""
    from guardian.shortcuts import assign_perm

    _require_manager(by, request.model)
    note = (note or "").strip()
    if not approve and not note:
        raise ValidationError({"note": _("Say why the request is rejected.")})
    with transaction.atomic():
        locked = _locked_request(request)
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked.decision_note = note
        source, target = request_transition(
            locked, "approve" if approve else "reject", extra_fields=("decided_by", "decided_at", "decision_note")
        )
        if approve:
            assign_perm(RUN_PERMISSION, locked.user, locked.model)
        audit_record(action="ai.access_decided", actor=by, target=locked, details={
            "model": locked.model.slug, "user": locked.user.email, "approve": bool(approve), "note": note,
            "from": source, "to": target,
        })
        subject = (_("Your request to run %(model)s was approved") if approve
                   else _("Your request to run %(model)s was rejected")) % {"model": locked.model.slug}
        _send(subject, note, [locked.user], _model_url(locked.model))
    request.refresh_from_db()
    return request


def access_request_withdraw(*, request: ModelAccessRequest, by: User) -> ModelAccessRequest:
    """The requester takes back a request still waiting for a decision."""
    if getattr(by, "pk", None) != request.user_id:
        raise PermissionDenied(_("Only the requester can withdraw the request."))
    with transaction.atomic():
        locked = _locked_request(request)
        source, target = request_transition(locked, "withdraw")
        audit_record(action="ai.access_withdrawn", actor=by, target=locked, details={
            "model": locked.model.slug, "from": source, "to": target,
        })
    request.refresh_from_db()
    return request


def access_revoke(*, request: ModelAccessRequest, reason: str, by: User) -> ModelAccessRequest:
    """Take back an approved request's run permission (jobs already run keep their results)."""
    from guardian.shortcuts import remove_perm

    _require_manager(by, request.model)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why access is revoked.")})
    with transaction.atomic():
        locked = _locked_request(request)
        locked.decision_note = reason
        source, target = request_transition(locked, "revoke", extra_fields=("decision_note",))
        remove_perm(RUN_PERMISSION, locked.user, locked.model)
        audit_record(action="ai.access_revoked", actor=by, target=locked, details={
            "model": locked.model.slug, "user": locked.user.email, "reason": reason, "from": source, "to": target,
        })
        _send(
            _("Your access to model %(model)s was revoked") % {"model": locked.model.slug},
            reason, [locked.user], _model_url(locked.model),
        )
    request.refresh_from_db()
    return request


