"""The ethics review in the browser: applicants, committee members, secretariat, chair and heads.

Each view parses a form and calls one service from ``portal.ethics.services``. The services decide
who may do what in which state; a refusal is shown as a message and changes nothing, bad input is
shown next to the fields. Protocols are fetched through ``protocols_visible_to`` so that outsiders
get 404; people who may see a protocol but not act in the role a page needs get 403.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.accounts.models import OrganizationMembership, User
from portal.accounts.roles import ETHICS_COMMITTEE_ROLES, roles_for
from portal.audit.services import audit_record
from portal.ethics import services
from portal.ethics.forms import (
    EDITABLE_VERSION_FIELDS,
    ORGANIZATION_PREFIX,
    AmendmentForm,
    AttachmentForm,
    AttendanceForm,
    CommentForm,
    CompletionReportForm,
    ConditionsAnswerForm,
    ConditionsVerifyForm,
    ConflictDeclarationForm,
    DecisionForm,
    DiscontinuationReportForm,
    ExplanationForm,
    HeadDecisionForm,
    NoncomplianceOpinionForm,
    NoncomplianceReportForm,
    NotifiedToHeadForm,
    PeriodicReportForm,
    ProtocolCreateForm,
    ProtocolItemsForm,
    ProtocolVersionForm,
    ReasonForm,
    ReviewOpenForm,
    RevisionForm,
    VoteForm,
    add_service_errors,
    organization_formset,
    organization_payload,
)
from portal.ethics.items import item_heading, items_for
from portal.ethics.models import (
    END_STATES,
    CommitteeMembership,
    ItemComment,
    Protocol,
    ProtocolAttachment,
    ProtocolItem,
    ProtocolStatus,
    ProtocolVersion,
    Review,
    Vote,
)
from portal.ethics.selectors import (
    conditions_answered_protocols,
    open_full_board_reviews,
    periodic_reports_to_acknowledge,
    protocol_data_flow,
    protocols_visible_to,
    review_inbox,
    secretariat_committee_ids,
)
from portal.ethics.workflow import PROTOCOL, TransitionNotAllowed
from portal.lib import hooks

S = ProtocolStatus
# The state machine refuses with its own exception; to the person both mean "not now, not you".
REFUSALS = (services.EthicsRefused, TransitionNotAllowed)


# --- Who the user is for this protocol -----------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    protocol: Protocol
    user: User

    @cached_property
    def membership(self) -> CommitteeMembership | None:
        return CommitteeMembership.objects.filter(
            committee_id=self.protocol.committee_id, user=self.user, active=True
        ).first()

    @property
    def is_applicant(self) -> bool:
        return self.protocol.principal_investigator_id == self.user.pk

    @property
    def is_member(self) -> bool:
        return self.membership is not None

    @property
    def is_chair(self) -> bool:
        return self.membership is not None and self.membership.role == CommitteeMembership.Role.CHAIR

    @property
    def is_secretariat(self) -> bool:
        # The chair may do the secretariat's work as well (services._require_secretariat).
        return self.membership is not None and self.membership.role in {
            CommitteeMembership.Role.SECRETARIAT, CommitteeMembership.Role.CHAIR,
        }

    @cached_property
    def is_head(self) -> bool:
        return OrganizationMembership.objects.filter(
            user=self.user, organization_id=self.protocol.institution_id, role=OrganizationMembership.Role.HEAD
        ).exists()


def _visible_protocol(request: HttpRequest, pk: int) -> Protocol:
    return get_object_or_404(
        protocols_visible_to(request.user).select_related("committee", "institution", "principal_investigator"),
        pk=pk,
    )


def _standing(request: HttpRequest, pk: int, allowed: Callable[[Standing], bool]) -> Standing:
    standing = Standing(_visible_protocol(request, pk), request.user)  # type: ignore[arg-type]
    if not allowed(standing):
        raise PermissionDenied
    return standing


def _visible_versions(standing: Standing) -> QuerySet[ProtocolVersion]:
    """The applicant sees their drafts; everybody else only what was submitted."""
    versions = standing.protocol.versions.order_by("number")
    return versions if standing.is_applicant else versions.filter(submitted_at__isnull=False)


def _title_of_latest_version() -> Subquery:
    return Subquery(
        ProtocolItem.objects.filter(version__protocol=OuterRef("pk"), key="title")
        .order_by("-version__number").values("body")[:1]
    )


def _attempt(request: HttpRequest, form: forms.Form, action: Callable[[], object], done: str) -> bool:
    """Call one service. Refused: say why (nothing changed). Bad input: errors into the form."""
    try:
        action()
    except REFUSALS as refusal:
        messages.error(request, str(refusal))
        return False
    except ValidationError as error:
        add_service_errors(form, error)
        return False
    messages.success(request, done)
    return True


def _finish(form: forms.Form, done: bool, url: str, rerender: Callable[[], HttpResponse]) -> HttpResponse:
    if done or not form.errors:
        return redirect(url)
    return rerender()


def _item_rows(version: ProtocolVersion) -> list[tuple[Any, ProtocolItem | None]]:
    items = {item.key: item for item in version.items.all()}
    return [(spec, items.get(spec.key)) for spec in items_for(version.protocol.kind)]


# --- Applicant: list, create, edit, attachments, submit ----------------------------------------


@never_cache
@login_required
def protocol_list(request: HttpRequest) -> HttpResponse:
    protocols = (
        Protocol.objects.filter(principal_investigator=request.user)
        .select_related("committee")
        .annotate(title=_title_of_latest_version())
        .order_by("-id")
    )
    return render(request, "ethics/protocol_list.html", {"protocols": protocols})


@never_cache
@login_required
def protocol_create(request: HttpRequest) -> HttpResponse:
    form = ProtocolCreateForm(request.POST or None, user=request.user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        created: list[Protocol] = []
        done = _attempt(
            request, form,
            lambda: created.append(services.protocol_create(by=request.user, **form.cleaned_data)),  # type: ignore[arg-type]
            _("The draft protocol was created."),
        )
        if done:
            return redirect("ethics:protocol_edit", pk=created[0].pk)
    return render(request, "ethics/protocol_create.html", {"form": form})


def _applicant_comments(protocol: Protocol) -> list[tuple[ItemComment, str]]:
    """The committee's comments meant for the applicant, each naming its item as the committee does
    ("⑤ ..."), never by its stored key."""
    return [
        (comment, item_heading(comment.item_key) if comment.item_key else "")
        for comment in ItemComment.objects.filter(review__version__protocol=protocol, for_applicant=True)
        .select_related("review__version").order_by("created_at", "id")
    ]


def _render_edit(
    request: HttpRequest, standing: Standing, *, version_form: forms.Form | None = None,
    items_form: forms.Form | None = None, attachment_form: forms.Form | None = None,
    missing: list[str] | None = None, organization: Any = None,
) -> HttpResponse:
    version = services.latest_version(standing.protocol)
    context = {
        "protocol": standing.protocol,
        "version": version,
        "version_form": version_form or ProtocolVersionForm(instance=version),
        "items_form": items_form or ProtocolItemsForm(version=version),
        "organization_formset": organization or organization_formset(version),
        "attachment_form": attachment_form or AttachmentForm(),
        "attachments": version.attachments.all(),
        "missing": missing,
        # Revising after a deferral or a return: what the committee said, beside the items.
        "comments": _applicant_comments(standing.protocol),
    }
    return render(request, "ethics/protocol_edit.html", context)


def _editable_draft(request: HttpRequest, pk: int) -> Standing | HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_applicant)
    if services.latest_version(standing.protocol).is_frozen:
        messages.error(request, _("This version was submitted and can no longer change; start an amendment."))
        return redirect("ethics:protocol_detail", pk=pk)
    return standing


@never_cache
@login_required
def protocol_edit(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _editable_draft(request, pk)
    if isinstance(standing, HttpResponse):
        return standing
    if request.method != "POST":
        return _render_edit(request, standing)
    version = services.latest_version(standing.protocol)
    version_form = ProtocolVersionForm(request.POST, instance=ProtocolVersion.objects.get(pk=version.pk))
    items_form = ProtocolItemsForm(request.POST, version=version)
    # Item ② rows; a post without the formset (an older page) leaves the rows as they are.
    organization = organization_formset(version, request.POST) if f"{ORGANIZATION_PREFIX}-TOTAL_FORMS" in request.POST else None
    if version_form.is_valid() and items_form.is_valid() and (organization is None or organization.is_valid()):
        done = _attempt(
            request, version_form,
            lambda: services.protocol_update_draft(
                protocol=standing.protocol, by=request.user,  # type: ignore[arg-type]
                fields=version_form.fields_payload(), items=items_form.items_payload(),
                organization_entries=organization_payload(organization) if organization is not None else None,
                **version_form.relations_payload(),
            ),
            _("The draft was saved."),
        )
        if done or not version_form.errors:
            return redirect("ethics:protocol_edit", pk=pk)
    return _render_edit(request, standing, version_form=version_form, items_form=items_form,
                        organization=organization)


@require_POST
@login_required
def attachment_upload(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _editable_draft(request, pk)
    if isinstance(standing, HttpResponse):
        return standing
    form = AttachmentForm(request.POST, request.FILES)
    done = form.is_valid() and _attempt(
        request, form,
        lambda: services.attachment_add(
            protocol=standing.protocol, kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"],
            by=request.user,  # type: ignore[arg-type]
        ),
        _("The document was attached."),
    )
    return _finish(form, done, reverse("ethics:protocol_edit", args=[pk]),
                   lambda: _render_edit(request, standing, attachment_form=form))


@require_POST
@login_required
def protocol_submit(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_applicant)
    protocol = standing.protocol
    try:
        services.draft_submit(protocol=protocol, by=request.user)  # type: ignore[arg-type]
    except REFUSALS as refusal:
        messages.error(request, str(refusal))
    except ValidationError as missing:
        messages.error(request, _("The protocol cannot be submitted yet; complete the items listed below."))
        return _render_edit(request, standing, missing=missing.messages)
    else:
        messages.success(request, _("The protocol was submitted to the committee."))
    return redirect("ethics:protocol_detail", pk=pk)


# --- Everyone who may see the protocol: detail, versions, attachments ---------------------------


def _can_do(action: str, status: str) -> bool:
    return PROTOCOL.allows(action, status)


def _render_detail(request: HttpRequest, standing: Standing, **bound: forms.Form) -> HttpResponse:
    protocol = standing.protocol
    versions = list(_visible_versions(standing).select_related("review__decision", "head_decision"))
    if not versions:
        raise Http404
    chosen = request.GET.get("version")
    version = next((v for v in versions if str(v.number) == chosen), versions[-1])
    latest = versions[-1]
    # While a deferred protocol is being revised, its last opinion stays in sight above the draft.
    review = next((v.review for v in reversed(versions) if hasattr(v, "review")), None)
    decision = getattr(review, "decision", None) if review else None
    status = protocol.status
    applicant, chair, secretariat, head = (
        standing.is_applicant, standing.is_chair, standing.is_secretariat, standing.is_head,
    )
    # A withdrawn or finished protocol keeps its last draft as it was.
    amendment_drafting = (
        applicant and status not in END_STATES and not services.latest_version(protocol).is_frozen
    )
    forms_shown = {
        "answer_form": ConditionsAnswerForm() if applicant and status == S.CONDITIONS else None,
        "amendment_form": (
            AmendmentForm() if applicant and status == S.ACTIVE and not amendment_drafting else None
        ),
        "completion_form": CompletionReportForm() if applicant and _can_do("report_completion", status) else None,
        "discontinue_form": DiscontinuationReportForm() if applicant and _can_do("discontinue", status) else None,
        "noncompliance_form": (
            NoncomplianceReportForm() if (applicant or head) and status in services.REPORTABLE_STATES else None
        ),
        "noncompliance_opinion_form": NoncomplianceOpinionForm() if chair else None,
        "periodic_form": (
            PeriodicReportForm() if applicant and status in {S.ACTIVE, S.AMENDMENT_REVIEW, S.SUSPENDED} else None
        ),
        "verify_form": ConditionsVerifyForm() if chair and status == S.CONDITIONS_ANSWERED else None,
        "suspend_form": ReasonForm() if (chair or head) and _can_do("suspend", status) else None,
        "head_form": HeadDecisionForm() if head and status == S.APPROVED else None,
        # Offered exactly when the service would accept it: it asks the same rule.
        "revise_form": (
            RevisionForm() if services.protocol_revise_refusal(protocol=protocol, by=standing.user) is None else None
        ),
    }
    for name, form in bound.items():
        forms_shown[name] = form
    comments = _applicant_comments(protocol)
    context = {
        "protocol": protocol,
        "standing": standing,
        "versions": versions,
        "version": version,
        "title": next((i.body for s, i in _item_rows(version) if s.key == "title" and i), ""),
        "item_rows": _item_rows(version),
        "attachments": version.attachments.all(),
        "review": review,
        "decision": decision,
        "head_decision": getattr(latest, "head_decision", None),
        "comments": comments,
        "data_flow": protocol_data_flow(protocol),
        "periodic_reports": protocol.periodic_reports.select_related("acknowledged_by"),
        "noncompliance_reports": protocol.noncompliance_reports.select_related("filed_by", "opinion_by"),
        # What was released under the protocol and how it was anonymised (the jobs' reports,
        # portal.deid).
        "released_data": hooks.joined("protocol_released_data", protocol=protocol),
        "can_edit": amendment_drafting,
        "can_submit": amendment_drafting,
        "can_withdraw": applicant and _can_do("withdraw", status),
        "can_resume": (chair or head) and _can_do("resume", status),
        "can_acknowledge": (
            secretariat and status == S.AMENDMENT_REVIEW and latest.kind == ProtocolVersion.Kind.MINOR_AMENDMENT
        ),
        **forms_shown,
    }
    return render(request, "ethics/protocol_detail.html", context)


@never_cache
@login_required
def protocol_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _standing(request, pk, lambda s: True))


@dataclass(frozen=True)
class DiffRow:
    label: str
    left: list[tuple[str, str]]
    right: list[tuple[str, str]]

    @property
    def changed(self) -> bool:
        return any(tag != "equal" for tag, _text in self.left + self.right)


def _diff(label: str, old: str, new: str) -> DiffRow:
    """Character by character: Japanese text has no spaces to split words on."""
    left: list[tuple[str, str]] = []
    right: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            left.append(("equal", old[i1:i2]))
            right.append(("equal", new[j1:j2]))
            continue
        if i2 > i1:
            left.append(("delete", old[i1:i2]))
        if j2 > j1:
            right.append(("insert", new[j1:j2]))
    return DiffRow(label, left, right)


def _version_texts(version: ProtocolVersion) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name in EDITABLE_VERSION_FIELDS:
        field = ProtocolVersion._meta.get_field(name)
        value = getattr(version, f"get_{name}_display")() if field.choices else getattr(version, name)  # type: ignore[attr-defined]
        if isinstance(value, bool):
            value = _("Yes") if value else _("No")
        rows.append((str(field.verbose_name), str(value)))
    items = {item.key: item for item in version.items.all()}
    for spec in items_for(version.protocol.kind):
        item = items.get(spec.key)
        if spec.is_organization:
            rows.append((f"{spec.marker} {spec.label}", "\n".join(
                f"{e.institution_name} ({e.get_institution_role_display()}) / {e.person_name} ({e.get_person_role_display()})"
                for e in version.organization_entries.all()
            )))
        rows.append((f"{spec.marker} {spec.label}", item.body if item else ""))
        if not spec.always_required:
            rows.append((f"{spec.marker} {_('Not applicable, because')}", item.not_applicable_reason if item else ""))
    return rows


@never_cache
@login_required
def version_diff(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: True)
    versions = {v.number: v for v in _visible_versions(standing)}
    numbers = sorted(versions)
    try:
        new = int(request.GET.get("to", numbers[-1] if numbers else 0))
        old = int(request.GET.get("from", new - 1))
    except ValueError as error:
        raise Http404 from error
    if old not in versions or new not in versions:
        raise Http404
    rows = [
        _diff(label, old_text, new_text)
        for (label, old_text), (_label, new_text) in zip(
            _version_texts(versions[old]), _version_texts(versions[new]), strict=True
        )
    ]
    context = {"protocol": standing.protocol, "old": versions[old], "new": versions[new], "rows": rows,
               "numbers": numbers}
    return render(request, "ethics/version_diff.html", context)


@never_cache
@login_required
def attachment_download(request: HttpRequest, pk: int, attachment_pk: int) -> FileResponse:
    standing = _standing(request, pk, lambda s: True)
    attachment = get_object_or_404(
        ProtocolAttachment.objects.select_related("version"),
        pk=attachment_pk, version__in=_visible_versions(standing),
    )
    # Who read which protocol document is evidence the committee must be able to show.
    audit_record(
        action="ethics.attachment_viewed", actor=request.user, target=attachment,  # type: ignore[arg-type]
        details={"protocol": standing.protocol.pk, "version": attachment.version.number, "sha256": attachment.sha256},
    )
    return FileResponse(
        attachment.file.open("rb"), as_attachment=True, filename=attachment.original_name,
        content_type=attachment.media_type,
    )


# --- Applicant's actions on the detail page ------------------------------------------------------


def _detail_action(
    request: HttpRequest, pk: int, allowed: Callable[[Standing], bool], form_class: type[forms.Form],
    form_name: str, call: Callable[[Standing, dict[str, Any]], object], done: str,
) -> HttpResponse:
    standing = _standing(request, pk, allowed)
    form = form_class(request.POST)
    ok = form.is_valid() and _attempt(request, form, lambda: call(standing, form.cleaned_data), done)
    return _finish(form, ok, reverse("ethics:protocol_detail", args=[pk]),
                   lambda: _render_detail(request, standing, **{form_name: form}))


@require_POST
@login_required
def conditions_answer(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, ConditionsAnswerForm, "answer_form",
        lambda s, data: services.conditions_answer(protocol=s.protocol, answer=data["answer"], by=s.user),
        _("Your answer was sent to the committee."),
    )


@require_POST
@login_required
def protocol_revise(request: HttpRequest, pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_applicant)
    form = RevisionForm(request.POST)
    ok = form.is_valid() and _attempt(
        request, form,
        lambda: services.protocol_revise(protocol=standing.protocol, summary=form.cleaned_data["summary"],
                                         by=standing.user),
        _("A revised draft was opened; edit the items and submit it again."),
    )
    if ok:
        return redirect("ethics:protocol_edit", pk=pk)
    return _finish(form, ok, reverse("ethics:protocol_detail", args=[pk]),
                   lambda: _render_detail(request, standing, revise_form=form))


@require_POST
@login_required
def amendment_start(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, AmendmentForm, "amendment_form",
        lambda s, data: services.amendment_start(protocol=s.protocol, by=s.user, **data),
        _("An amendment draft was opened; edit it and submit it."),
    )


@require_POST
@login_required
def completion_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, CompletionReportForm, "completion_form",
        lambda s, data: services.protocol_report_completion(protocol=s.protocol, report=data["report"], by=s.user),
        _("The completion report was sent."),
    )


@require_POST
@login_required
def periodic_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, PeriodicReportForm, "periodic_form",
        lambda s, data: services.periodic_report_submit(protocol=s.protocol, by=s.user, **data),
        _("The periodic report was sent to the committee."),
    )


@require_POST
@login_required
def periodic_report_acknowledge(request: HttpRequest, pk: int, report_pk: int) -> HttpResponse:
    standing = _standing(request, pk, lambda s: s.is_secretariat)
    report = get_object_or_404(standing.protocol.periodic_reports, pk=report_pk)
    try:
        services.periodic_report_acknowledge(report=report, by=standing.user)
    except services.EthicsRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _("The periodic report was acknowledged."))
    return redirect("ethics:protocol_detail", pk=pk)


@require_POST
@login_required
def protocol_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, forms.Form, "",
        lambda s, data: services.protocol_withdraw(protocol=s.protocol, by=s.user),
        _("The protocol was withdrawn."),
    )


# --- Chair, secretariat and head actions on the detail page --------------------------------------


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
def noncompliance_report(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant or s.is_head, NoncomplianceReportForm, "noncompliance_form",
        lambda s, data: services.noncompliance_report_file(protocol=s.protocol, body=data["body"], by=s.user),
        _("The report of serious non-compliance was sent to the committee."),
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
def protocol_discontinue(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_applicant, DiscontinuationReportForm, "discontinue_form",
        lambda s, data: services.protocol_discontinue(protocol=s.protocol, report=data["report"], by=s.user),
        _("The discontinuation report was sent; the research is discontinued."),
    )


@require_POST
@login_required
def minor_amendment_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_secretariat, forms.Form, "",
        lambda s, data: services.minor_amendment_acknowledge(protocol=s.protocol, by=s.user),
        _("The minor amendment was acknowledged."),
    )


@require_POST
@login_required
def head_decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_action(
        request, pk, lambda s: s.is_head, HeadDecisionForm, "head_form",
        lambda s, data: services.head_decide(protocol=s.protocol, by=s.user, **data),
        _("Your decision was recorded and sent to the applicant."),
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


def _review_of(standing: Standing) -> Review:
    review = (
        Review.objects.filter(version__protocol=standing.protocol)
        .select_related("version__protocol__committee", "decision")
        .order_by("-version__number").first()
    )
    if review is None:
        raise Http404
    return review


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


# --- Head of the institution ---------------------------------------------------------------------


@never_cache
@login_required
def head_queue(request: HttpRequest) -> HttpResponse:
    institutions = OrganizationMembership.objects.filter(
        user=request.user, role=OrganizationMembership.Role.HEAD
    ).values("organization_id")
    if not institutions.exists():
        raise PermissionDenied
    protocols = (
        Protocol.objects.filter(institution_id__in=institutions, status=S.APPROVED)
        .select_related("committee", "principal_investigator", "institution")
        .annotate(title=_title_of_latest_version())
        .order_by("updated_at", "id")
    )
    return render(request, "ethics/head_queue.html", {"protocols": protocols})
