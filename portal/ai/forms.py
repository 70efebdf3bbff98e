"""Forms of the hosted-AI pages: they parse input; the services in ``portal.ai.services`` decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from portal.ai.models import AIModel
from portal.core.vocabulary import Modality
from portal.datasets.models import DatasetRelease
from portal.deid.forms import MultipleFileField, MultipleFileInput
from portal.societies.models import Society


class IdsField(forms.Field):
    """Several integer ids given under one name (ticked checkboxes)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        try:
            return sorted({int(item) for item in value})
        except (TypeError, ValueError) as error:
            raise ValidationError(_("Choose files from the list.")) from error


class RunForm(forms.Form):
    """Images to run a model on: uploaded files, or files ticked in one granted release."""

    source = forms.ChoiceField(
        label=_("Images"), widget=forms.RadioSelect, initial="upload",
        choices=[("upload", _("Upload images")), ("release", _("Files of a release you hold a grant for"))],
    )
    uploads = MultipleFileField(
        label=_("Image files"), required=False,
        widget=MultipleFileInput(attrs={"accept": ".jpg,.jpeg,.png,.dcm,image/jpeg,image/png,application/dicom"}),
        help_text=_("JPEG, PNG or DICOM. Metadata is removed before the images are stored."),
    )
    release = forms.ModelChoiceField(label=_("Release"), queryset=DatasetRelease.objects.none(), required=False)
    # Rendered as the paged list of ticks on the run page; checked against the release in clean().
    release_files = IdsField(label=_("Files of the release"), required=False)

    def __init__(self, *args: Any, releases: QuerySet[DatasetRelease], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["release"].queryset = releases
        self.fields["release"].label_from_instance = release_label

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") == "release":
            if not data.get("release"):
                self.add_error("release", _("Choose a release."))
            elif not data.get("release_files"):
                self.add_error("release_files", _("Tick at least one file of the release."))
        elif data.get("source") == "upload" and not data.get("uploads"):
            self.add_error("uploads", _("Choose at least one image file."))
        return data


def release_label(release: DatasetRelease) -> str:
    return f"{release.dataset.title} v{release.version}"


class AccessRequestForm(forms.Form):
    purpose = forms.CharField(
        label=_("Purpose of use"), max_length=4000, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What you will use the model for, and on which images."),
    )


class ModelForm(forms.Form):
    """A new model of a society (``model_create``); editing uses the same fields less the fixed ones."""

    society = forms.ModelChoiceField(label=_("Owner society"), queryset=Society.objects.none())
    slug = forms.SlugField(
        label=_("Identifier"), max_length=80,
        help_text=_("Lower-case letters, digits and hyphens; it appears in the page's address."),
    )
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200, required=False)
    task = forms.ChoiceField(label=_("Task"), choices=AIModel.Task.choices, initial=AIModel.Task.CLASSIFICATION)
    modality = forms.ChoiceField(label=_("Input modality"), choices=Modality.choices)
    summary_ja = forms.CharField(label=_("Summary (Japanese)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    summary_en = forms.CharField(label=_("Summary (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    open_to_grant_holders = forms.BooleanField(
        label=_("Holders of a grant on a dataset of the society may run it"), required=False,
        help_text=_("Otherwise every user needs an approved access request."),
    )
    is_demo = forms.BooleanField(label=_("Demo model trained on synthetic data"), required=False)

    def __init__(self, *args: Any, societies: QuerySet[Society], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["society"].queryset = societies


class ModelEditForm(forms.Form):
    name_ja = forms.CharField(label=_("Name (Japanese)"), max_length=200)
    name_en = forms.CharField(label=_("Name (English)"), max_length=200, required=False)
    summary_ja = forms.CharField(label=_("Summary (Japanese)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    summary_en = forms.CharField(label=_("Summary (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    open_to_grant_holders = forms.BooleanField(
        label=_("Holders of a grant on a dataset of the society may run it"), required=False,
        help_text=_("Otherwise every user needs an approved access request."),
    )


def _floats(text: str) -> list[float]:
    parts = [part.strip() for part in text.replace("、", ",").split(",") if part.strip()]
    try:
        return [float(part) for part in parts]
    except ValueError as error:
        raise ValidationError(_("Enter numbers separated by commas, for example 0.485, 0.456, 0.406.")) from error


class VersionUploadForm(forms.Form):
    """An ONNX file and its card. Labels are lines ``code,日本語,English`` in the model's output order."""

    version = forms.CharField(label=_("Version"), max_length=40, help_text=_("For example 1.0.0."))
    artefact = forms.FileField(label=_("ONNX file"), help_text=_("The model exported to ONNX (.onnx)."))
    labels = forms.CharField(
        label=_("Labels"), widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One line per output, in the model's output order: code,日本語,English"),
    )
    input_width = forms.IntegerField(label=_("Input width (pixels)"), min_value=1, max_value=8192)
    input_height = forms.IntegerField(label=_("Input height (pixels)"), min_value=1, max_value=8192)
    input_channels = forms.TypedChoiceField(
        label=_("Input channels"), coerce=int, initial=3,
        choices=[(3, _("3 (RGB)")), (1, _("1 (greyscale)"))],
    )
    input_mean = forms.CharField(
        label=_("Normalisation mean per channel"), initial="0.5, 0.5, 0.5",
        help_text=_("Pixels are scaled to 0..1, then (value − mean) / standard deviation per channel."),
    )
    input_std = forms.CharField(label=_("Normalisation standard deviation per channel"), initial="0.25, 0.25, 0.25")
    intended_use_ja = forms.CharField(label=_("Intended use (Japanese)"), widget=forms.Textarea(attrs={"rows": 3}))
    intended_use_en = forms.CharField(label=_("Intended use (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    limitations_ja = forms.CharField(label=_("Limitations (Japanese)"), widget=forms.Textarea(attrs={"rows": 3}))
    limitations_en = forms.CharField(label=_("Limitations (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    training_data_ja = forms.CharField(label=_("Training data (Japanese)"), widget=forms.Textarea(attrs={"rows": 3}))
    training_data_en = forms.CharField(label=_("Training data (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    metric_auc = forms.FloatField(label=_("AUC"), required=False, min_value=0, max_value=1)
    metric_accuracy = forms.FloatField(label=_("Accuracy"), required=False, min_value=0, max_value=1)
    metric_sensitivity = forms.FloatField(label=_("Sensitivity"), required=False, min_value=0, max_value=1)
    metric_specificity = forms.FloatField(label=_("Specificity"), required=False, min_value=0, max_value=1)
    evaluation_set_size = forms.IntegerField(label=_("Size of the evaluation set (images)"), min_value=0)
    training_releases = forms.ModelMultipleChoiceField(
        label=_("Trained on releases"), queryset=DatasetRelease.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    evaluation_releases = forms.ModelMultipleChoiceField(
        label=_("Evaluated on releases"), queryset=DatasetRelease.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, releases: QuerySet[DatasetRelease], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("training_releases", "evaluation_releases"):
            self.fields[name].queryset = releases
            self.fields[name].label_from_instance = release_label

    def clean_labels(self) -> list[dict[str, str]]:
        labels = []
        for number, line in enumerate(self.cleaned_data["labels"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split(",")]
            if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
                raise ValidationError(
                    _("Line %(number)s: write code,日本語,English (the English name may be left out)."),
                    params={"number": number},
                )
            labels.append({"code": parts[0], "ja": parts[1], "en": parts[2] if len(parts) == 3 else ""})
        if len(labels) < 2:
            raise ValidationError(_("Enter at least two labels, one per line."))
        return labels

    def clean_input_mean(self) -> list[float]:
        return _floats(self.cleaned_data["input_mean"])

    def clean_input_std(self) -> list[float]:
        return _floats(self.cleaned_data["input_std"])

    def metrics(self) -> dict[str, float]:
        return {
            name: self.cleaned_data[f"metric_{name}"]
            for name in ("auc", "accuracy", "sensitivity", "specificity")
            if self.cleaned_data.get(f"metric_{name}") is not None
        }


class RetireForm(forms.Form):
    reason = forms.CharField(label=_("Reason for retiring"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class DecisionForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("Decision"), coerce=lambda value: value == "1", widget=forms.RadioSelect,
        choices=[("1", _("Approve")), ("0", _("Reject"))],
    )
    note = forms.CharField(
        label=_("Note on the decision"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required when you reject."),
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(label=_("Reason for revoking"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's refusal on the form: on the field it names, else on the whole form."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)
