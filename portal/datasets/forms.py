"""Forms of the society admins' dataset pages; the services decide, the forms only parse."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.datasets.manifest import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from portal.datasets.models import Dataset
from portal.datasets.services import DATASET_FIELDS, UPLOAD_MAX_BYTES, upload_max_files
from portal.ethics.fields import ProtocolChoiceField
from portal.ethics.models import Protocol
from portal.societies.models import Society

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_TEXTAREA = forms.Textarea(attrs={"rows": 4})


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError next to the fields it names, the rest above the form."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


class DatasetForm(forms.ModelForm):
    """The dataset's description; ``society`` is offered only when creating."""

    society = forms.ModelChoiceField(label=_("Society"), queryset=Society.objects.none(), empty_label=None)

    class Meta:
        model = Dataset
        fields = list(DATASET_FIELDS)
        widgets = {
            "collection_start": _DATE,
            "collection_end": _DATE,
            "description_ja": _TEXTAREA,
            "description_en": _TEXTAREA,
        }
        field_classes = {"protocol": ProtocolChoiceField}
        # Names a newcomer cannot guess: what each is for, where it shows.
        help_texts = {
            "slug": _(
                "An identifier of lower-case letters, digits and hyphens used in the dataset's web address "
                "(/datasets/<identifier>/); it cannot be changed once the dataset is published."
            ),
            "protocol": _(
                "The approved research protocol under which the society collects and provides these images; "
                "its opt-out notice and every grant rest on it."
            ),
            "legal_status": _(
                "How the data are processed under the Act on the Protection of Personal Information; it decides "
                "which applications may receive them."
            ),
            "access_tier": _(
                "What is given out and to whom: the description only, images after review, or images after review "
                "with commercial use allowed."
            ),
            "annotation_granularity": _(
                "How finely the images are annotated: from no annotation, through a label per image, to outlines "
                "of single cells."
            ),
            "annotation_format": _("The file format of the annotations, e.g. GeoJSON, COCO JSON or PNG masks."),
        }

    def __init__(self, *args: Any, societies: Any = None, fixed: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        protocol = self.fields["protocol"]
        assert isinstance(protocol, forms.ModelChoiceField)
        protocol.queryset = Protocol.objects.exclude(number=None).order_by("number")
        if societies is None:
            del self.fields["society"]
        else:
            society = self.fields["society"]
            assert isinstance(society, forms.ModelChoiceField)
            society.queryset = societies
        for name in fixed:
            if name in self.fields:
                self.fields[name].disabled = True

    def validate_unique(self) -> None:
        # The service checks the slug (with a message of its own) under its transaction.
        pass

    def _post_clean(self) -> None:
        # The service validates and saves; the instance is not touched here.
        pass

    def service_fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.cleaned_data.items()
                if name in DATASET_FIELDS and name not in self._disabled()}

    def _disabled(self) -> set[str]:
        return {name for name, field in self.fields.items() if field.disabled}


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=_TEXTAREA)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        items = data if isinstance(data, list | tuple) else [data]
        items = [item for item in items if item]
        if not items and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


class ReleaseUploadForm(forms.Form):
    files = MultipleFileField(label=_("Files to upload"))
    manifest = forms.FileField(label=_("Manifest (CSV or TSV)"))
    notes_ja = forms.CharField(label=_("Release notes (Japanese)"), widget=_TEXTAREA, required=False)
    notes_en = forms.CharField(label=_("Release notes (English)"), widget=_TEXTAREA, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["files"].help_text = _(
            "At most %(count)s files and %(megabytes)s MB at a time; use the release_import command for more."
        ) % {"count": upload_max_files(), "megabytes": UPLOAD_MAX_BYTES // (1024 * 1024)}
        self.fields["manifest"].help_text = _(
            "UTF-8, with a header row. Columns: %(required)s; optional: %(optional)s. Each column is described "
            "under “The manifest” below."
        ) % {"required": ", ".join(REQUIRED_COLUMNS), "optional": ", ".join(OPTIONAL_COLUMNS)}
