"""Forms of the ethics review pages: they parse input; the services decide and change things."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.accounts.models import Organization, User
from portal.core.vocabulary import Modality
from portal.ethics.items import ITEMS_BY_KEY, item_heading, items_for
from portal.ethics.models import (
    CommitteeMembership,
    Decision,
    EthicsCommittee,
    OrganizationEntry,
    Protocol,
    ProtocolAttachment,
    ProtocolVersion,
    Review,
    Vote,
)
from portal.ethics.services import VERSION_FIELDS
from portal.societies.models import Society

_TEXTAREA = forms.Textarea(attrs={"rows": 4})


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError next to the fields it names, the rest above the form."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


class ProtocolCreateForm(forms.Form):
    committee = forms.ModelChoiceField(
        label=_("Ethics committee"), queryset=EthicsCommittee.objects.order_by("id"), empty_label=None
    )
    institution = forms.ModelChoiceField(
        label=_("Research institution"), queryset=Organization.objects.none(), empty_label=None
    )
    title = forms.CharField(label=_("Title of the research"), max_length=500)
    kind = forms.ChoiceField(
        label=_("Kind of protocol"), choices=Protocol.Kind.choices, initial=Protocol.Kind.RESEARCH, required=False,
        help_text=_("A society database that collects images and provides them to others is a "
                    "collection-and-provision body; its protocol has its own items."),
    )

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or Protocol.Kind.RESEARCH

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        institution = self.fields["institution"]
        assert isinstance(institution, forms.ModelChoiceField)
        institution.queryset = Organization.objects.filter(memberships__user=user).distinct().order_by("id")


# The version's fields; the modalities list gets its own checkbox field below.
EDITABLE_VERSION_FIELDS = tuple(name for name in VERSION_FIELDS if name != "modalities")


class ProtocolVersionForm(forms.ModelForm):  # type: ignore[type-arg]
    modalities_choice = forms.MultipleChoiceField(
        label=_("Modalities"), choices=Modality.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    societies = forms.ModelMultipleChoiceField(
        label=_("Societies involved"), queryset=Society.objects.order_by("id"), required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    named_researchers_emails = forms.CharField(
        label=_("Researchers named in the protocol"),
        help_text=_("Their e-mail addresses in the portal, one per line. Committee members named here are recused."),
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["modalities_choice"].initial = list(self.instance.modalities or [])
            self.fields["societies"].initial = list(self.instance.societies.values_list("pk", flat=True))
            self.fields["named_researchers_emails"].initial = "\n".join(
                self.instance.named_researchers.order_by("email").values_list("email", flat=True)
            )

    def clean_named_researchers_emails(self) -> list[User]:
        emails = [line.strip().lower() for line in self.cleaned_data["named_researchers_emails"].splitlines()]
        emails = [email for email in emails if email]
        users = list(User.objects.filter(email__in=emails))
        unknown = sorted(set(emails) - {user.email for user in users})
        if unknown:
            raise ValidationError(
                _("No account has these addresses: %(emails)s") % {"emails": ", ".join(unknown)}
            )
        return users

    def relations_payload(self) -> dict[str, Any]:
        return {
            "societies": list(self.cleaned_data["societies"]),
            "named_researchers": self.cleaned_data["named_researchers_emails"],
        }

    class Meta:
        model = ProtocolVersion
        fields = EDITABLE_VERSION_FIELDS
        widgets = {
            "change_summary": _TEXTAREA,
            "justification_minimal_risk": _TEXTAREA,
            "justification_no_disadvantage": _TEXTAREA,
            "justification_impracticable": _TEXTAREA,
            "justification_social_importance": _TEXTAREA,
        }

    def fields_payload(self) -> dict[str, Any]:
        payload = {name: self.cleaned_data[name] for name in EDITABLE_VERSION_FIELDS}
        payload["modalities"] = list(self.cleaned_data["modalities_choice"])
        return payload


def item_body_name(key: str) -> str:
    return f"item_{key}_body"


def item_reason_name(key: str) -> str:
    return f"item_{key}_not_applicable_reason"


class ProtocolItemsForm(forms.Form):
    """The 25 items of the guideline: a text each, and for ⑯-㉕ a reason for leaving it out."""

    def __init__(self, *args: Any, version: ProtocolVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = {item.key: item for item in version.items.all()}
        self.rows: list[tuple[Any, str, str | None]] = []
        for spec in items_for(version.protocol.kind):
            item = current.get(spec.key)
            self.fields[item_body_name(spec.key)] = forms.CharField(
                label=f"{spec.marker} {spec.label}", required=False, widget=_TEXTAREA,
                initial=item.body if item else "",
            )
            reason_name = None
            if not spec.always_required:
                reason_name = item_reason_name(spec.key)
                self.fields[reason_name] = forms.CharField(
                    label=_("Not applicable, because"), required=False, widget=forms.Textarea(attrs={"rows": 2}),
                    initial=item.not_applicable_reason if item else "",
                )
            self.rows.append((spec, item_body_name(spec.key), reason_name))

    def item_rows(self) -> list[tuple[Any, forms.BoundField, forms.BoundField | None]]:
        return [(spec, self[body], self[reason] if reason else None) for spec, body, reason in self.rows]

    def items_payload(self) -> dict[str, dict[str, str]]:
        payload = {}
        for spec, body, reason in self.rows:
            payload[spec.key] = {
                "body": self.cleaned_data[body],
                "not_applicable_reason": self.cleaned_data[reason] if reason else "",
            }
        return payload


class OrganizationEntryForm(forms.Form):
    """One row of item ② (研究の実施体制): institution × person × role."""

    institution_name = forms.CharField(label=_("Institution"), max_length=200)
    # A blank first choice: an empty extra row the browser sends back unchanged is then left out,
    # instead of failing as a half-filled row.
    institution_role = forms.ChoiceField(
        label=_("Kind of institution"), choices=[("", "---------"), *OrganizationEntry.InstitutionRole.choices]
    )
    person_name = forms.CharField(label=pgettext_lazy("person", "Name"), max_length=200)
    person_role = forms.ChoiceField(label=_("Role"), choices=[("", "---------"), *OrganizationEntry.PersonRole.choices])
    user_email = forms.EmailField(
        label=_("E-mail address in the portal"), required=False,
        help_text=_("If the person has a portal account: a committee member named here is recused."),
    )

    def clean_user_email(self) -> User | None:
        email = self.cleaned_data["user_email"].strip().lower()
        if not email:
            return None
        user = User.objects.filter(email=email).first()
        if user is None:
            raise ValidationError(_("No account has this address."))
        return user


OrganizationEntryFormSet = forms.formset_factory(OrganizationEntryForm, extra=2, can_delete=True)

ORGANIZATION_PREFIX = "org"


def organization_formset(version: ProtocolVersion, data: Any = None) -> Any:
    initial = [
        {"institution_name": e.institution_name, "institution_role": e.institution_role,
         "person_name": e.person_name, "person_role": e.person_role, "user_email": e.user.email if e.user else ""}
        for e in version.organization_entries.select_related("user")
    ]
    return OrganizationEntryFormSet(data, initial=initial, prefix=ORGANIZATION_PREFIX)


def organization_payload(formset: Any) -> list[dict[str, Any]]:
    """The rows kept (filled in and not marked for deletion), in order, for ``protocol_update_draft``."""
    rows = []
    for form in formset.forms:
        data = form.cleaned_data
        if not data or data.get("DELETE"):
            continue
        rows.append({
            "institution_name": data["institution_name"], "institution_role": data["institution_role"],
            "person_name": data["person_name"], "person_role": data["person_role"], "user": data["user_email"],
        })
    return rows


class AttachmentForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of document"), choices=ProtocolAttachment.Kind.choices)
    file = forms.FileField(label=_("File (PDF, Word, Excel or PowerPoint)"))


class ReviewOpenForm(forms.Form):
    mode = forms.ChoiceField(label=_("Review mode"), choices=Review.Mode.choices)
    expedited_ground = forms.ChoiceField(
        label=_("Ground for expedited review"),
        choices=[("", "—"), *Review.ExpeditedGround.choices],
        required=False,
    )
    meeting_at = forms.DateTimeField(
        label=_("Meeting date"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    meeting_format = forms.ChoiceField(
        label=_("Meeting format"),
        choices=[("", "—"), ("in_person", _("In person")), ("web", _("Web meeting"))],
        required=False,
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=_TEXTAREA)


class CommentForm(forms.Form):
    item_key = forms.ChoiceField(
        # Named as the committee names them (a callable, so each request gets its own language).
        label=_("Item"),
        choices=lambda: [("", _("The protocol as a whole"))] + [(key, item_heading(key)) for key in ITEMS_BY_KEY],
        required=False, widget=forms.HiddenInput,
    )
    body = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}))
    for_applicant = forms.BooleanField(label=_("Show this comment to the applicant"), required=False)


class VoteForm(forms.Form):
    choice = forms.ChoiceField(label=_("Your vote"), choices=Vote.Choice.choices, widget=forms.RadioSelect)
    reason = forms.CharField(
        label=_("Reason"), required=False, widget=_TEXTAREA,
        help_text=_("Required for approval with conditions, deferral or non-approval."),
    )


class AttendanceForm(forms.Form):
    members = forms.ModelMultipleChoiceField(
        label=_("Members who attended"), queryset=CommitteeMembership.objects.none(),
        widget=forms.CheckboxSelectMultiple, required=False,
    )

    def __init__(self, *args: Any, voters: QuerySet[CommitteeMembership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = self.fields["members"]
        assert isinstance(members, forms.ModelMultipleChoiceField)
        members.queryset = voters
        members.label_from_instance = _member_label  # type: ignore[method-assign]


def _member_label(membership: CommitteeMembership) -> str:
    parts = [membership.user.get_full_name() or membership.user.email, membership.get_category_display()]
    if membership.is_external:
        parts.append(str(_("external")))
    parts.append(membership.get_sex_display())
    return " / ".join(str(p) for p in parts if p)


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Opinion"), choices=Decision.Outcome.choices)
    method = forms.ChoiceField(label=_("Decision method"), choices=Decision.Method.choices)
    reasons = forms.CharField(label=_("Reasons"), widget=_TEXTAREA)
    conditions = forms.CharField(label=_("Conditions"), widget=_TEXTAREA, required=False)
    approved_until = forms.DateField(
        label=_("Approval valid until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class ConflictDeclarationForm(forms.Form):
    has_conflict = forms.TypedChoiceField(
        label=_("Conflict of interest in this review"),
        choices=[("no", _("I have no conflict of interest")), ("yes", _("I have a conflict of interest"))],
        coerce=lambda value: value == "yes", widget=forms.RadioSelect,
    )
    details = forms.CharField(
        label=_("Details of the conflict"), widget=forms.Textarea(attrs={"rows": 2}), required=False,
        help_text=_("Required if you have a conflict; you are then recused from the decision."),
    )


class ExplanationForm(forms.Form):
    explanation = forms.CharField(label=_("Researchers' explanation and questions"), widget=_TEXTAREA)


class NotifiedToHeadForm(forms.Form):
    on = forms.DateField(label=_("Opinion notified to the head on"), widget=forms.DateInput(attrs={"type": "date"}))


class NoncomplianceReportForm(forms.Form):
    body = forms.CharField(label=_("What happened and what was done"), widget=_TEXTAREA)


class NoncomplianceOpinionForm(forms.Form):
    opinion = forms.CharField(label=_("Committee opinion"), widget=_TEXTAREA)


class ConditionsAnswerForm(forms.Form):
    answer = forms.CharField(label=_("Answer to the conditions"), widget=_TEXTAREA)


class ConditionsVerifyForm(forms.Form):
    accepted = forms.TypedChoiceField(
        label=_("The answer"),
        choices=[("yes", _("meets the conditions")), ("no", _("does not yet meet the conditions"))],
        coerce=lambda value: value == "yes", widget=forms.RadioSelect,
    )
    note = forms.CharField(label=_("Note to the applicant"), widget=_TEXTAREA, required=False)


class HeadDecisionForm(forms.Form):
    permitted = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[("yes", _("Permit the research")), ("no", _("Do not permit the research"))],
        coerce=lambda value: value == "yes", widget=forms.RadioSelect,
    )
    conditions = forms.CharField(label=_("Conditions"), widget=_TEXTAREA, required=False)
    reasons = forms.CharField(label=_("Reasons"), widget=_TEXTAREA, required=False)


class AmendmentForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind of amendment"),
        choices=[
            (ProtocolVersion.Kind.MINOR_AMENDMENT.value, ProtocolVersion.Kind.MINOR_AMENDMENT.label),
            (ProtocolVersion.Kind.MAJOR_AMENDMENT.value, ProtocolVersion.Kind.MAJOR_AMENDMENT.label),
        ],
    )
    summary = forms.CharField(label=_("Summary of changes"), widget=_TEXTAREA)


class RevisionForm(forms.Form):
    """Revise a deferred protocol (継続審査) into a new version to resubmit."""

    summary = forms.CharField(
        label=_("Summary of changes"), widget=_TEXTAREA,
        help_text=_("What you change in answer to the committee's opinion and comments."),
    )


class CompletionReportForm(forms.Form):
    report = forms.CharField(label=_("Completion report (summary of results)"), widget=_TEXTAREA)


class DiscontinuationReportForm(forms.Form):
    report = forms.CharField(
        label=_("Discontinuation report (why the research stopped and what was done)"), widget=_TEXTAREA
    )


class PeriodicReportForm(forms.Form):
    period_end = forms.DateField(
        label=_("Period ending"), widget=forms.DateInput(attrs={"type": "date"})
    )
    subjects_enrolled = forms.IntegerField(label=_("Number of research subjects so far"), min_value=0)
    body = forms.CharField(label=_("Progress and problems"), widget=_TEXTAREA)
