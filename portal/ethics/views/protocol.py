"""Everyone who may see the protocol: detail, versions compared, attachments.

The detail page also carries the actions of each role; ``_detail_action`` is the shape they share.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from portal.audit.services import audit_record
from portal.ethics import services
from portal.ethics.forms import (
    EDITABLE_VERSION_FIELDS,
    AmendmentForm,
    CompletionReportForm,
    ConditionsAnswerForm,
    ConditionsVerifyForm,
    DiscontinuationReportForm,
    HeadDecisionForm,
    NoncomplianceOpinionForm,
    NoncomplianceReportForm,
    PeriodicReportForm,
    ReasonForm,
    RevisionForm,
)
from portal.ethics.items import items_for
from portal.ethics.models import (
    END_STATES,
    ProtocolAttachment,
    ProtocolVersion,
)
from portal.ethics.permissions import Standing, _standing, _visible_versions
from portal.ethics.selectors import protocol_data_flow
from portal.ethics.views.common import S, _applicant_comments, _attempt, _finish, _item_rows
from portal.ethics.workflow import PROTOCOL
from portal.lib import hooks

# --- Everyone who may see the protocol: detail, versions, attachments ----------------------------


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


# --- Actions on the detail page ------------------------------------------------------------------


def _detail_action(
    request: HttpRequest, pk: int, allowed: Callable[[Standing], bool], form_class: type[forms.Form],
    form_name: str, call: Callable[[Standing, dict[str, Any]], object], done: str,
) -> HttpResponse:
    standing = _standing(request, pk, allowed)
    form = form_class(request.POST)
    ok = form.is_valid() and _attempt(request, form, lambda: call(standing, form.cleaned_data), done)
    return _finish(form, ok, reverse("ethics:protocol_detail", args=[pk]),
                   lambda: _render_detail(request, standing, **{form_name: form}))
