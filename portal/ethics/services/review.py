"""The committee's review (opening, comments, votes, conflicts, attendance, the decision), the
answer to its conditions, and the head of the institution's permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ethics import notifications
from portal.ethics.items import ITEMS_BY_KEY
from portal.ethics.models import (
    Attendance,
    CommitteeMembership,
    ConflictDeclaration,
    Decision,
    HeadDecision,
    ItemComment,
    Protocol,
    ProtocolStatus,
    ProtocolVersion,
    Review,
    ReviewAssignment,
    Vote,
)
from portal.ethics.quorum import Attendee, quorum_failures
from portal.ethics.services.common import (
    _audit,
    _locked,
    _membership,
    _require_applicant,
    _require_chair,
    _require_head,
    _require_secretariat,
    latest_version,
    one_year_after,
)
from portal.ethics.tasks import issue_decision_notice_task, issue_permission_notice_task
from portal.ethics.workflow import EthicsRefused, transition

# --- Review --------------------------------------------------------------------------------------


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


# --- Conditions and the head's permission --------------------------------------------------------


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
