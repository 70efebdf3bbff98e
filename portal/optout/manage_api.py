"""Opt-out work over the API, as on the management pages: a society admin's notices (create, edit the
draft, publish, start a new version, withdraw); recording a request to stop (by the society or the
hospital that received it), telling the requester, closing it; a data holder confirming a deletion.

Objects are found as the pages find them (404 for those who may not see them, 403 for those without
any society where they may act) and each endpoint calls the page's service; its refusals change
nothing (409 with the message, 403 for ``PermissionDenied``, 400 for bad input by field).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.models import Organization
from portal.core.api import call_service
from portal.core.vocabulary import Modality
from portal.datasets.models import Dataset
from portal.ethics.models import Protocol
from portal.optout import services
from portal.optout.forms import _protocols
from portal.optout.items import VERSION_FIELDS
from portal.optout.models import (
    DeletionConfirmation,
    OptOutNotice,
    OptOutNoticeVersion,
    OptOutRequest,
)
from portal.optout.selectors import (
    confirmations_of,
    notices_managed_by,
    societies_for_notices,
    societies_for_requests,
)
from portal.optout.workflow import OptOutRefused
from portal.societies.models import Society

REFUSALS = (OptOutRefused,)

# --- Notices -------------------------------------------------------------------------------------


class OptOutNoticeStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = OptOutNotice
        fields = ["id", "reference", "society", "status"]
        read_only_fields = fields


class OptOutNoticeVersionInputSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """The notice's items in Japanese and English and its dates (a draft may be incomplete)."""

    datasets = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Dataset.objects.all(), required=False,
        help_text="Ids of the society's datasets resting on the notice's protocol.")

    class Meta:
        model = OptOutNoticeVersion
        fields = [*VERSION_FIELDS, "datasets"]
        extra_kwargs = {name: {"required": False} for name in VERSION_FIELDS}


class OptOutNoticeCreateSerializer(OptOutNoticeVersionInputSerializer):
    society = serializers.SlugRelatedField(slug_field="slug", queryset=Society.objects.all())
    protocol = serializers.PrimaryKeyRelatedField(queryset=Protocol.objects.all())

    class Meta(OptOutNoticeVersionInputSerializer.Meta):
        fields = ["society", "protocol", *VERSION_FIELDS, "datasets"]
        extra_kwargs = {**OptOutNoticeVersionInputSerializer.Meta.extra_kwargs, "title_ja": {"required": True}}

    def validate_society(self, society: Society) -> Society:
        if not societies_for_notices(self.context["request"].user).filter(pk=society.pk).exists():
            raise serializers.ValidationError(_("You cannot publish notices for this society."))
        return society

    def validate_protocol(self, protocol: Protocol) -> Protocol:
        if not _protocols().filter(pk=protocol.pk).exists():
            raise serializers.ValidationError(_("Choose an approved research protocol."))
        return protocol


class OptOutChangeSummarySerializer(serializers.Serializer):  # type: ignore[type-arg]
    change_summary = serializers.CharField()


class OptOutReasonSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reason = serializers.CharField()


def _notice(request: Request, pk: int) -> OptOutNotice:
    return get_object_or_404(notices_managed_by(request.user), pk=pk)


def _notice_state(pk: int, code: int = status.HTTP_200_OK) -> Response:
    return Response(OptOutNoticeStateSerializer(OptOutNotice.objects.select_related("society").get(pk=pk)).data,
                    status=code)


class NoticeCreate(APIView):
    """A society admin starts a notice with its first version as a draft."""

    @extend_schema(request=OptOutNoticeCreateSerializer, responses={201: OptOutNoticeStateSerializer})
    def post(self, request: Request) -> Response:
        if not societies_for_notices(request.user).exists():
            raise PermissionDenied
        parsed = OptOutNoticeCreateSerializer(data=request.data, context={"request": request})
        parsed.is_valid(raise_exception=True)
        data = dict(parsed.validated_data)
        notice = call_service(services.optout_notice_create, refusals=REFUSALS, by=request.user,
                              society=data.pop("society"), protocol=data.pop("protocol"),
                              datasets=data.pop("datasets", []), **data)
        return _notice_state(notice.pk, status.HTTP_201_CREATED)


class NoticeDraft(APIView):
    """Change the notice's draft version (published versions never change)."""

    @extend_schema(request=OptOutNoticeVersionInputSerializer, responses=OptOutNoticeStateSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        notice = _notice(request, pk)
        parsed = OptOutNoticeVersionInputSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        data = dict(parsed.validated_data)
        call_service(services.optout_notice_update_draft, refusals=REFUSALS, notice=notice, by=request.user,
                     datasets=data.pop("datasets", None), **data)
        return _notice_state(pk)


class NoticePublish(APIView):
    """Publish the draft version (the checks name what is missing)."""

    @extend_schema(request=None, responses=OptOutNoticeStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        notice = _notice(request, pk)
        call_service(services.optout_notice_publish, refusals=REFUSALS, notice=notice, by=request.user)
        return _notice_state(pk)


class NoticeNewVersion(APIView):
    """Start a new draft version of a published notice."""

    @extend_schema(request=OptOutChangeSummarySerializer, responses=OptOutNoticeStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        notice = _notice(request, pk)
        parsed = OptOutChangeSummarySerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.optout_notice_new_version, refusals=REFUSALS, notice=notice, by=request.user,
                     **parsed.validated_data)
        return _notice_state(pk)


class NoticeWithdraw(APIView):
    """Withdraw the notice."""

    @extend_schema(request=OptOutReasonSerializer, responses=OptOutNoticeStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        notice = _notice(request, pk)
        parsed = OptOutReasonSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.optout_notice_withdraw, refusals=REFUSALS, notice=notice, by=request.user,
                     **parsed.validated_data)
        return _notice_state(pk)


# --- Requests to stop ----------------------------------------------------------------------------


class OptOutRequestStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = OptOutRequest
        fields = ["reference", "society", "status", "received_at", "requester_notified_at"]
        read_only_fields = fields


class OptOutRequestRecordSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The request as the page records it; the patient ID becomes the pseudonym and is not kept."""

    society = serializers.SlugRelatedField(slug_field="slug", queryset=Society.objects.all())
    institution = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(kind__in=[Organization.Kind.HOSPITAL, Organization.Kind.UNIVERSITY]),
        required=False, allow_null=True, default=None, help_text="The institution that received the request.")
    institution_code = serializers.CharField(max_length=50)
    patient_id = serializers.CharField(max_length=100, write_only=True)
    received_at = serializers.DateTimeField()
    channel = serializers.ChoiceField(choices=OptOutRequest.Channel.choices)
    requester_type = serializers.ChoiceField(choices=OptOutRequest.RequesterType.choices)
    identity_verification = serializers.CharField(max_length=300)
    all_protocols = serializers.BooleanField(required=False, default=True)
    protocols = serializers.PrimaryKeyRelatedField(many=True, queryset=Protocol.objects.all(), required=False,
                                                   default=list)
    modalities = serializers.ListField(child=serializers.ChoiceField(choices=Modality.choices), required=False,
                                       default=list, help_text="Empty for every modality.")
    extent = serializers.ChoiceField(choices=OptOutRequest.Extent.choices)
    action_taken = serializers.ChoiceField(choices=OptOutRequest.Action.choices)
    reason_not_stopped = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_society(self, society: Society) -> Society:
        if not societies_for_requests(self.context["request"].user).filter(pk=society.pk).exists():
            raise serializers.ValidationError(_("You cannot record requests for this society."))
        return society

    def validate_protocols(self, protocols: list[Protocol]) -> list[Protocol]:
        allowed = set(_protocols().filter(pk__in=[p.pk for p in protocols]).values_list("pk", flat=True))
        if any(p.pk not in allowed for p in protocols):
            raise serializers.ValidationError(_("Choose approved research protocols."))
        return protocols


class OptOutNotifySerializer(serializers.Serializer):  # type: ignore[type-arg]
    notified_at = serializers.DateTimeField()


class OptOutDeletionConfirmSerializer(serializers.Serializer):  # type: ignore[type-arg]
    note = serializers.CharField(help_text="Which copies were deleted, how and when.")


class OptOutDeletionStateSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = DeletionConfirmation
        fields = ["id", "status"]
        read_only_fields = fields


def _handled(request: Request, reference: str) -> OptOutRequest:
    return get_object_or_404(
        OptOutRequest.objects.filter(society__in=societies_for_requests(request.user)).select_related("society"),
        reference=reference,
    )


def _request_state(reference: str, code: int = status.HTTP_200_OK) -> Response:
    optout_request = OptOutRequest.objects.select_related("society").get(reference=reference)
    return Response(OptOutRequestStateSerializer(optout_request).data, status=code)


class RequestRecord(APIView):
    """Record a request to stop (a society's admin or a hospital that handles requests)."""

    @extend_schema(request=OptOutRequestRecordSerializer, responses={201: OptOutRequestStateSerializer})
    def post(self, request: Request) -> Response:
        if not societies_for_requests(request.user).exists():
            raise PermissionDenied
        parsed = OptOutRequestRecordSerializer(data=request.data, context={"request": request})
        parsed.is_valid(raise_exception=True)
        recorded = call_service(services.optout_request_record, refusals=REFUSALS, by=request.user,
                                **parsed.validated_data)
        return _request_state(recorded.reference, status.HTTP_201_CREATED)


class RequestNotify(APIView):
    """Record when the requester was told the result."""

    @extend_schema(request=OptOutNotifySerializer, responses=OptOutRequestStateSerializer)
    def post(self, request: Request, reference: str) -> Response:
        optout_request = _handled(request, reference)
        parsed = OptOutNotifySerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        call_service(services.optout_request_notify_requester, refusals=REFUSALS, request=optout_request,
                     by=request.user, **parsed.validated_data)
        return _request_state(reference)


class RequestClose(APIView):
    """Close a request once every holder confirmed the deletion and the requester was told."""

    @extend_schema(request=None, responses=OptOutRequestStateSerializer)
    def post(self, request: Request, reference: str) -> Response:
        optout_request = _handled(request, reference)
        call_service(services.optout_request_close, refusals=REFUSALS, request=optout_request, by=request.user)
        return _request_state(reference)


class DeletionConfirm(APIView):
    """A data holder confirms that they deleted the subject's files (their own confirmations only)."""

    @extend_schema(request=OptOutDeletionConfirmSerializer, responses=OptOutDeletionStateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        confirmation = get_object_or_404(confirmations_of(request.user), pk=pk)
        parsed = OptOutDeletionConfirmSerializer(data=request.data)
        parsed.is_valid(raise_exception=True)
        done = call_service(services.optout_deletion_confirm, refusals=REFUSALS, confirmation=confirmation,
                            by=request.user, **parsed.validated_data)
        return Response(OptOutDeletionStateSerializer(done).data)
