"""Views of models, versions and model access requests."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.ai import services
from portal.ai.api._common import _calling, _model_or_404, _version_or_404
from portal.ai.api.inputs import (
    AccessRequestCreateSerializer,
    AccessRequestDecisionSerializer,
    AccessRevokeSerializer,
    VersionRetireSerializer,
    VersionUploadSerializer,
)
from portal.ai.api.serializers import (
    AIModelAccessRequestSerializer,
    AIModelDetailSerializer,
    AIModelListSerializer,
    ModelVersionSerializer,
    _card_versions,
)
from portal.ai.models import AIModel, ModelAccessRequest, ModelVersion
from portal.ai.selectors import (
    may_manage_model,
    models_visible_to,
    runnable_model_ids,
    versions_visible_to,
)
from portal.datasets.selectors import is_operator, managed_society_ids


class AIModelList(generics.ListAPIView):
    """The models the caller may see, with ``may_run`` for each (public, like the models page)."""

    serializer_class = AIModelListSerializer
    permission_classes = [AllowAny]

    def get_queryset(self) -> QuerySet[AIModel]:
        return (
            models_visible_to(self.request.user)
            .select_related("society")
            .prefetch_related("versions")
            .order_by("society_id", "slug")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        assert page is not None  # the API always pages lists
        context = {**self.get_serializer_context(), "runnable_ids": runnable_model_ids(request.user, list(page))}
        return self.get_paginated_response(self.serializer_class(page, many=True, context=context).data)


class AIModelDetail(APIView):
    """The model card (public, like the card page); 404 for a model the caller may not see."""

    permission_classes = [AllowAny]

    @extend_schema(responses=AIModelDetailSerializer)
    def get(self, request: Request, slug: str) -> Response:
        model = _model_or_404(request.user, slug)
        return Response(AIModelDetailSerializer(model, context={"request": request}).data)


class ModelVersionCreate(APIView):
    """Upload a new version (draft) of a model: its society's admins and the operator."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": VersionUploadSerializer},
                   responses={201: ModelVersionSerializer})
    def post(self, request: Request, slug: str) -> Response:
        model = _model_or_404(request.user, slug)
        if not may_manage_model(request.user, model):
            raise PermissionDenied(_("Only the admins of the model's society may upload versions."))
        form = VersionUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        metrics = {
            name: data[f"metric_{name}"]
            for name in ("auc", "accuracy", "sensitivity", "specificity")
            if data[f"metric_{name}"] is not None
        }
        version = _calling(
            services.version_upload,
            model=model, version=data["version"], artefact=data["artefact"], labels=data["labels"],
            input_width=data["input_width"], input_height=data["input_height"],
            input_channels=data["input_channels"], input_mean=data["input_mean"],
            input_std=data["input_std"], intended_use_ja=data["intended_use_ja"],
            intended_use_en=data["intended_use_en"], limitations_ja=data["limitations_ja"],
            limitations_en=data["limitations_en"], training_data_ja=data["training_data_ja"],
            training_data_en=data["training_data_en"], metrics=metrics,
            evaluation_set_size=data["evaluation_set_size"],
            training_releases=data.get("training_releases", []),
            evaluation_releases=data.get("evaluation_releases", []), by=request.user,
        )
        version = _card_versions(ModelVersion.objects.filter(pk=version.pk)).get()
        version.model = model
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ModelVersionDetail(APIView):
    """One version's card (public; drafts only for the model's managers)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request: Request, slug: str, version: str) -> Response:
        model = _model_or_404(request.user, slug)
        found = get_object_or_404(_card_versions(versions_visible_to(request.user, model)), version=version)
        found.model = model
        return Response(ModelVersionSerializer(found).data)


class ModelVersionPublish(APIView):
    """Publish a draft version: from now on it may be run."""

    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request: Request, slug: str, version: str) -> Response:
        model = _model_or_404(request.user, slug)
        found = _version_or_404(request.user, model, version)
        _calling(services.version_publish, version=found, by=request.user)
        return _version_response(model, found.pk)


class ModelVersionRetire(APIView):
    """Retire a version: it stays on the card but may no longer be run."""

    @extend_schema(request=VersionRetireSerializer, responses=ModelVersionSerializer)
    def post(self, request: Request, slug: str, version: str) -> Response:
        model = _model_or_404(request.user, slug)
        found = _version_or_404(request.user, model, version)
        form = VersionRetireSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        _calling(services.version_retire, version=found, reason=form.validated_data["reason"], by=request.user)
        return _version_response(model, found.pk)


def _version_response(model: AIModel, pk: int) -> Response:
    version = _card_versions(ModelVersion.objects.filter(pk=pk)).get()
    version.model = model
    return Response(ModelVersionSerializer(version).data)


class ModelAccessRequestCreate(APIView):
    """Ask to run a model (a light request a society admin decides)."""

    @extend_schema(request=AccessRequestCreateSerializer, responses={201: AIModelAccessRequestSerializer})
    def post(self, request: Request, slug: str) -> Response:
        model = _model_or_404(request.user, slug)
        form = AccessRequestCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        created = _calling(
            services.access_request_submit, model=model, user=request.user,
            purpose=form.validated_data["purpose"],
        )
        return Response(AIModelAccessRequestSerializer(created).data, status=status.HTTP_201_CREATED)


def _requests_decidable_by(user: Any) -> QuerySet[ModelAccessRequest]:
    if is_operator(user):
        return ModelAccessRequest.objects.all()
    return ModelAccessRequest.objects.filter(model__society_id__in=managed_society_ids(user))


class ModelAccessRequestList(generics.ListAPIView):
    """The caller's own requests; with ``?to_decide=1`` the submitted requests they may decide."""

    serializer_class = AIModelAccessRequestSerializer

    @extend_schema(parameters=[OpenApiParameter(
        "to_decide", OpenApiTypes.BOOL,
        description="Requests waiting for the caller's decision (society admins, operator).",
    )])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[ModelAccessRequest]:
        user = self.request.user
        if self.request.query_params.get("to_decide") in {"1", "true", "yes"}:
            requests = _requests_decidable_by(user).filter(status=ModelAccessRequest.Status.SUBMITTED)
        else:
            requests = ModelAccessRequest.objects.filter(user=user)  # type: ignore[misc]
        return requests.select_related("model", "user").order_by("-created_at", "-id")


def _access_request_or_404(user: Any, pk: int) -> ModelAccessRequest:
    """The caller's own requests and those they may decide; any other answers 404."""
    visible = ModelAccessRequest.objects.filter(
        Q(user=user) | Q(pk__in=_requests_decidable_by(user).values("pk"))
    )
    return get_object_or_404(visible.select_related("model", "user"), pk=pk)


class ModelAccessRequestDecision(APIView):
    """Approve or reject a submitted request (admins of the model's society)."""

    @extend_schema(request=AccessRequestDecisionSerializer, responses=AIModelAccessRequestSerializer)
    def post(self, request: Request, pk: int) -> Response:
        access_request = _access_request_or_404(request.user, pk)
        form = AccessRequestDecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        decided = _calling(
            services.access_request_decide, request=access_request,
            approve=form.validated_data["approve"], note=form.validated_data["note"], by=request.user,
        )
        return Response(AIModelAccessRequestSerializer(decided).data)


class ModelAccessRequestWithdraw(APIView):
    """The requester takes back a request still waiting for a decision."""

    @extend_schema(request=None, responses=AIModelAccessRequestSerializer)
    def post(self, request: Request, pk: int) -> Response:
        access_request = _access_request_or_404(request.user, pk)
        withdrawn = _calling(services.access_request_withdraw, request=access_request, by=request.user)
        return Response(AIModelAccessRequestSerializer(withdrawn).data)


class ModelAccessRequestRevoke(APIView):
    """Take back an approved request's right to run the model (admins of the model's society)."""

    @extend_schema(request=AccessRevokeSerializer, responses=AIModelAccessRequestSerializer)
    def post(self, request: Request, pk: int) -> Response:
        access_request = _access_request_or_404(request.user, pk)
        form = AccessRevokeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        revoked = _calling(
            services.access_revoke, request=access_request, reason=form.validated_data["reason"],
            by=request.user,
        )
        return Response(AIModelAccessRequestSerializer(revoked).data)


