"""延長・変更申請: after a grant starts, its applicant asks to extend the period of use or to change
the named users (REGULATION.md (b): 年次利用報告 → 延長/変更申請).

- Removing users takes effect at once (taking access away is always safe): they leave the grant
  (what they may download is read live from the grants in force, ``grant_usability``) and leave the
  application's named users unless another grant of the application still names them.
- An extension or added users wait for a data steward (or administrator) of the grant's society.
  On approval the grant's expiry and the application's period move, the provision record (提供記録)
  covers the new period, the usage reports of the new period are scheduled and the new users are
  named on the grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import (
    AccessRequest,
    Grant,
    GrantAmendment,
    ProvisionRecord,
    RequestStatus,
    RequestUser,
    UsageReport,
)
from portal.access.selectors import grant_agreement
from portal.access.services.records import (
    PROVIDER_RETENTION_YEARS,
    add_years,
    provision_record_create,
    usage_reports_schedule,
)
from portal.access.workflow import AMENDMENT
from portal.accounts.models import User
from portal.accounts.roles import Role, has_role
from portal.audit.services import audit_record
from portal.lib.workflow import transition
from portal.notifications.services import notification_send
from portal.societies.models import SocietyMembership
from portal.societies.selectors import member_users

MAX_YEARS = 3  # at most three years from the start of the application's period
_LIVE = (Grant.Status.ACTIVE, Grant.Status.PAUSED)


# --- helpers -------------------------------------------------------------------------------------


def expiry_for(last_day: date) -> datetime:
    """The grant's expiry for a last day of use: the start of the next day, in local time."""
    return timezone.make_aware(datetime.combine(last_day + timedelta(days=1), time.min))


def last_day_of(grant: Grant) -> date:
    """The grant's last day of use (the day before its expiry when it expires at midnight)."""
    local = timezone.localtime(grant.expires_at)
    day = local.date()
    return day - timedelta(days=1) if local.time() == time.min else day


def may_request(user: User | object, grant: Grant) -> bool:
    """The applicant or the principal investigator of the grant's application."""
    request = grant.access_request
    return bool(
        getattr(user, "is_authenticated", False) and request is not None
        and user.pk in {request.applicant_id, request.principal_investigator_id}  # type: ignore[union-attr]
    )


def may_decide(user: User | object, grant: Grant) -> bool:
    """A data steward or administrator of the grant's society, or the platform operator."""
    if not getattr(user, "is_authenticated", False):
        return False
    if has_role(user, Role.OPERATOR):
        return True
    return grant.society_id is not None and SocietyMembership.objects.filter(
        user_id=user.pk, society_id=grant.society_id, role__in=["steward", "admin"],  # type: ignore[union-attr]
    ).exists()


def grant_period_start(grant: Grant) -> date:
    request = grant.access_request
    if request is not None and request.period_start is not None:
        return request.period_start
    return timezone.localdate(grant.starts_at)


def _extension_problem(grant: Grant, new_last_day: date) -> str | None:
    if expiry_for(new_last_day) <= grant.expires_at:
        return _("The new last day must be later than the current one (%(date)s).") % {
            "date": last_day_of(grant).isoformat()}
    agreement = grant_agreement(grant)
    if agreement is None:
        return _("The grant has no countersigned agreement to extend.")
    if (agreement.terms or {}).get("extension_allowed") is False:
        return _("The society's agreement does not allow the period of use to be extended.")
    limit = add_years(grant_period_start(grant), MAX_YEARS)
    if new_last_day > limit:
        return _("The period of use may not go beyond %(date)s (%(years)s years from its start).") % {
            "date": limit.isoformat(), "years": MAX_YEARS}
    return None


def _clean_additions(grant: Grant, rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Added users as stored on the amendment, and the problems (each user named)."""
    cleaned: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[int] = set()
    on_grant = set(grant.users.values_list("pk", flat=True))
    roles = {value for value, _label in RequestUser.Role.choices} - {RequestUser.Role.PRINCIPAL}
    for row in rows:
        user = row.get("user")
        if not isinstance(user, User):
            user = User.objects.filter(pk=user).first() if user else None
        if user is None or not user.is_active:
            problems.append(_("A user to add is not an active user of the portal."))
            continue
        name = user.email
        if user.pk in seen:
            problems.append(_("%(user)s is named twice.") % {"user": name})
            continue
        seen.add(user.pk)
        if user.pk in on_grant:
            problems.append(_("%(user)s is already a named user of the grant.") % {"user": name})
        training_date = row.get("ethics_training_date")
        if isinstance(training_date, str) and training_date:
            try:
                training_date = date.fromisoformat(training_date)
            except ValueError:
                training_date = None
        if not row.get("ethics_training") or not isinstance(training_date, date):
            problems.append(_("%(user)s: research-ethics training (completed, with its date) is required.")
                            % {"user": name})
        elif training_date > timezone.localdate():
            problems.append(_("%(user)s: the training date is in the future.") % {"user": name})
        role = row.get("role") or RequestUser.Role.CO_INVESTIGATOR
        if role not in roles:
            problems.append(_("%(user)s: choose co-investigator or analysis contractor.") % {"user": name})
        cleaned.append({
            "user": user.pk, "email": user.email, "role": role, "ethics_training": bool(row.get("ethics_training")),
            "ethics_training_date": training_date.isoformat() if isinstance(training_date, date) else "",
        })
    return cleaned, problems


def _remove_user(grant: Grant, user: User) -> None:
    """Take ``user`` off the grant now, and off the application's named users (unless another
    grant names them)."""
    grant.users.remove(user)
    if grant.access_request_id is not None:
        named_elsewhere = Grant.objects.filter(
            access_request_id=grant.access_request_id, status__in=_LIVE, users=user
        ).exclude(pk=grant.pk).exists()
        if not named_elsewhere:
            RequestUser.objects.filter(access_request_id=grant.access_request_id, user=user).delete()


def _notify(amendment: GrantAmendment, subject: str, detail: str, *, to_stewards: bool = False) -> None:
    grant = amendment.grant
    request = grant.access_request
    body = "\n\n".join(x for x in [f"{grant.reference} {request.title if request else ''}".strip(), detail] if x)
    if to_stewards:
        recipients = member_users(grant.society_id, SocietyMembership.Role.STEWARD)
    else:
        recipients = [request.applicant, request.principal_investigator] if request else []
    notification_send(recipients=recipients, area=_("Data access"), subject=subject, body=body,
                      url=f"/access/amendments/{amendment.pk}/")


# --- services ------------------------------------------------------------------------------------


def _removal_problems(grant: Grant, request: AccessRequest, users_to_remove: list[User],
                      additions: list[dict[str, Any]]) -> list[str]:
    """Why the named users cannot be removed from ``grant`` as asked (empty when they can)."""
    problems = []
    on_grant = set(grant.users.values_list("pk", flat=True))
    removing_ids = {u.pk for u in users_to_remove}
    for user in users_to_remove:
        if user.pk not in on_grant:
            problems.append(_("%(user)s is not a named user of the grant.") % {"user": user.email})
        elif user.pk == request.principal_investigator_id:
            problems.append(_("The principal investigator cannot be removed; apply again instead."))
    if removing_ids & {row["user"] for row in additions}:
        problems.append(_("A user cannot be both added and removed."))
    if removing_ids and not (on_grant - removing_ids):
        problems.append(_("At least one named user must remain."))
    return problems


def grant_amendment_request(
    *,
    grant: Grant,
    by: User,
    new_expires_on: date | None = None,
    users_to_add: Iterable[Mapping[str, Any]] = (),
    users_to_remove: Iterable[User] = (),
    reason: str,
) -> GrantAmendment:
    """Ask to extend the grant (``new_expires_on``: the new last day of use) and/or to change its
    named users. ``users_to_add`` rows: ``{"user", "role", "ethics_training", "ethics_training_date"}``.
    Removals take effect at once; the rest waits for the society's decision."""
    if not may_request(by, grant):
        raise PermissionDenied(_("Only the applicant or the principal investigator can ask to change the grant."))
    users_to_add = list(users_to_add)
    users_to_remove = list(users_to_remove)
    reason = (reason or "").strip()
    with transaction.atomic():
        locked = Grant.objects.select_for_update(of=("self",)).select_related("access_request").get(pk=grant.pk)
        request: AccessRequest = locked.access_request  # type: ignore[assignment]
        if locked.status not in _LIVE or locked.expires_at <= timezone.now() or request.status != RequestStatus.GRANTED:
            raise ValidationError(_("The grant is no longer in force: it cannot be extended or changed."))
        errors: dict[str, list[str]] = {}
        if not reason:
            errors.setdefault("reason", []).append(_("Give the reason for the change."))
        if not (new_expires_on or users_to_add or users_to_remove):
            errors.setdefault("__all__", []).append(
                _("Ask for an extension, or name users to add or to remove."))
        if (new_expires_on or users_to_add) and locked.amendments.filter(
                status=GrantAmendment.Status.SUBMITTED).exists():
            errors.setdefault("__all__", []).append(
                _("An earlier request is still awaiting the society's decision."))
        if new_expires_on and (problem := _extension_problem(locked, new_expires_on)):
            errors.setdefault("new_expires_on", []).append(problem)
        additions, problems = _clean_additions(locked, users_to_add)
        if problems:
            errors.setdefault("users_to_add", []).extend(problems)
        if problems := _removal_problems(locked, request, users_to_remove, additions):
            errors.setdefault("users_to_remove", []).extend(problems)
        if errors:
            raise ValidationError(errors)

        needs_decision = bool(new_expires_on or additions)
        amendment = GrantAmendment.objects.create(
            grant=locked, requested_by=by, new_expires_on=new_expires_on, previous_expires_at=locked.expires_at,
            users_to_add=additions, reason=reason,
            status=GrantAmendment.Status.SUBMITTED if needs_decision else GrantAmendment.Status.RECORDED,
        )
        removed = sorted(users_to_remove, key=lambda u: u.email)
        for user in removed:
            _remove_user(locked, user)
        amendment.users_removed.set(removed)
        audit_record(
            action="access.amendment_requested", actor=by, target=amendment,
            details={
                "grant": locked.reference,
                "new_expires_on": new_expires_on.isoformat() if new_expires_on else None,
                "users_to_add": sorted(row["email"] for row in additions),
                "users_removed": [u.email for u in removed],
                "reason": reason,
            },
        )
        if removed:
            audit_record(
                action="access.grant_users_removed", actor=by, target=locked,
                details={"amendment": amendment.pk, "users": [u.email for u in removed]},
            )
        if needs_decision:
            _notify(amendment, _("An extension or change of users awaits your decision"), reason, to_stewards=True)
        else:
            _notify(amendment, _("Users were removed from the grant"), ", ".join(u.email for u in removed))
    return amendment


def grant_amendment_decide(*, amendment: GrantAmendment, approve: bool, reasons: str = "", by: User) -> GrantAmendment:
    """Approve or reject an extension or addition of users (a steward or administrator of the society)."""
    grant = amendment.grant
    if not may_decide(by, grant):
        raise PermissionDenied(_("Only a data steward of the society can decide on changes to its grants."))
    reasons = (reasons or "").strip()
    with transaction.atomic():
        locked = GrantAmendment.objects.select_for_update().get(pk=amendment.pk)
        if locked.status != GrantAmendment.Status.SUBMITTED:
            raise ValidationError(_("This request has already been decided."))
        if not approve and not reasons:
            raise ValidationError({"reasons": _("Give the reasons for the rejection.")})
        grant = Grant.objects.select_for_update(of=("self",)).select_related("access_request").get(pk=grant.pk)
        details: dict[str, Any] = {"grant": grant.reference, "reasons": reasons}
        if approve:
            _apply(locked, grant, details)
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked.decision_reasons = reasons
        transition(locked, AMENDMENT, "approve" if approve else "reject",
                   extra_fields=["decided_by", "decided_at", "decision_reasons"])
        audit_record(action="access.amendment_approved" if approve else "access.amendment_rejected",
                     actor=by, target=locked, details=details)
        if approve:
            _notify(locked, _("Your extension or change of users was approved"), reasons)
        else:
            _notify(locked, _("Your extension or change of users was rejected"), reasons)
    amendment.refresh_from_db()
    return amendment


def _apply(amendment: GrantAmendment, grant: Grant, details: dict[str, Any]) -> None:
    """Carry out an approved amendment on the (locked) grant; refuses, changing nothing, when the
    grant is no longer in force or an extension no longer holds."""
    if grant.status not in _LIVE or grant.expires_at <= timezone.now():
        raise ValidationError(_("The grant is no longer in force: the request can only be rejected."))
    request = grant.access_request
    if amendment.new_expires_on:
        problem = _extension_problem(grant, amendment.new_expires_on)
        if problem:
            raise ValidationError({"new_expires_on": problem})
    additions = []
    for row in amendment.users_to_add:
        user = User.objects.filter(pk=row["user"], is_active=True).first()
        if user is None:
            raise ValidationError(_("%(user)s is no longer an active user.") % {"user": row["email"]})
        additions.append((user, row))

    if amendment.new_expires_on:
        old_expiry_day = timezone.localdate(grant.expires_at)
        grant.expires_at = expiry_for(amendment.new_expires_on)
        grant.save(update_fields=["expires_at"])
        if request is not None and (request.period_end is None or request.period_end < amendment.new_expires_on):
            request.period_end = amendment.new_expires_on
            request.save(update_fields=["period_end", "updated_at"])
        new_expiry_day = timezone.localdate(grant.expires_at)
        # The end-of-use report moves to the new end (not yet submitted): one is owed, at the end.
        UsageReport.objects.filter(
            grant=grant, kind=UsageReport.Kind.END_OF_USE, status=UsageReport.Status.DUE,
            period_to=old_expiry_day,
        ).update(period_to=new_expiry_day, due_on=new_expiry_day)
        record = ProvisionRecord.objects.filter(grant=grant).first()
        if record is None:
            provision_record_create(grant=grant)
        else:
            record.provided_until = new_expiry_day
            record.provider_keep_until = add_years(new_expiry_day, PROVIDER_RETENTION_YEARS)
            record.save(update_fields=["provided_until", "provider_keep_until"])
        usage_reports_schedule(grant=grant)
        details["expires_at"] = {"from": amendment.previous_expires_at.isoformat(),
                                 "to": grant.expires_at.isoformat()}
    if additions:
        for user, row in additions:
            grant.users.add(user)
            if request is not None:
                training = date.fromisoformat(row["ethics_training_date"]) if row["ethics_training_date"] else None
                RequestUser.objects.update_or_create(
                    access_request=request, user=user,
                    defaults={"role": row["role"], "ethics_training": bool(row["ethics_training"]),
                              "ethics_training_date": training},
                )
        details["users_added"] = sorted(row["email"] for _user, row in additions)
