"""The data-access application workflow (データ利用申請 → 審査 → 契約 → 付与), one service per step.

Every service is keyword-only, ends in ``by``, and inside one transaction: checks who may act,
locks the application, validates, moves it along ``portal.access.workflow`` (which refuses any
edge not in its table, naming the current and wanted states), saves, writes an ``access.*`` audit
event and queues e-mail for after the commit. A refusal raises ``AccessRefused`` (or its subclass
``TransitionNotAllowed``) or ``ValidationError`` and changes nothing.

Rules decided here (documented for reviewers):

- Societies: each society whose data (an AVAILABLE release of a PUBLISHED dataset) is requested
  gets one ``SocietyReview`` on submission. Its steward screens (pass to its committee) or returns
  the whole application; a returned application, once resubmitted, is screened again by every
  society (it may have changed), and the votes of the earlier round are discarded (the audit trail
  keeps them).
- Committee: a member of the society's data access committee is recused — may neither vote nor
  decide — when they are the applicant, principal investigator, signatory or a named user, or
  belong to the applicant organisation. A member may change their vote until the decision. The
  decision (approved / approved with conditions / rejected) is recorded by a non-recused member
  once at least ``QUORUM`` (2) votes of non-recused members exist, abstentions included; conditions
  are required with a conditional approval and reasons with a rejection.
- The application is approved when every society has decided and at least one approved; rejected
  when all rejected. Only approving societies' agreements are signed and countersigned, and only
  they grant.
- Joint-research details (number, parties, date) are required for the legal bases joint use and
  joint use of pseudonymised information, and for the academic-research exemption whenever the
  purpose is product development or the applicant organisation is a company (REGULATION.md §0.3:
  the academic exemption works for a company only inside joint research). Outsourcing (委託) can
  never carry product development (the company would use the data for its own purposes).
- The period may last at most three years (``MAX_PERIOD_DAYS``).
- Withdrawal by the applicant is possible until the first grant starts; closing (after the
  end-of-use report) and revocation move the application only once no grant of it is left in
  force.

The steps live in sibling modules, re-exported here so ``portal.access.services.requests`` stays
the one name to import: ``request_common`` (constants and helpers), ``request_checks``
(``access_request_missing``), ``request_reviews`` (submission, screening, committee) and
``request_signing`` (withdrawal, signature, countersignature, after the grant). Drafting is here.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.access.models import (
    AccessRequest,
    RequestStatus,
    RequestUser,
    SecurityAnswer,
    SecurityLevel,
)
from portal.access.security_items import ITEMS_BY_KEY
from portal.access.services.request_checks import access_request_missing
from portal.access.services.request_common import (
    EXPECTED_OUTPUTS,
    JOINT_RESEARCH_BASES,
    MAX_PERIOD_DAYS,
    QUORUM,
    UPDATABLE_FIELDS,
    _is_applicant,
    _lock,
    _user_is_member,
    clean_researcher_number,
)
from portal.access.services.request_reviews import (  # noqa: F401
    access_request_decide,
    access_request_return,
    access_request_screen,
    access_request_submit,
    access_request_vote,
    counted_votes,
)
from portal.access.services.request_signing import (  # noqa: F401
    access_request_close,
    access_request_comment,
    access_request_countersign,
    access_request_revoke,
    access_request_sign,
    access_request_withdraw,
    approving_societies,
)
from portal.access.workflow import AccessRefused, TransitionNotAllowed
from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease

__all__ = [
    "EXPECTED_OUTPUTS",
    "JOINT_RESEARCH_BASES",
    "MAX_PERIOD_DAYS",
    "QUORUM",
    "AccessRefused",
    "TransitionNotAllowed",
    "access_request_close",
    "access_request_comment",
    "access_request_countersign",
    "access_request_create",
    "access_request_decide",
    "access_request_missing",
    "access_request_return",
    "access_request_revoke",
    "access_request_screen",
    "access_request_sign",
    "access_request_submit",
    "access_request_update",
    "access_request_vote",
    "access_request_withdraw",
]


def access_request_create(*, by: User, organization: Any, title: str, **fields: Any) -> AccessRequest:
    """Start a draft application for ``organization`` (the applicant must belong to it)."""
    if not _user_is_member(by, organization.pk):
        raise AccessRefused(_("You can apply only for an organisation you belong to."))
    if not (title or "").strip():
        raise ValidationError({"title": _("Give the research title.")})
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValidationError(_("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown))})
    fields.setdefault("principal_investigator", by)
    with transaction.atomic():
        access_request = AccessRequest.objects.create(
            applicant=by, organization=organization, title=title.strip(), **fields
        )
        audit_record(action="access.request_created", actor=by, target=access_request,
                     details={"title": access_request.title, "organization": organization.pk})
    return access_request


def _refuse_unknown(fields: Mapping[str, Any], security_answers: Mapping[str, Any] | None) -> None:
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValidationError(_("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown))})
    if security_answers is not None:
        bad = sorted(set(security_answers) - set(ITEMS_BY_KEY))
        if bad:
            raise ValidationError({"security_answers": _("Unknown self-assessment items: %(keys)s")
                                   % {"keys": ", ".join(bad)}})


def _require_editable(by: User, locked: AccessRequest) -> None:
    if not _is_applicant(by, locked):
        raise AccessRefused(_("Only the applicant can change the application."))
    if locked.status not in (RequestStatus.DRAFT, RequestStatus.RETURNED):
        raise TransitionNotAllowed(
            _("This cannot be done while the application is “%(current)s”; it must be %(allowed)s.")
            % {"current": RequestStatus(locked.status).label,
               "allowed": f"{RequestStatus.DRAFT.label}, {RequestStatus.RETURNED.label}"},
            current=locked.status, wanted=(RequestStatus.DRAFT, RequestStatus.RETURNED),
        )


def _clean_fields(by: User, locked: AccessRequest, fields: dict[str, Any]) -> None:
    """Check the changed fields that have a rule of their own (cleaning the researcher number in place)."""
    if "organization" in fields and not _user_is_member(by, fields["organization"].pk):
        raise AccessRefused(_("You can apply only for an organisation you belong to."))
    if "title" in fields and not (fields["title"] or "").strip():
        raise ValidationError({"title": _("Give the research title.")})
    if "pi_researcher_number" in fields or "pi_researcher_number_kind" in fields:
        kind = fields.get("pi_researcher_number_kind", locked.pi_researcher_number_kind)
        number = fields.get("pi_researcher_number", locked.pi_researcher_number)
        fields["pi_researcher_number"] = clean_researcher_number(kind, number) if number else ""
    if fields.get("security_level") and fields["security_level"] not in SecurityLevel.values:
        raise ValidationError({"security_level": _("Choose the security level (Type I or Type II).")})


def _set_named_users(locked: AccessRequest, named_users: Iterable[Mapping[str, Any]]) -> None:
    locked.named_users.all().delete()
    seen: set[int] = set()
    for row in named_users:
        user = row["user"]
        if user.pk in seen:
            raise ValidationError({"named_users": _("%(user)s is named twice.") % {"user": user}})
        seen.add(user.pk)
        RequestUser.objects.create(
            access_request=locked, user=user, role=row.get("role") or RequestUser.Role.CO_INVESTIGATOR,
            ethics_training=bool(row.get("ethics_training")),
            ethics_training_date=row.get("ethics_training_date"),
        )


def _set_security_answers(locked: AccessRequest, security_answers: Mapping[str, Mapping[str, str]]) -> None:
    for key, answer in security_answers.items():
        status = answer.get("status") or ""
        if not status:
            SecurityAnswer.objects.filter(access_request=locked, item=key).delete()
            continue
        if status not in SecurityAnswer.Status.values:
            raise ValidationError({"security_answers": _("Unknown status: %(status)s") % {"status": status}})
        SecurityAnswer.objects.update_or_create(
            access_request=locked, item=key,
            defaults={"status": status, "evidence": answer.get("evidence", ""),
                      "comment": answer.get("comment", "")},
        )


def access_request_update(
    *,
    access_request: AccessRequest,
    by: User,
    releases: Iterable[DatasetRelease] | None = None,
    named_users: Iterable[Mapping[str, Any]] | None = None,
    security_answers: Mapping[str, Mapping[str, str]] | None = None,
    **fields: Any,
) -> AccessRequest:
    """Change a draft or returned application (the applicant only). Incomplete answers are allowed
    here; ``access_request_submit`` names what is missing."""
    _refuse_unknown(fields, security_answers)
    with transaction.atomic():
        locked = _lock(access_request)
        _require_editable(by, locked)
        _clean_fields(by, locked, fields)
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
        changed = sorted(fields)
        if releases is not None:
            locked.releases.set(list(releases))
            changed.append("releases")
        if named_users is not None:
            _set_named_users(locked, named_users)
            changed.append("named_users")
        if security_answers is not None:
            _set_security_answers(locked, security_answers)
            changed.append("security_answers")
        audit_record(action="access.request_updated", actor=by, target=locked, details={"changed": changed})
    access_request.refresh_from_db()
    return access_request


