"""What the AI API accepts: the input serializers of its writes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

from portal.datasets.models import DatasetRelease


class VersionUploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A new version: the ONNX file and its card (multipart; lists as repeated fields or JSON)."""

    version = serializers.CharField(max_length=40)
    artefact = serializers.FileField(help_text="The ONNX file.")
    labels = serializers.JSONField(
        help_text='In the order of the model\'s output: [{"code": "stomach", "ja": "胃", "en": "Stomach"}, …]'
    )
    input_width = serializers.IntegerField(min_value=1)
    input_height = serializers.IntegerField(min_value=1)
    input_channels = serializers.IntegerField(min_value=1)
    input_mean = serializers.ListField(child=serializers.FloatField(), allow_empty=False)
    input_std = serializers.ListField(child=serializers.FloatField(), allow_empty=False)
    intended_use_ja = serializers.CharField()
    intended_use_en = serializers.CharField(required=False, allow_blank=True, default="")
    limitations_ja = serializers.CharField()
    limitations_en = serializers.CharField(required=False, allow_blank=True, default="")
    training_data_ja = serializers.CharField()
    training_data_en = serializers.CharField(required=False, allow_blank=True, default="")
    metric_auc = serializers.FloatField(required=False, allow_null=True, default=None)
    metric_accuracy = serializers.FloatField(required=False, allow_null=True, default=None)
    metric_sensitivity = serializers.FloatField(required=False, allow_null=True, default=None)
    metric_specificity = serializers.FloatField(required=False, allow_null=True, default=None)
    evaluation_set_size = serializers.IntegerField(min_value=1)
    training_releases = serializers.PrimaryKeyRelatedField(
        queryset=DatasetRelease.objects.all(), many=True, required=False
    )
    evaluation_releases = serializers.PrimaryKeyRelatedField(
        queryset=DatasetRelease.objects.all(), many=True, required=False
    )

    _LISTS = ("input_mean", "input_std", "training_releases", "evaluation_releases")

    def to_internal_value(self, data: Any) -> Any:
        # Multipart clients send the lists as one JSON text ("[0.5, 0.5, 0.5]") or as repeated fields.
        if isinstance(data, QueryDict):
            # A shallow copy: QueryDict.copy() deep-copies, which the uploaded file does not survive.
            parsed = QueryDict(mutable=True)
            for name in data:
                values = data.getlist(name)
                if (name in self._LISTS and len(values) == 1 and isinstance(values[0], str)
                        and values[0].lstrip().startswith("[")):
                    with contextlib.suppress(ValueError):  # else the field reports the bad value
                        values = json.loads(values[0])
                parsed.setlist(name, values)
            data = parsed
        return super().to_internal_value(data)


class VersionRetireSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(help_text="Why the version may no longer be run.")


class AccessRequestCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    purpose = serializers.CharField(help_text="What the model will be used for.")


class AccessRequestDecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    approve = serializers.BooleanField()
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 help_text="Required when rejecting.")


class AccessRevokeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField(help_text="Why the right to run the model is taken back.")


class InferenceJobCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model = serializers.SlugField(help_text="The model's identifier (slug).")
    version = serializers.CharField()
    files = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="Images to upload (JPEG, PNG, DICOM)."
    )
    release_files = serializers.ListField(
        child=serializers.IntegerField(), required=False,
        help_text="Ids of files of a release the caller holds a grant for (instead of uploads).",
    )


