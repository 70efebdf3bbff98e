"""Anonymisation jobs over the API (read-only): the jobs of the societies the caller administers."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated

from portal.deid.models import DeidJob
from portal.deid.selectors import jobs_visible_to


class DeidJobSerializer(serializers.ModelSerializer):
    society = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    dataset = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = DeidJob
        fields = ("id", "society", "dataset", "source_kind", "options", "status", "total", "done",
                  "held_back", "failed", "created_at", "started_at", "finished_at", "report")
        read_only_fields = fields


class _Pages(CursorPagination):
    ordering = "-id"
    page_size = 50


class DeidJobList(generics.ListAPIView):
    serializer_class = DeidJobSerializer
    permission_classes = [IsAuthenticated]
    pagination_class = _Pages

    def get_queryset(self) -> QuerySet[DeidJob]:
        return jobs_visible_to(self.request.user)


class DeidJobDetail(generics.RetrieveAPIView):
    serializer_class = DeidJobSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> QuerySet[DeidJob]:
        return jobs_visible_to(self.request.user)
