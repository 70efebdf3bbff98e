"""Data-access applications in the browser: applicants, stewards, committee members, society admins.

Each view parses a form and calls one service of ``portal.access.services.requests``; the services
decide who may act in which state, a refusal is shown as a message and changes nothing, bad input
is shown next to the fields. Applications are fetched through ``requests_visible_to`` so that
people who may not see one get 404; people who see it but lack the role a page needs get 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_POST

from portal.access.amendment_selectors import amendments_awaiting_decision
from portal.access.models import AccessRequest, CommitteeVote, RequestStatus, SocietyReview
from portal.access.request_forms import (
    CommentForm,
    CountersignForm,
    DecisionForm,
    ReasonForm,
    RequestCreateForm,
    RequestForm,
    ScreenForm,
    SignForm,
    VoteForm,
    add_service_errors,
)
from portal.access.request_selectors import (
    NEXT_STEPS,
    Standing,
    committee_inbox,
    countersign_queue,
    my_requests,
    request_standing,
    requests_visible_to,
    visible_comments,
)
from portal.access.request_selectors import (
    steward_queue as steward_queue_for,
)
from portal.access.security_items import ITEMS_BY_KEY
from portal.access.services import requests as services
from portal.access.workflow import APPROVING, REQUEST, AccessRefused
from portal.agreements.selectors import current_version_for, terms_conflicts, terms_side_by_side
from portal.lib.client_ip import client_ip
from portal.societies.models import Society, SocietyMembership

NEXT_STEP_LABELS = {
    "complete_and_submit": gettext_lazy("Complete the application and submit it"),
    "edit_and_resubmit": gettext_lazy("Make the changes asked for and submit again"),
    "wait_screening": gettext_lazy("Waiting for the data steward's screening"),
    "wait_committee": gettext_lazy("Waiting for the data access committee"),
    "sign": gettext_lazy("The authorised signatory signs the agreements"),
    "wait_countersign": gettext_lazy("Waiting for the society's countersignature"),
    "use_and_report": gettext_lazy("Use the data and report yearly"),
}


def _standing(request: HttpRequest, pk: int) -> Standing:
    access_request = get_object_or_404(
        requests_visible_to(request.user).select_related(  # type: ignore[arg-type]
            "organization", "applicant", "principal_investigator", "signatory", "ethics_protocol"),
        pk=pk,
    )
    standing = request_standing(request.user, access_request)  # type: ignore[arg-type]
    if not standing.may_see:
        raise Http404
    return standing


def _society_for(standing: Standing, society_id: int) -> Society:
    for review in standing.reviews:
        if review.society_id == society_id:
            return review.society
    raise Http404


def _refused(request: HttpRequest, error: Exception) -> None:
    messages.error(request, str(error))


def _back(pk: int) -> HttpResponse:
    return redirect("access:request_detail", pk)


# --- applicant -----------------------------------------------------------------------------------


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    rows = list(my_requests(request.user))  # type: ignore[arg-type]
    for row in rows:
        step = NEXT_STEPS.get(row.status)
        row.next_step = NEXT_STEP_LABELS.get(step, "") if step else ""
    return render(request, "access/request_list.html", {"requests": rows})


@login_required
def request_create(request: HttpRequest) -> HttpResponse:
    form = RequestCreateForm(request.POST or None, user=request.user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        try:
            created = services.access_request_create(
                by=request.user, organization=form.cleaned_data["organization"],  # type: ignore[arg-type]
                title=form.cleaned_data["title"],
            )
        except AccessRefused as error:
            _refused(request, error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            return redirect("access:request_edit", created.pk)
    return render(request, "access/request_create.html", {"form": form})


@login_required
def request_edit(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk)
    access_request = standing.access_request
    if not standing.is_applicant:
        raise PermissionDenied
    if access_request.status not in (RequestStatus.DRAFT, RequestStatus.RETURNED):
        messages.error(request, _("The application can no longer be changed."))
        return _back(pk)
    if request.method == "POST":
        form = RequestForm(request.POST, request.FILES, user=request.user)  # type: ignore[arg-type]
        if form.is_valid():
            try:
                services.access_request_update(
                    access_request=access_request, by=request.user,  # type: ignore[arg-type]
                    releases=form.cleaned_data["releases"], named_users=form.cleaned_data["named_user_rows"],
                    security_answers=form.cleaned_data["security"], **form.service_fields(),
                )
                if "submit" in request.POST:
                    services.access_request_submit(access_request=access_request, by=request.user)  # type: ignore[arg-type]
                    messages.success(request, _("The application was submitted."))
                    return _back(pk)
            except AccessRefused as error:
                _refused(request, error)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("The application was saved."))
                return redirect("access:request_edit", pk)
    else:
        form = RequestForm(initial=RequestForm.initial_for(access_request), user=request.user)  # type: ignore[arg-type]
    return render(request, "access/request_edit.html", {"form": form, "access_request": access_request})


@login_required
@require_POST
def request_submit(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk)
    if not standing.is_applicant:
        raise PermissionDenied
    try:
        services.access_request_submit(access_request=standing.access_request, by=request.user)  # type: ignore[arg-type]
    except AccessRefused as error:
        _refused(request, error)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("access:request_edit", pk)
    else:
        messages.success(request, _("The application was submitted."))
    return _back(pk)


@login_required
@require_POST
def request_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk)
    if not standing.is_applicant:
        raise PermissionDenied
    try:
        services.access_request_withdraw(access_request=standing.access_request, by=request.user,  # type: ignore[arg-type]
                                         reason=request.POST.get("reason", ""))
    except AccessRefused as error:
        _refused(request, error)
    else:
        messages.success(request, _("The application was withdrawn."))
    return _back(pk)


@login_required
@require_POST
def request_comment(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk)
    form = CommentForm(request.POST)
    society = None
    if request.POST.get("society"):
        try:
            society = _society_for(standing, int(request.POST["society"]))
        except ValueError as error:
            raise Http404 from error
    if form.is_valid():
        try:
            services.access_request_comment(access_request=standing.access_request, by=request.user,  # type: ignore[arg-type]
                                            society=society, **form.cleaned_data)
        except AccessRefused as error:
            _refused(request, error)
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
        else:
            messages.success(request, _("The comment was added."))
    else:
        messages.error(request, _("Write the comment."))
    return _back(pk)


def _security_rows(access_request: AccessRequest) -> list[tuple[Any, Any]]:
    answers = {a.item: a for a in access_request.security_answers.all()}
    return [(item, answers.get(item.key)) for item in ITEMS_BY_KEY.values()]


def _timeline(access_request: AccessRequest, standing: Standing) -> list[tuple[Any, str]]:
    events: list[tuple[Any, str]] = [(access_request.created_at, _("Application started"))]
    if access_request.submitted_at:
        events.append((access_request.submitted_at, pgettext("status", "Submitted")))
    for review in standing.reviews:
        if review.screened_at:
            events.append((review.screened_at, _("Screened by the data steward of %(society)s")
                           % {"society": review.society.name_ja}))
        if review.decided_at:
            events.append((review.decided_at, _("%(society)s decided: %(decision)s")
                           % {"society": review.society.name_ja, "decision": review.get_status_display()}))
    for agreement in access_request.agreements.select_related("society"):
        events.append((agreement.signed_at, _("Agreement with %(society)s signed") % {"society": agreement.society.name_ja}))
        if agreement.countersigned_at:
            events.append((agreement.countersigned_at, _("Agreement countersigned by %(society)s")
                           % {"society": agreement.society.name_ja}))
    for grant in access_request.grants.all():
        events.append((grant.created_at, _("Access granted (%(reference)s)") % {"reference": grant.reference}))
    return sorted(events, key=lambda event: event[0])


@login_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk)
    r = standing.access_request
    may_edit = standing.is_applicant and r.status in (RequestStatus.DRAFT, RequestStatus.RETURNED)
    context = {
        "access_request": r, "standing": standing, "reviews": standing.reviews,
        "named_users": r.named_users.select_related("user"),
        "releases": r.releases.select_related("dataset", "dataset__society"),
        "comments": visible_comments(standing),
        "timeline": _timeline(r, standing),
        "security_rows": _security_rows(r) if standing.may_see_security else None,
        "agreements": r.agreements.select_related("society") if standing.may_see_security else None,
        "grants": r.grants.select_related("society").order_by("id"),
        "may_edit": may_edit,
        "may_withdraw": standing.is_applicant and r.status in {
            RequestStatus.DRAFT, RequestStatus.SUBMITTED, RequestStatus.RETURNED, RequestStatus.COMMITTEE_REVIEW,
            RequestStatus.APPROVED, RequestStatus.SIGNED} and not r.grants.exists(),
        "may_sign": standing.is_signatory and r.status == RequestStatus.APPROVED,
        "comment_form": CommentForm(),
        "missing": services.access_request_missing(r) if may_edit else {},
    }
    return render(request, "access/request_detail.html", context)


@login_required
def request_sign(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk)
    r = standing.access_request
    if not standing.is_signatory:
        raise PermissionDenied
    societies = [review.society for review in standing.reviews if review.status in APPROVING]
    form = SignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.access_request_sign(
                access_request=r, signatory_name=form.cleaned_data["signatory_name"],
                signatory_title=form.cleaned_data["signatory_title"], ip=client_ip(request), by=request.user,  # type: ignore[arg-type]
            )
        except (AccessRefused, PermissionDenied) as error:
            _refused(request, error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The agreements were signed."))
            return _back(pk)
    table, conflicts = None, []
    versions = [v for v in (current_version_for(s) for s in societies) if v is not None]
    if versions:
        table = terms_side_by_side(versions)
        conflicts = terms_conflicts(versions, purpose=r.purpose)
    return render(request, "access/request_sign.html", {
        "access_request": r, "form": form, "table": table, "conflicts": conflicts,
        "reviews": [review for review in standing.reviews if review.status in APPROVING],
        "may_sign": r.status == RequestStatus.APPROVED,
    })


# --- stewards and society admins -----------------------------------------------------------------


def _require_society_role(request: HttpRequest, *roles: str) -> None:
    if not SocietyMembership.objects.filter(user=request.user, role__in=roles).exists():  # type: ignore[misc]
        raise PermissionDenied


@login_required
def steward_queue(request: HttpRequest) -> HttpResponse:
    _require_society_role(request, SocietyMembership.Role.STEWARD, SocietyMembership.Role.ADMIN)
    return render(request, "access/steward_queue.html", {
        "reviews": list(steward_queue_for(request.user)),  # type: ignore[arg-type]
        "agreements": list(countersign_queue(request.user)),  # type: ignore[arg-type]
        "amendments": list(amendments_awaiting_decision(request.user)),
    })


def _steward_society(request: HttpRequest, pk: int, society_id: int) -> tuple[Standing, Society]:
    standing = _standing(request, pk)
    if society_id not in standing.steward_society_ids:
        raise PermissionDenied
    return standing, _society_for(standing, society_id)


@login_required
def steward_review(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing, society = _steward_society(request, pk, society_id)
    review = next(r for r in standing.reviews if r.society_id == society_id)
    return render(request, "access/steward_review.html", {
        "access_request": standing.access_request, "society": society, "review": review,
        "screen_form": ScreenForm(), "return_form": ReasonForm(), "revoke_form": ReasonForm(),
        "comment_form": CommentForm(), "comments": visible_comments(standing),
        "named_users": standing.access_request.named_users.select_related("user"),
        "releases": standing.access_request.releases.select_related("dataset"),
        "security_rows": _security_rows(standing.access_request),
        "may_revoke": REQUEST.allows("revoke", standing.access_request.status),
    })


@login_required
@require_POST
def steward_screen(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing, society = _steward_society(request, pk, society_id)
    form = ScreenForm(request.POST)
    form.is_valid()
    try:
        services.access_request_screen(access_request=standing.access_request, society=society, by=request.user,  # type: ignore[arg-type]
                                       comment=form.cleaned_data.get("comment", ""))
    except AccessRefused as error:
        _refused(request, error)
    else:
        messages.success(request, _("The application was passed to the data access committee."))
    return redirect("access:steward_review", pk, society_id)


@login_required
@require_POST
def steward_return(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing, society = _steward_society(request, pk, society_id)
    try:
        services.access_request_return(access_request=standing.access_request, society=society,
                                       reason=request.POST.get("reason", ""), by=request.user)  # type: ignore[arg-type]
    except AccessRefused as error:
        _refused(request, error)
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, _("The application was returned to the applicant."))
    return redirect("access:steward_review", pk, society_id)


@login_required
@require_POST
def steward_revoke(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing, society = _steward_society(request, pk, society_id)
    try:
        services.access_request_revoke(access_request=standing.access_request, society=society,
                                       reason=request.POST.get("reason", ""), by=request.user)  # type: ignore[arg-type]
    except AccessRefused as error:
        _refused(request, error)
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, _("Access was revoked."))
    return redirect("access:steward_review", pk, society_id)


@login_required
def steward_countersign(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing = _standing(request, pk)
    if society_id not in standing.admin_society_ids:
        raise PermissionDenied
    society = _society_for(standing, society_id)
    r = standing.access_request
    agreement = r.agreements.filter(society=society).select_related("template_version").order_by("-signed_at").first()
    form = CountersignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.access_request_countersign(access_request=r, society=society, ip=client_ip(request),
                                                by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except (AccessRefused, PermissionDenied) as error:
            _refused(request, error)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The agreement was countersigned and access was granted."))
            return _back(pk)
    return render(request, "access/steward_countersign.html", {
        "access_request": r, "society": society, "agreement": agreement, "form": form,
    })


# --- data access committee -----------------------------------------------------------------------


@login_required
def committee_inbox_view(request: HttpRequest) -> HttpResponse:
    _require_society_role(request, SocietyMembership.Role.ACCESS_COMMITTEE)
    reviews = committee_inbox(request.user).annotate(  # type: ignore[arg-type]
        vote_count=Count("votes"),
        my_votes=Count("votes", filter=Q(votes__member=request.user)),
    )
    return render(request, "access/committee_inbox.html", {"reviews": list(reviews)})


@login_required
def committee_review(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing = _standing(request, pk)
    if society_id not in standing.committee_society_ids:
        raise PermissionDenied
    society = _society_for(standing, society_id)
    review = (
        SocietyReview.objects.filter(pk=next(r.pk for r in standing.reviews if r.society_id == society_id))
        .prefetch_related(Prefetch("votes", queryset=CommitteeVote.objects.select_related("member")))
        .get()
    )
    r = standing.access_request
    return render(request, "access/committee_review.html", {
        "access_request": r, "society": society, "review": review, "standing": standing,
        "recusal_reason": standing.recusal_reason, "votes": list(review.votes.all()),
        "my_vote": next((v for v in review.votes.all() if v.member_id == request.user.pk), None),
        "counted": len(services.counted_votes(review)), "quorum": services.QUORUM,
        "vote_form": VoteForm(), "decision_form": DecisionForm(), "comment_form": CommentForm(),
        "open": review.status == SocietyReview.Status.COMMITTEE,
        "named_users": r.named_users.select_related("user"),
        "releases": r.releases.select_related("dataset"),
        "comments": visible_comments(standing),
    })


@login_required
@require_POST
def committee_vote(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing = _standing(request, pk)
    if society_id not in standing.committee_society_ids:
        raise PermissionDenied
    society = _society_for(standing, society_id)
    form = VoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a vote."))
    else:
        try:
            services.access_request_vote(access_request=standing.access_request, society=society,
                                         by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except AccessRefused as error:
            _refused(request, error)
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
        else:
            messages.success(request, _("Your vote was recorded."))
    return redirect("access:committee_review", pk, society_id)


@login_required
@require_POST
def committee_decide(request: HttpRequest, pk: int, society_id: int) -> HttpResponse:
    standing = _standing(request, pk)
    if society_id not in standing.committee_society_ids:
        raise PermissionDenied
    society = _society_for(standing, society_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the decision."))
    else:
        try:
            services.access_request_decide(access_request=standing.access_request, society=society,
                                           by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except AccessRefused as error:
            _refused(request, error)
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
        else:
            messages.success(request, _("The decision was recorded."))
    return redirect("access:committee_review", pk, society_id)
