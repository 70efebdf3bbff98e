"""The committee's pages: members' inbox and review page, the secretariat's queue, and the chair's
and secretariat's actions on the detail page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.accounts.models import User
from portal.accounts.roles import ETHICS_COMMITTEE_ROLES, roles_for
from portal.ethics import services
from portal.ethics.forms import (
    AttendanceForm,
    CommentForm,
    ConditionsVerifyForm,
    ConflictDeclarationForm,
    DecisionForm,
    ExplanationForm,
    NoncomplianceOpinionForm,
    NotifiedToHeadForm,
    ReasonForm,
    ReviewOpenForm,
    VoteForm,
)
from portal.ethics.models import (
    CommitteeMembership,
    ItemComment,
    Protocol,
    ProtocolItem,
    ProtocolVersion,
    Review,
    Vote,
)
from portal.ethics.permissions import Standing, _review_of, _standing
from portal.ethics.selectors import (
    conditions_answered_protocols,
    open_full_board_reviews,
    periodic_reports_to_acknowledge,
    review_inbox,
    secretariat_committee_ids,
)
from portal.ethics.views.common import S, _attempt, _finish, _item_rows, _title_of_latest_version
from portal.ethics.views.protocol import _detail_action

# --- Chair and secretariat actions on the detail page --------------------------------------------


@require_POST
@login_required
def conditions_verify(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_chair, ConditionsVerifyForm, "verify_form",
        lambda s, data: services.conditions_verify(protocol=s.protocol, by=s.user, **data),
        _("The answer to the conditions was judged."),
    )


@require_POST
@login_required
def protocol_suspend(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_chair or s.is_head, ReasonForm, "suspend_form",
        lambda s, data: services.protocol_suspend(protocol=s.protocol, reason=data["reason"], by=s.user),
        _("The research was suspended."),
    )


@require_POST
@login_required
def protocol_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_chair or s.is_head, forms.Form, "",
        lambda s, data: services.protocol_resume(protocol=s.protocol, by=s.user),
        _("The research was resumed."),
    )


@require_POST
@login_required
def noncompliance_opinion(request: HttpRequest, pk: int, report_pk: int) -> HttpResponse:
    def record(standing: Standing, data: dict[str, Any]) -> object:
        report = get_object_or_404(standing.protocol.noncompliance_reports, pk=report_pk)
        return services.noncompliance_opinion_record(report=report, opinion=data["opinion"], by=standing.user)

    return _detail_action(
        request, pk, lambda s: s.is_chair, NoncomplianceOpinionForm, "noncompliance_opinion_form", record,
        _("The committee's opinion was recorded."),
    )


@require_POST
@login_required
def minor_amendment_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_secretariat, forms.Form, "",
        lambda s, data: services.minor_amendment_acknowledge(protocol=s.protocol, by=s.user),
        _("The minor amendment was acknowledged."),
    )


# --- Committee members: inbox and the review page ------------------------------------------------


@never_cache
@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    if not roles_for(request.user) & ETHICS_COMMITTEE_ROLES:
        raise PermissionDenied
    assignments = review_inbox(request.user).annotate(  # type: ignore[arg-type]
        title=Subquery(
            ProtocolItem.objects.filter(version=OuterRef("review__version"), key="title").values("body")[:1]
        ),
        voted=Exists(
            Vote.objects.filter(review=OuterRef("review"), member=OuterRef("member"))
        ),
    )
    is_secretariat = _secretariat_committees(request.user).exists()  # type: ignore[arg-type]
    return render(request, "ethics/inbox.html", {"assignments": assignments, "is_secretariat": is_secretariat})


def _render_review(request: HttpRequest, standing: Standing, **bound: Any) -> HttpResponse:
    review = _review_of(standing)
    version = review.version
    is_open = version.protocol.status in {S.UNDER_REVIEW, S.AMENDMENT_REVIEW} and not hasattr(review, "decision")
    assignment = review.assignments.filter(member=standing.membership).first() if standing.membership else None
    comments: dict[str, list[ItemComment]] = defaultdict(list)
    for comment in review.comments.select_related("author"):
        comments[comment.item_key].append(comment)
    comment_key = bound.get("comment_key")
    rows = [
        (
            spec, item, comments.get(spec.key, []),
            bound["comment_form"] if comment_key == spec.key else _comment_form(spec.key),
        )
        for spec, item in _item_rows(version)
    ]
    voters = CommitteeMembership.objects.filter(
        committee_id=standing.protocol.committee_id, active=True,
        role__in=[CommitteeMembership.Role.CHAIR, CommitteeMembership.Role.MEMBER],
    ).select_related("user")
    full_board = review.mode == Review.Mode.FULL_BOARD
    attendance_form = None
    if is_open and full_board and standing.is_secretariat:
        attendance_form = bound.get("attendance_form") or AttendanceForm(
            voters=voters, initial={"members": [a.member_id for a in review.attendance.all()]}
        )
    context = {
        "protocol": standing.protocol,
        "standing": standing,
        "review": review,
        "version": version,
        "decision": getattr(review, "decision", None),
        "is_open": is_open,
        "rows": rows,
        "general_comments": comments.get("", []),
        "general_comment_form": bound["comment_form"] if comment_key == "" else _comment_form(""),
        "assignment": assignment,
        "vote_form": (
            (bound.get("vote_form") or VoteForm(initial=_current_vote(review, assignment)))
            if is_open and assignment is not None and not assignment.recused else None
        ),
        "votes": review.votes.select_related("member__user").order_by("member__id"),
        "recusals": review.assignments.filter(recused=True).select_related("member__user"),
        "attendance_form": attendance_form,
        "quorum_problems": services.quorum_problems(review) if full_board else [],
        "decision_form": (bound.get("decision_form") or DecisionForm()) if is_open and standing.is_chair else None,
        "attachments": version.attachments.all(),
        **_review_record_context(standing, review, assignment, is_open, bound),
    }
    return render(request, "ethics/review_detail.html", context)


def _review_record_context(
    standing: Standing, review: Review, assignment: Any, is_open: bool, bound: dict[str, Any]
) -> dict[str, Any]:
    """The review record's a2 fields: members' conflict declarations, the researchers' explanation,
    and the day the opinion reached the head."""
    own = review.conflict_declarations.filter(member=assignment.member).first() if assignment else None
    decision = getattr(review, "decision", None)
    # Declarations are shown to the chair and the secretariat, who run the meeting and keep the record.
    sees_declarations = standing.is_chair or standing.is_secretariat
    return {
        "own_declaration": own,
        "conflict_form": (
            bound.get("conflict_form") or ConflictDeclarationForm(
                initial={"has_conflict": "yes" if own and own.has_conflict else "no",
                         "details": own.details if own else ""})
        ) if is_open and assignment is not None else None,
        "conflict_declarations": (
            review.conflict_declarations.select_related("member__user") if sees_declarations else None
        ),
        "explanation_form": (
            bound.get("explanation_form") or ExplanationForm(initial={"explanation": review.pi_explanation})
        ) if is_open and standing.is_secretariat else None,
        "notified_form": (
            bound.get("notified_form") or NotifiedToHeadForm(initial={"on": decision.notified_to_head_on})
        ) if decision is not None and standing.is_secretariat else None,
    }


def _comment_form(item_key: str, data: Any = None) -> CommentForm:
    # One form per item on the page: each needs its own element ids for its labels.
    return CommentForm(data, initial={"item_key": item_key}, auto_id=f"id_comment_{item_key or 'general'}_%s")


def _current_vote(review: Review, assignment: Any) -> dict[str, str]:
    vote = review.votes.filter(member=assignment.member).first() if assignment else None
    return {"choice": vote.choice, "reason": vote.reason} if vote else {}


def _committee_standing(request: HttpRequest, pk: int, allowed: Callable[[Standing], bool]) -> Standing:
    return _standing(request, pk, lambda s: s.is_member and allowed(s))


@never_cache
@login_required
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_review(request, _committee_standing(request, pk, lambda s: True))


def _review_action(
    request: HttpRequest, standing: Standing, form: forms.Form, form_name: str,
    call: Callable[[Review, dict[str, Any]], object], done: str, **extra: Any,
) -> HttpResponse:
    review = _review_of(standing)
    ok = form.is_valid() and _attempt(request, form, lambda: call(review, form.cleaned_data), done)
    return _finish(form, ok, reverse("ethics:review_detail", args=[standing.protocol.pk]),
                   lambda: _render_review(request, standing, **{form_name: form}, **extra))


@require_POST
@login_required
def review_comment(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: True)
    form = _comment_form(request.POST.get("item_key", ""), request.POST)
    return _review_action(
        request, standing, form, "comment_form",
        lambda review, data: services.comment_add(review=review, by=standing.user, **data),
        _("Your comment was added."), comment_key=request.POST.get("item_key", ""),
    )


@require_POST
@login_required
def review_vote(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: True)
    return _review_action(
        request, standing, VoteForm(request.POST), "vote_form",
        lambda review, data: services.vote_cast(review=review, by=standing.user, **data),
        _("Your vote was recorded."),
    )


@require_POST
@login_required
def review_conflict(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: True)
    return _review_action(
        request, standing, ConflictDeclarationForm(request.POST), "conflict_form",
        lambda review, data: services.conflict_declare(review=review, by=standing.user, **data),
        _("Your declaration of conflicts of interest was recorded."),
    )


@require_POST
@login_required
def review_explanation(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: s.is_secretariat)
    return _review_action(
        request, standing, ExplanationForm(request.POST), "explanation_form",
        lambda review, data: services.review_explanation_record(review=review, by=standing.user, **data),
        _("The researchers' explanation was recorded."),
    )


@require_POST
@login_required
def review_notified_to_head(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: s.is_secretariat)

    def record(review: Review, data: dict[str, Any]) -> object:
        decision = getattr(review, "decision", None)
        if decision is None:
            raise services.EthicsRefused(_("The committee has not given its opinion yet."))
        return services.decision_notified_to_head_set(decision=decision, on=data["on"], by=standing.user)

    return _review_action(
        request, standing, NotifiedToHeadForm(request.POST), "notified_form", record,
        _("The day the opinion reached the head was recorded."),
    )


@require_POST
@login_required
def review_attendance(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: s.is_secretariat)
    voters = CommitteeMembership.objects.filter(
        committee_id=standing.protocol.committee_id, active=True,
        role__in=[CommitteeMembership.Role.CHAIR, CommitteeMembership.Role.MEMBER],
    ).select_related("user")
    return _review_action(
        request, standing, AttendanceForm(request.POST, voters=voters), "attendance_form",
        lambda review, data: services.attendance_record(review=review, members=data["members"], by=standing.user),
        _("The attendance was recorded."),
    )


@require_POST
@login_required
def review_decision(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _committee_standing(request, pk, lambda s: s.is_chair)
    return _review_action(
        request, standing, DecisionForm(request.POST), "decision_form",
        lambda review, data: services.decision_record(review=review, by=standing.user, **data),
        _("The committee's opinion was recorded."),
    )


# --- Secretariat: the queue of submitted protocols -----------------------------------------------


def _secretariat_committees(user: User) -> QuerySet[CommitteeMembership]:
    return secretariat_committee_ids(user)


def _render_queue(request: HttpRequest, bound_pk: int | None = None, **bound: forms.Form) -> HttpResponse:
    committees = _secretariat_committees(request.user)  # type: ignore[arg-type]
    latest = ProtocolVersion.objects.filter(protocol=OuterRef("pk")).order_by("-number")
    latest_number = Subquery(
        ProtocolVersion.objects.filter(protocol=OuterRef(OuterRef("pk"))).order_by("-number").values("number")[:1]
    )
    protocols = (
        Protocol.objects.filter(committee_id__in=committees)
        .alias(
            # An amendment waits here until the secretariat opens its review (or acknowledges it).
            amendment_reviewed=Exists(
                Review.objects.filter(version__protocol=OuterRef("pk"), version__number=latest_number)
            )
        )
        .filter(Q(status=S.SUBMITTED) | Q(status=S.AMENDMENT_REVIEW, amendment_reviewed=False))
        .annotate(
            title=_title_of_latest_version(),
            latest_kind=Subquery(latest.values("kind")[:1]),
            submitted_at=Subquery(latest.values("submitted_at")[:1]),
        )
        .select_related("principal_investigator", "institution")
        .order_by("submitted_at", "id")
    )
    rows = [
        (
            protocol,
            bound.get("open_form") if protocol.pk == bound_pk and "open_form" in bound
            else ReviewOpenForm(prefix=f"open-{protocol.pk}"),
            bound.get("return_form") if protocol.pk == bound_pk and "return_form" in bound
            else ReasonForm(prefix=f"return-{protocol.pk}"),
        )
        for protocol in protocols
    ]
    user: User = request.user  # type: ignore[assignment]
    # Full-board meetings whose attendance is not recorded yet, or does not make the quorum: the
    # same rule the decision is refused by (services.quorum_problems).
    meetings = [
        (review, problems, bool(review.attendance.all()))
        for review in open_full_board_reviews(user)
        if (problems := services.quorum_problems(review))
    ]
    context = {
        "rows": rows,
        "meetings": meetings,
        "conditions_answered": conditions_answered_protocols(user),
        "periodic_reports": periodic_reports_to_acknowledge(user),
    }
    return render(request, "ethics/secretariat_queue.html", context)


@never_cache
@login_required
def secretariat_queue(request: HttpRequest) -> HttpResponse:
    if not _secretariat_committees(request.user).exists():  # type: ignore[arg-type]
        raise PermissionDenied
    return _render_queue(request)


def _queue_action(
    request: HttpRequest, pk: int, form: forms.Form, form_name: str,
    call: Callable[[Standing, dict[str, Any]], object], done: str,
) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_secretariat)
    ok = form.is_valid() and _attempt(request, form, lambda: call(standing, form.cleaned_data), done)
    return _finish(form, ok, reverse("ethics:secretariat_queue"),
                   lambda: _render_queue(request, bound_pk=pk, **{form_name: form}))


@require_POST
@login_required
def review_open(request: HttpRequest, pk: int) -> HttpResponse:
    return _queue_action(
        request, pk, ReviewOpenForm(request.POST, prefix=f"open-{pk}"), "open_form",
        lambda s, data: services.review_open(protocol=s.protocol, by=s.user, **data),
        _("The protocol was accepted for review and assigned to the members."),
    )


@require_POST
@login_required
def protocol_return(request: HttpRequest, pk: int) -> HttpResponse:
    return _queue_action(
        request, pk, ReasonForm(request.POST, prefix=f"return-{pk}"), "return_form",
        lambda s, data: services.protocol_return_for_completion(protocol=s.protocol, reason=data["reason"], by=s.user),
        _("The protocol was returned to the applicant."),
    )
