"""Forms of the opt-out pages: they parse input; the services decide and change things."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organization, User
from portal.core.vocabulary import Modality
from portal.datasets.models import Dataset
from portal.ethics.fields import ProtocolChoiceField, ProtocolMultipleChoiceField
from portal.ethics.models import Protocol, ProtocolStatus
from portal.optout.items import NOTICE_ITEMS, VERSION_FIELDS
from portal.optout.models import OptOutNoticeVersion, OptOutRequest
from portal.optout.selectors import societies_for_notices, societies_for_requests

_TEXTAREA = forms.Textarea(attrs={"rows": 3})
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError next to the fields it names, the rest above the form."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _protocols() -> QuerySet[Protocol]:
    # Protocols that have been approved at some point; publishing checks they allow data to flow.
    return Protocol.objects.filter(number__isnull=False).exclude(
        status__in=[ProtocolStatus.DRAFT, ProtocolStatus.WITHDRAWN, ProtocolStatus.NOT_APPROVED,
                    ProtocolStatus.NOT_SUBJECT, ProtocolStatus.DENIED]
    ).order_by("number")


class NoticeVersionForm(forms.ModelForm):  # type: ignore[type-arg]
    """The notice's items in Japanese and English, its dates, and the datasets it covers."""

    datasets = forms.ModelMultipleChoiceField(
        label=_("Datasets covered"), queryset=Dataset.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Only the society's own datasets resting on the notice's research protocol."),
    )

    class Meta:
        model = OptOutNoticeVersion
        fields = [name for name in VERSION_FIELDS if name != "change_summary"] + ["change_summary"]
        widgets = {
            **{f"{item.key}_{lang}": _TEXTAREA for item in NOTICE_ITEMS if item.key != "title" for lang in ("ja", "en")},
            "start_date": _DATE,
            "end_date": _DATE,
            "change_summary": _TEXTAREA,
        }

    def __init__(self, *args: Any, datasets: QuerySet[Dataset], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A draft may be saved incomplete; publishing lists what is still missing.
        for name, field in self.fields.items():
            field.required = name == "title_ja"
        self.fields["datasets"].queryset = datasets  # type: ignore[attr-defined]
        if self.instance.pk:
            self.fields["datasets"].initial = list(self.instance.datasets.values_list("pk", flat=True))
            if self.instance.number == 1:
                del self.fields["change_summary"]
        else:
            del self.fields["change_summary"]

    def version_payload(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields if name in self.fields}


class NoticeCreateForm(NoticeVersionForm):
    society = forms.ModelChoiceField(label=_("Society"), queryset=None, empty_label=None)  # type: ignore[arg-type]
    protocol = ProtocolChoiceField(label=_("Research protocol"))
    field_order = ["society", "protocol", "datasets"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        societies = societies_for_notices(user)
        super().__init__(*args, datasets=Dataset.objects.filter(society__in=societies).order_by("society_id", "id"),
                         **kwargs)
        self.fields["society"].queryset = societies  # type: ignore[attr-defined]
        self.fields["protocol"].queryset = _protocols()  # type: ignore[attr-defined]
        self.fields["society"].required = True
        self.fields["protocol"].required = True


class ChangeSummaryForm(forms.Form):
    change_summary = forms.CharField(label=_("What changes in the new version"), widget=_TEXTAREA)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=_TEXTAREA)


class NeverRedisplayedInput(forms.TextInput):
    """A text box that never shows a submitted value again (for the raw patient ID)."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        return super().get_context(name, None, attrs)


class RequestRecordForm(forms.Form):
    society = forms.ModelChoiceField(label=_("Society"), queryset=None, empty_label=None)  # type: ignore[arg-type]
    institution = forms.ModelChoiceField(
        label=_("Institution that received the request"), queryset=None, required=False,  # type: ignore[arg-type]
    )
    institution_code = forms.CharField(
        label=_("Institution code"), max_length=50,
        help_text=_("The code the institution uses when pseudonymising its data."),
    )
    patient_id = forms.CharField(
        label=_("Patient ID at the institution"), max_length=100,
        widget=NeverRedisplayedInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            "Turned into the society-common pseudonym at once; the ID itself is neither stored nor shown "
            "again. If the form is returned with an error, enter it again."
        ),
    )
    received_at = forms.DateTimeField(label=_("Received at"), widget=_DATETIME)
    channel = forms.ChoiceField(label=_("How it was received"), choices=OptOutRequest.Channel.choices)
    requester_type = forms.ChoiceField(label=_("Requester"), choices=OptOutRequest.RequesterType.choices)
    identity_verification = forms.CharField(label=_("How identity was verified"), max_length=300)
    all_protocols = forms.BooleanField(label=_("All research"), required=False, initial=True)
    protocols = ProtocolMultipleChoiceField(
        label=_("Research concerned"), required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("Only when the request does not cover all research."),
    )
    modalities = forms.MultipleChoiceField(
        label=_("Modalities concerned"), choices=Modality.choices, required=False,
        widget=forms.CheckboxSelectMultiple, help_text=_("Leave empty for every modality."),
    )
    extent = forms.ChoiceField(label=_("Extent"), choices=OptOutRequest.Extent.choices, widget=forms.RadioSelect)
    action_taken = forms.ChoiceField(label=_("Action taken"), choices=OptOutRequest.Action.choices)
    reason_not_stopped = forms.CharField(label=_("Reason it cannot be stopped"), required=False, widget=_TEXTAREA)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["society"].queryset = societies_for_requests(user)  # type: ignore[attr-defined]
        self.fields["institution"].queryset = Organization.objects.filter(  # type: ignore[attr-defined]
            kind__in=[Organization.Kind.HOSPITAL, Organization.Kind.UNIVERSITY]
        ).order_by("name_ja")
        self.fields["protocols"].queryset = _protocols()  # type: ignore[attr-defined]
        self.fields["received_at"].initial = timezone.localtime().replace(second=0, microsecond=0)


class NotifyRequesterForm(forms.Form):
    notified_at = forms.DateTimeField(label=_("Requester notified of the result at"), widget=_DATETIME)


class DeletionConfirmForm(forms.Form):
    note = forms.CharField(
        label=_("How the data were deleted"), widget=_TEXTAREA,
        help_text=_("Which copies were deleted, how and when (for example: storage and backups)."),
    )
