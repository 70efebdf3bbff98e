"""A named user's research-ethics training, renewed: its new date is recorded on the grant.

Training holds ``PORTAL_ETHICS_TRAINING_VALID_DAYS`` from its date (``selectors.training_lapses_on``);
once it lapses only that user gets no download links, until the user, or the applicant or principal
investigator for their team, records the date of the renewed training here. The new date moves the
lapse date, so the warnings before it (``services.warnings``) start a new series.
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access.models import Grant, RequestUser
from portal.access.notifications import notify_grant_stewards
from portal.accounts.models import User
from portal.audit.services import audit_record

_LIVE = (Grant.Status.ACTIVE, Grant.Status.PAUSED)


def may_renew_training(by: User | object, grant: Grant, user: User) -> bool:
    """The named user themself, or the applicant or principal investigator of the grant's application."""
    request = grant.access_request
    return bool(
        getattr(by, "is_authenticated", False) and request is not None
        and by.pk in {user.pk, request.applicant_id, request.principal_investigator_id}  # type: ignore[union-attr]
    )


def request_user_training_renew(*, grant: Grant, user: User, training_date: date, by: User) -> RequestUser:
    """Record the date of ``user``'s renewed research-ethics training for the grant's application."""
    if not may_renew_training(by, grant, user):
        raise PermissionDenied(_("Only the named user, or the applicant or principal investigator, can record "
                                 "a renewed training."))
    if grant.status not in _LIVE:
        raise ValidationError(_("The grant is no longer in force."))
    if training_date > timezone.localdate():
        raise ValidationError({"training_date": _("The training date cannot be in the future.")})
    with transaction.atomic():
        # Lock the row so two renewals at once compare against the date the other one saved.
        named = (RequestUser.objects.select_for_update()
                 .filter(access_request_id=grant.access_request_id, user_id=user.pk).first())
        if named is None or not grant.users.filter(pk=user.pk).exists():
            raise ValidationError(_("%(email)s is not a named user of this grant.") % {"email": user.email})
        previous = named.ethics_training_date
        if previous is not None and training_date < previous:
            raise ValidationError({"training_date": _(
                "The renewed training date cannot be earlier than the one recorded (%(date)s).")
                % {"date": previous.isoformat()}})
        named.ethics_training = True
        named.ethics_training_date = training_date
        named.save(update_fields=["ethics_training", "ethics_training_date"])
        audit_record(
            action="access.training_renewed", actor=by, target=grant,
            details={"user": user.pk, "email": user.email, "previous": previous.isoformat() if previous else None,
                     "training_date": training_date.isoformat()},
        )
        notify_grant_stewards(
            grant,
            _("Renewed research-ethics training recorded for %(email)s (grant %(grant)s)") % {
                "email": user.email, "grant": grant.reference},
            _("Training date: %(date)s (recorded by %(by)s).") % {"date": training_date.isoformat(),
                                                                  "by": by.email},
        )
    return named
