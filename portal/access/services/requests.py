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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from portal.access import notifications
from portal.access.models import (
    AccessRequest,
    CommitteeVote,
    Environment,
    Grant,
    LegalBasis,
    Purpose,
    RequestComment,
    RequestStatus,
    RequestUser,
    ResearcherNumberKind,
    SecurityAnswer,
    SecurityLevel,
    SocietyReview,
)
from portal.access.request_selectors import recusal_reason, request_standing
from portal.access.security_items import ITEMS_BY_KEY, SECURITY_ITEMS, items_missing_for_level
from portal.access.services import grants
from portal.access.workflow import (
    APPROVING,
    DECIDED,
    AccessRefused,
    TransitionNotAllowed,
    request_target,
    review_target,
    transition_request,
    transition_review,
)
from portal.accounts.models import OrganizationMembership, User
from portal.accounts.roles import Role, has_role
from portal.agreements.models import SignedAgreement
from portal.agreements.services import agreement_countersign, agreement_sign
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease, DatasetStatus
from portal.ethics.selectors import protocol_data_flow
from portal.lib.numbering import next_reference
from portal.societies.models import Society, SocietyMembership

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

QUORUM = 2
MAX_PERIOD_DAYS = 3 * 365 + 1  # three years, a leap day included
EXPECTED_OUTPUTS = ("paper", "ai_model", "samd", "other")
JOINT_RESEARCH_BASES = frozenset({LegalBasis.JOINT_USE, LegalBasis.PSEUDONYMISED_JOINT_USE})
LIVE_GRANT_STATES = (Grant.Status.ACTIVE, Grant.Status.PAUSED)
_ATTEMPTS = 5

UPDATABLE_FIELDS = frozenset({
    "organization", "principal_investigator", "signatory", "title", "summary", "purpose", "expected_outputs",
    "legal_basis", "joint_research_number", "joint_research_parties", "joint_research_date", "ethics_protocol",
    "ethics_committee_name", "ethics_approval_number", "ethics_approval_date", "ethics_approval_file",
    "wants_linkage", "processing_level", "environment", "foreign_access", "foreign_country", "period_start",
    "period_end", "pi_title", "pi_researcher_number_kind", "pi_researcher_number", "pi_research_record",
    "head_name", "head_title", "head_email", "security_level",
})
ERAD_RE = re.compile(r"^\d{8}$")
RESEARCHMAP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")
_RESEARCHMAP_PREFIXES = ("https://researchmap.jp/", "http://researchmap.jp/", "researchmap.jp/")
M = SocietyMembership.Role
V = SocietyReview.Status


# --- helpers -------------------------------------------------------------------------------------


def _lock(access_request: AccessRequest) -> AccessRequest:
    return AccessRequest.objects.select_for_update().get(pk=access_request.pk)


def _is_applicant(user: User, r: AccessRequest) -> bool:
    return user.pk in {r.applicant_id, r.principal_investigator_id}


def _holds(user: User, society: Society, *roles: str) -> bool:
    return SocietyMembership.objects.filter(user=user, society=society, role__in=roles).exists()


def _review(access_request: AccessRequest, society: Society) -> SocietyReview:
    review = SocietyReview.objects.select_for_update().filter(access_request=access_request, society=society).first()
    if review is None:
        raise AccessRefused(_("This application does not request data of %(society)s.") % {"society": society})
    return review


def _next_reference(year: int) -> str:
    return next_reference(AccessRequest, f"DAR-{year}-", digits=5)


def _requested_societies(access_request: AccessRequest) -> list[Society]:
    ids = access_request.releases.values_list("dataset__society_id", flat=True).distinct()
    return list(Society.objects.filter(pk__in=ids).order_by("pk"))


def clean_researcher_number(kind: str, number: str) -> str:
    """The PI's researcher number as stored: an e-Rad researcher number has 8 digits; a researchmap
    ID (or its researchmap.jp address) is letters, digits, ``_ . -``. Raises ValidationError."""
    number = (number or "").strip()
    if not number:
        return ""
    if kind == ResearcherNumberKind.ERAD:
        number = number.replace("-", "").replace(" ", "")
        if not ERAD_RE.match(number):
            raise ValidationError({"pi_researcher_number": _(
                "An e-Rad researcher number has 8 digits (for example 12345678).")})
        return number
    if kind == ResearcherNumberKind.RESEARCHMAP:
        for prefix in _RESEARCHMAP_PREFIXES:
            if number.lower().startswith(prefix):
                number = number[len(prefix):].strip("/")
        if not RESEARCHMAP_RE.match(number):
            raise ValidationError({"pi_researcher_number": _(
                "A researchmap ID is 3 to 64 letters, digits, “_”, “.” or “-” (for example read0123456).")})
        return number
    raise ValidationError({"pi_researcher_number_kind": _("Choose the kind of researcher number (e-Rad or researchmap).")})


def _user_is_member(user: User | None, organization_id: int | None) -> bool:
    return bool(user) and OrganizationMembership.objects.filter(user=user, organization_id=organization_id).exists()


# --- drafting ------------------------------------------------------------------------------------


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
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise ValidationError(_("Unknown fields: %(names)s") % {"names": ", ".join(sorted(unknown))})
    if security_answers is not None:
        bad = sorted(set(security_answers) - set(ITEMS_BY_KEY))
        if bad:
            raise ValidationError({"security_answers": _("Unknown self-assessment items: %(keys)s")
                                   % {"keys": ", ".join(bad)}})
    with transaction.atomic():
        locked = _lock(access_request)
        if not _is_applicant(by, locked):
            raise AccessRefused(_("Only the applicant can change the application."))
        if locked.status not in (RequestStatus.DRAFT, RequestStatus.RETURNED):
            raise TransitionNotAllowed(
                _("This cannot be done while the application is “%(current)s”; it must be %(allowed)s.")
                % {"current": RequestStatus(locked.status).label,
                   "allowed": f"{RequestStatus.DRAFT.label}, {RequestStatus.RETURNED.label}"},
                current=locked.status, wanted=(RequestStatus.DRAFT, RequestStatus.RETURNED),
            )
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
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save()
        changed = sorted(fields)
        if releases is not None:
            locked.releases.set(list(releases))
            changed.append("releases")
        if named_users is not None:
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
            changed.append("named_users")
        if security_answers is not None:
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
            changed.append("security_answers")
        audit_record(action="access.request_updated", actor=by, target=locked, details={"changed": changed})
    access_request.refresh_from_db()
    return access_request


def access_request_missing(access_request: AccessRequest, *, today=None) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every required answer still missing, by field; empty when the application can be submitted."""
    r = access_request
    today = today or timezone.localdate()
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    # Applicant and team
    if not r.organization_id:
        add("organization", _("Name the applicant organisation."))
    if not r.principal_investigator_id:
        add("principal_investigator", _("Name the principal investigator."))
    if not r.signatory_id:
        add("signatory", _("Name the authorised signatory of the organisation."))
    elif not _user_is_member(r.signatory, r.organization_id):
        add("signatory", _("The authorised signatory must belong to the applicant organisation."))
    if not r.pi_title.strip():
        add("pi_title", _("Give the principal investigator's title."))
    if not r.pi_researcher_number:
        add("pi_researcher_number", _("Give the principal investigator's e-Rad researcher number or researchmap ID."))
    else:
        try:
            clean_researcher_number(r.pi_researcher_number_kind, r.pi_researcher_number)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                for message in messages:
                    add(name, message)
    if not r.pi_research_record.strip():
        add("pi_research_record", _("Give the principal investigator's research record (related papers)."))
    head_missing = [label for value, label in (
        (r.head_name, pgettext("head of institution", "name")),
        (r.head_title, pgettext("head of institution", "title")),
        (r.head_email, pgettext("head of institution", "e-mail")),
    ) if not value.strip()]
    if head_missing:
        add("head", _("Give the head of the applicant's institution: %(missing)s.")
            % {"missing": ", ".join(str(m) for m in head_missing)})
    named = list(r.named_users.select_related("user"))
    if not named:
        add("named_users", _("Name at least one user of the data."))
    for row in named:
        if row.ethics_training and not row.ethics_training_date:
            add("named_users", _("Give the date of the research-ethics training of %(user)s.") % {"user": row.user})
    # Purpose and legal basis
    if not r.title.strip():
        add("title", _("Give the research title."))
    if not r.purpose:
        add("purpose", _("Choose the purpose of use."))
    outputs = [o for o in (r.expected_outputs or []) if o in EXPECTED_OUTPUTS]
    if not outputs:
        add("expected_outputs", _("Choose at least one expected output."))
    if not r.legal_basis:
        add("legal_basis", _("Choose the legal basis for the provision."))
    joint_needed = r.legal_basis in JOINT_RESEARCH_BASES or (
        r.legal_basis == LegalBasis.ACADEMIC_EXEMPTION
        and (r.purpose == Purpose.PRODUCT_DEVELOPMENT or r.organization.kind == "company")
    )
    if joint_needed:
        missing = [label for value, label in (
            (r.joint_research_number, _("number")), (r.joint_research_parties, _("parties")),
            (r.joint_research_date, _("date")),
        ) if not value]
        if missing:
            if r.legal_basis == LegalBasis.ACADEMIC_EXEMPTION and r.purpose == Purpose.PRODUCT_DEVELOPMENT:
                add("legal_basis", _("Product development cannot rest on the academic-research exemption alone: "
                                     "give the joint-research agreement (%(missing)s).")
                    % {"missing": ", ".join(str(m) for m in missing)})
            else:
                add("joint_research", _("Give the joint-research agreement's %(missing)s for this legal basis.")
                    % {"missing": ", ".join(str(m) for m in missing)})
    if r.legal_basis == LegalBasis.OUTSOURCING and r.purpose == Purpose.PRODUCT_DEVELOPMENT:
        add("legal_basis", _("Outsourcing cannot carry product development for the company's own purposes; "
                             "choose another legal basis."))
    # Ethics approval
    if r.ethics_protocol_id:
        flow = protocol_data_flow(r.ethics_protocol)
        if not flow.allowed:
            add("ethics_protocol", _("The ethics approval in the portal does not allow use now: %(reason)s")
                % {"reason": flow.reason})
    else:
        missing = [label for value, label in (
            (r.ethics_approval_file, _("the approval notice (PDF)")),
            (r.ethics_committee_name, _("the committee's name")),
            (r.ethics_approval_number, _("the approval number")),
            (r.ethics_approval_date, _("the approval date")),
        ) if not value]
        if missing:
            add("ethics_approval", _("Choose an ethics approval in the portal or give %(missing)s.")
                % {"missing": ", ".join(str(m) for m in missing)})
    # Data requested
    releases = list(r.releases.select_related("dataset"))
    if not releases:
        add("releases", _("Choose at least one release of a dataset."))
    for release in releases:
        if release.status != DatasetRelease.Status.AVAILABLE or release.dataset.status != DatasetStatus.PUBLISHED:
            add("releases", _("%(release)s cannot be requested: it is not available in the catalogue.")
                % {"release": release})
    if not r.processing_level:
        add("processing_level", _("Choose the required processing level."))
    # Environment and security
    if not r.environment:
        add("environment", _("Choose the environment in which the data will be used."))
    if r.foreign_access and not r.foreign_country.strip():
        add("foreign_country", _("Name the country from which the data will be accessed."))
    answers = {a.item: a for a in r.security_answers.all()}
    if not r.security_level:
        add("security_level", _("Choose the security level you claim (Type I or Type II)."))
    else:
        short = items_missing_for_level(r.security_level, {key: a.status for key, a in answers.items()},
                                        external_server=r.environment == Environment.EXTERNAL_SERVER)
        if short:
            add("security_level", _("%(level)s needs these self-assessment items in place: %(items)s.")
                % {"level": SecurityLevel(r.security_level).label, "items": "、".join(i.label_ja for i in short)})
    for item in SECURITY_ITEMS:
        answer = answers.get(item.key)
        if answer is None:
            add("security_answers", _("Answer the self-assessment item “%(item)s”.") % {"item": item.label_ja})
        elif answer.status != SecurityAnswer.Status.NOT_APPLICABLE and not answer.evidence.strip():
            add("security_answers", _("Give the evidence for the self-assessment item “%(item)s”.")
                % {"item": item.label_ja})
    # Period
    if not r.period_start or not r.period_end:
        add("period", _("Give the period of use (from and to)."))
    elif r.period_end <= r.period_start:
        add("period", _("The period must end after it starts."))
    elif (r.period_end - r.period_start).days > MAX_PERIOD_DAYS:
        add("period", _("The period of use may last at most three years."))
    return problems


# --- submission and screening --------------------------------------------------------------------


def access_request_submit(*, access_request: AccessRequest, by: User) -> AccessRequest:
    """Submit (or resubmit) the application: one review per society whose data it requests."""
    for attempt in range(_ATTEMPTS):
        try:
            with transaction.atomic():
                locked = _lock(access_request)
                if not _is_applicant(by, locked):
                    raise AccessRefused(_("Only the applicant can submit the application."))
                source = locked.status
                request_target("submit", source)
                problems = access_request_missing(locked)
                if problems:
                    raise ValidationError(problems)
                societies = _requested_societies(locked)
                existing = {r.society_id: r for r in SocietyReview.objects.select_for_update().filter(
                    access_request=locked)}
                wanted_ids = {s.pk for s in societies}
                for society_id, review in existing.items():
                    if society_id not in wanted_ids:
                        review.delete()
                        continue
                    transition_review(review, "rescreen")
                    review.votes.all().delete()
                    review.screened_by = review.decided_by = None
                    review.screened_at = review.decided_at = None
                    review.conditions = review.decision_reasons = ""
                    review.save()
                for society in societies:
                    if society.pk not in existing:
                        SocietyReview.objects.create(access_request=locked, society=society)
                if not locked.reference:
                    locked.reference = _next_reference(timezone.localdate().year)
                locked.submitted_at = timezone.now()
                locked.decided_at = None
                locked.save(update_fields=["reference", "submitted_at", "decided_at", "updated_at"])
                transition_request(locked, "submit")
                audit_record(action="access.request_submitted", actor=by, target=locked, details={
                    "from": source, "reference": locked.reference, "societies": sorted(wanted_ids),
                })
                for society in societies:
                    notifications.notify_stewards(locked, society, _("A data-access application awaits screening"))
            access_request.refresh_from_db()
            return access_request
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _require_steward(by: User, society: Society) -> None:
    if not _holds(by, society, M.STEWARD, M.ADMIN):
        raise AccessRefused(_("Only a data steward of %(society)s can do this.") % {"society": society})


def access_request_screen(*, access_request: AccessRequest, society: Society, by: User,
                          comment: str = "") -> SocietyReview:
    """The society's steward passes the application to its data access committee."""
    with transaction.atomic():
        locked = _lock(access_request)
        _require_steward(by, society)
        request_target("to_committee", locked.status)  # only while the application is submitted
        review = _review(locked, society)
        # Who screened it is saved first: the database refuses a review in committee without it.
        review.screened_by = by
        review.screened_at = timezone.now()
        review.save(update_fields=["screened_by", "screened_at"])
        transition_review(review, "screen")
        if comment.strip():
            RequestComment.objects.create(access_request=locked, society=society, author=by,
                                          audience=RequestComment.Audience.REVIEWERS, body=comment.strip())
        audit_record(action="access.request_screened", actor=by, target=locked, details={"society": society.pk})
        if not locked.society_reviews.filter(status=V.SCREENING).exists():
            transition_request(locked, "to_committee")
        notifications.notify_committee(locked, society, _("A data-access application awaits your review"))
    access_request.refresh_from_db()
    return review


def access_request_return(*, access_request: AccessRequest, society: Society, reason: str, by: User) -> AccessRequest:
    """The society's steward sends the whole application back to the applicant for changes."""
    with transaction.atomic():
        locked = _lock(access_request)
        _require_steward(by, society)
        if not (reason or "").strip():
            raise ValidationError({"reason": _("Say what the applicant must change.")})
        request_target("return", locked.status)
        review = _review(locked, society)
        transition_review(review, "return")
        transition_request(locked, "return")
        RequestComment.objects.create(access_request=locked, society=society, author=by,
                                      audience=RequestComment.Audience.APPLICANT, body=reason.strip())
        audit_record(action="access.request_returned", actor=by, target=locked,
                     details={"society": society.pk, "reason": reason.strip()})
        notifications.notify_applicant(locked, _("Your data-access application was returned for changes"),
                                       reason.strip())
    access_request.refresh_from_db()
    return access_request


# --- committee -----------------------------------------------------------------------------------


def _require_committee_member(by: User, society: Society, access_request: AccessRequest) -> None:
    if not _holds(by, society, M.ACCESS_COMMITTEE):
        raise AccessRefused(_("Only a member of the data access committee of %(society)s can do this.")
                            % {"society": society})
    reason = recusal_reason(by, access_request)
    if reason:
        raise AccessRefused(_("You are recused from this application: %(reason)s") % {"reason": reason})


def access_request_vote(*, access_request: AccessRequest, society: Society, vote: str, by: User,
                        comment: str = "") -> CommitteeVote:
    """Record (or change) a committee member's vote on their society's review."""
    if vote not in CommitteeVote.Vote.values:
        raise ValidationError({"vote": _("Choose a vote.")})
    with transaction.atomic():
        locked = _lock(access_request)
        _require_committee_member(by, society, locked)
        review = _review(locked, society)
        review_target("vote", review.status)
        if vote == CommitteeVote.Vote.APPROVE_WITH_CONDITIONS and not comment.strip():
            raise ValidationError({"comment": _("Say which conditions you would set.")})
        cast, _created = CommitteeVote.objects.update_or_create(
            review=review, member=by, defaults={"vote": vote, "comment": comment.strip()}
        )
        audit_record(action="access.request_voted", actor=by, target=locked,
                     details={"society": society.pk, "vote": vote})
    return cast


def counted_votes(review: SocietyReview) -> list[CommitteeVote]:
    """The votes that count toward the quorum: members still on the committee and not recused."""
    members = set(SocietyMembership.objects.filter(
        society_id=review.society_id, role=M.ACCESS_COMMITTEE).values_list("user_id", flat=True))
    return [
        v for v in review.votes.select_related("member")
        if v.member_id in members and not recusal_reason(v.member, review.access_request)
    ]


_OUTCOME_ACTIONS = {
    V.APPROVED: "decide_approved",
    V.APPROVED_WITH_CONDITIONS: "decide_conditions",
    V.REJECTED: "decide_rejected",
}


def access_request_decide(*, access_request: AccessRequest, society: Society, outcome: str, by: User,
                          conditions: str = "", reasons: str = "") -> SocietyReview:
    """Record the society committee's decision, once ``QUORUM`` non-recused votes exist."""
    if outcome not in _OUTCOME_ACTIONS:
        raise ValidationError({"outcome": _("Choose the decision.")})
    if outcome == V.APPROVED_WITH_CONDITIONS and not conditions.strip():
        raise ValidationError({"conditions": _("State the conditions of the approval.")})
    if outcome == V.REJECTED and not reasons.strip():
        raise ValidationError({"reasons": _("State the reasons for the rejection.")})
    with transaction.atomic():
        locked = _lock(access_request)
        _require_committee_member(by, society, locked)
        review = _review(locked, society)
        source = review.status
        review_target(_OUTCOME_ACTIONS[outcome], source)
        votes = counted_votes(review)
        if len(votes) < QUORUM:
            raise AccessRefused(
                _("A decision needs at least %(quorum)d votes of members who are not recused; %(count)d so far.")
                % {"quorum": QUORUM, "count": len(votes)}
            )
        # The decision is saved first: the database refuses a decided review without it.
        review.conditions = conditions.strip()
        review.decision_reasons = reasons.strip()
        review.decided_by = by
        review.decided_at = timezone.now()
        review.save(update_fields=["conditions", "decision_reasons", "decided_by", "decided_at"])
        transition_review(review, _OUTCOME_ACTIONS[outcome])
        audit_record(action="access.request_decided", actor=by, target=locked, details={
            "society": society.pk, "outcome": outcome, "votes": sorted((v.member_id, v.vote) for v in votes),
        })
        statuses = list(locked.society_reviews.values_list("status", flat=True))
        if all(s in DECIDED for s in statuses):
            action = "approve" if any(s in APPROVING for s in statuses) else "reject"
            transition_request(locked, action)
            locked.decided_at = timezone.now()
            locked.save(update_fields=["decided_at", "updated_at"])
            audit_record(action=f"access.request_{'approved' if action == 'approve' else 'rejected'}", actor=by,
                         target=locked, details={"reviews": statuses})
            notifications.notify_applicant(locked, _("A decision was made on your data-access application"))
            if action == "approve":
                notifications.notify_signatory(locked, _("A data-access agreement awaits your signature"))
    access_request.refresh_from_db()
    return review


# --- withdrawal, signature, countersignature -----------------------------------------------------


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


# --- after the grant -----------------------------------------------------------------------------


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


def expected_period_end(start):  # type: ignore[no-untyped-def]
    return start + timedelta(days=MAX_PERIOD_DAYS)
