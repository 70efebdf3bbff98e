"""Submitting an application, the stewards' screening and the committees' votes and decisions."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.access import notifications
from portal.access.models import AccessRequest, CommitteeVote, RequestComment, SocietyReview
from portal.access.request_selectors import recusal_reason
from portal.access.services.request_checks import access_request_missing
from portal.access.services.request_common import (
    _ATTEMPTS,
    QUORUM,
    M,
    V,
    _holds,
    _is_applicant,
    _lock,
    _next_reference,
    _requested_societies,
    _require_steward,
    _review,
)
from portal.access.workflow import (
    APPROVING,
    DECIDED,
    AccessRefused,
    request_target,
    review_target,
    transition_request,
    transition_review,
)
from portal.accounts.models import User
from portal.audit.services import audit_record
from portal.societies.models import Society, SocietyMembership


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


