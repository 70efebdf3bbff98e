"""Opt-out notices and request statistics over the API: public, read-only, counts without identities."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.optout.items import NOTICE_ITEMS
from portal.optout.models import OptOutNotice, OptOutNoticeVersion
from portal.optout.selectors import published_notices, request_statistics


class NoticeItemSerializer(serializers.Serializer):
    key = serializers.CharField()
    required = serializers.BooleanField()
    ja = serializers.CharField()
    en = serializers.CharField()


class CurrentVersionSerializer(serializers.ModelSerializer):
    items = serializers.SerializerMethodField()

    class Meta:
        model = OptOutNoticeVersion
        fields = ["number", "published_at", "start_date", "end_date", "change_summary", "items"]
        read_only_fields = fields

    @extend_schema_field(NoticeItemSerializer(many=True))
    def get_items(self, version: OptOutNoticeVersion) -> list[dict[str, Any]]:
        return [
            {"key": item.key, "required": item.required, "ja": getattr(version, f"{item.key}_ja"),
             "en": getattr(version, f"{item.key}_en")}
            for item in NOTICE_ITEMS
        ]


class NoticeListSerializer(serializers.ModelSerializer):
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    protocol = serializers.CharField(source="protocol.number", read_only=True)
    title_ja = serializers.CharField(source="current_version.title_ja", read_only=True)
    title_en = serializers.CharField(source="current_version.title_en", read_only=True)
    version = serializers.IntegerField(source="current_version.number", read_only=True)
    published_at = serializers.DateTimeField(source="current_version.published_at", read_only=True)

    class Meta:
        model = OptOutNotice
        fields = ["reference", "society", "protocol", "title_ja", "title_en", "version", "published_at",
                  "first_published_at"]
        read_only_fields = fields


class NoticeDetailSerializer(NoticeListSerializer):
    current_version = CurrentVersionSerializer(read_only=True)
    datasets = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta(NoticeListSerializer.Meta):
        fields = [*NoticeListSerializer.Meta.fields, "datasets", "current_version"]
        read_only_fields = fields


class NoticeList(generics.ListAPIView):
    """Every published opt-out notice (public)."""

    permission_classes = [AllowAny]
    serializer_class = NoticeListSerializer

    def get_queryset(self) -> QuerySet[OptOutNotice]:
        return published_notices()


class NoticeDetail(generics.RetrieveAPIView):
    """One published notice with every item of its current version (public)."""

    permission_classes = [AllowAny]
    serializer_class = NoticeDetailSerializer
    lookup_field = "reference"

    def get_queryset(self) -> QuerySet[OptOutNotice]:
        return published_notices().prefetch_related("datasets")


class StatisticsRowSerializer(serializers.Serializer):
    society = serializers.CharField()
    society_name_ja = serializers.CharField()
    society_name_en = serializers.CharField()
    year = serializers.IntegerField()
    requests = serializers.IntegerField()
    closed = serializers.IntegerField()


class Statistics(APIView):
    """Opt-out requests received, by society and year: counts only, never identities (public)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=StatisticsRowSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(StatisticsRowSerializer(request_statistics(), many=True).data)
