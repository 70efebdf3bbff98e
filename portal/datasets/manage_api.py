"""A society's dataset management over the API, as on its pages: create and edit a dataset, publish
and withdraw it, withdraw a release. Objects are found by the pages' own check (404 for outsiders, 403 for members of
the society without the right) and each endpoint calls the page's service; a refusal changes nothing
(400 with the messages: the datasets' workflow refuses with ``ValidationError``)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.core.api import call_service
from portal.datasets import services
from portal.datasets.models import Dataset, DatasetRelease
from portal.datasets.selectors import may_see_managed_dataset
from portal.datasets.views import _managed_dataset, _managed_release
from portal.ethics.models import Protocol
from portal.societies.models import Society


class ManagedDatasetStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    # A plain string, as in the catalogue API (another enum named "status" would collide).
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "slug", "status", "published_at"]
        read_only_fields = fields


class ManagedReleaseStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    status = serializers.CharField(read_only=True)

    class Meta:
        model = DatasetRelease
        fields = ["id", "version", "status"]
        read_only_fields = fields


class ManagedDatasetInputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The dataset form's fields; the service refuses what may no longer change (slug, protocol)."""

    protocol = serializers.PrimaryKeyRelatedField(queryset=Protocol.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Dataset
        fields = list(services.DATASET_FIELDS)
        extra_kwargs = {name: {"required": False} for name in services.DATASET_FIELDS}


class ManagedDatasetCreateSerializer(ManagedDatasetInputSerializer):
    society = serializers.SlugRelatedField(slug_field="slug", queryset=Society.objects.all())

    class Meta(ManagedDatasetInputSerializer.Meta):
        fields = ["society", *services.DATASET_FIELDS]


class DatasetReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField()


class DatasetCreate(APIView):
    """An admin of the society creates a draft dataset."""

    @extend_schema(request=ManagedDatasetCreateSerializer, responses={201: ManagedDatasetStateSerializer})
    def post(self, request: Request) -> Response:
        if not may_see_managed_dataset(request.user):
            raise PermissionDenied
        parsed = ManagedDatasetCreateSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        data = dict(parsed.validated_data)
        dataset = call_service(services.dataset_create, society=data.pop("society"), by=request.user, **data)
        return Response(ManagedDatasetStateSerializer(dataset).data, status=201)


class DatasetEdit(APIView):
    """Change the dataset's fields (what may no longer change is refused by field)."""

    @extend_schema(request=ManagedDatasetInputSerializer, responses=ManagedDatasetStateSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        dataset = _managed_dataset(request, pk)  # type: ignore[arg-type]
        parsed = ManagedDatasetInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.dataset_update, dataset=dataset, by=request.user, **parsed.validated_data)
        return Response(ManagedDatasetStateSerializer(Dataset.objects.get(pk=pk)).data)


class DatasetPublish(APIView):
    """Publish the dataset in the catalogue (its checks name what is missing)."""

    @extend_schema(request=None, responses=ManagedDatasetStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        dataset = _managed_dataset(request, pk)  # type: ignore[arg-type]
        call_service(services.dataset_publish, dataset=dataset, by=request.user)
        return Response(ManagedDatasetStateSerializer(Dataset.objects.get(pk=pk)).data)


class DatasetWithdraw(APIView):
    """Withdraw the dataset from the catalogue."""

    @extend_schema(request=DatasetReasonSerializer, responses=ManagedDatasetStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        dataset = _managed_dataset(request, pk)  # type: ignore[arg-type]
        parsed = DatasetReasonSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.dataset_withdraw, dataset=dataset, by=request.user, **parsed.validated_data)
        return Response(ManagedDatasetStateSerializer(Dataset.objects.get(pk=pk)).data)


class ReleaseWithdraw(APIView):
    """Withdraw a release: its files are no longer offered."""

    @extend_schema(request=DatasetReasonSerializer, responses=ManagedReleaseStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        release = _managed_release(request, pk)  # type: ignore[arg-type]
        parsed = DatasetReasonSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.release_withdraw, release=release, by=request.user, **parsed.validated_data)
        return Response(ManagedReleaseStateSerializer(DatasetRelease.objects.get(pk=pk)).data)
