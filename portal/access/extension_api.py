"""The one-click extension in the API: ``GET /api/v1/access/grants/<pk>/extension-prefill/`` answers
the extension request pre-filled from the grant (the page's ``?extend=1``), ready to send to the
amendment endpoint; ``GET /api/v1/access/amendments/<pk>/changes/`` answers what a request changes."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.access.amendment_prefill import amendment_changes, extension_prefill
from portal.access.amendment_selectors import amendments_visible_to
from portal.access.models import Grant
from portal.access.selectors import grant_role
from portal.access.services.amendments import may_request


class ExtensionPrefillSerializer(serializers.Serializer):  # type: ignore[type-arg]
    grant = serializers.IntegerField()
    current_last_day = serializers.DateField()
    new_expires_on = serializers.DateField(allow_null=True, help_text="Null when the period is at its limit.")
    limit = serializers.DateField(help_text="The latest last day of use the period may reach.")
    users_to_add = serializers.ListField(child=serializers.IntegerField())
    users_to_remove = serializers.ListField(child=serializers.IntegerField())
    reason = serializers.CharField(allow_blank=True)
    users = serializers.ListField(child=serializers.EmailField(), help_text="The named users, unchanged.")
    purpose = serializers.CharField(allow_blank=True, help_text="The purpose, unchanged.")


class ExtensionPrefill(APIView):
    """The usual extension of a grant, pre-filled: same users and purpose (applicant or PI only)."""

    @extend_schema(responses=ExtensionPrefillSerializer)
    def get(self, request: Request, pk: int, *args: Any, **kwargs: Any) -> Response:
        grant = get_object_or_404(Grant.objects.select_related("access_request"), pk=pk)
        if not may_request(request.user, grant):
            if grant_role(request.user, grant):
                raise PermissionDenied
            raise NotFound
        return Response(extension_prefill(grant).as_data())


class ChangeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField()
    label = serializers.CharField()
    before = serializers.CharField(allow_blank=True)
    after = serializers.CharField(allow_blank=True)
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    changed = serializers.BooleanField()


class AmendmentChanges(APIView):
    """What an extension or change of users changes: the fields that differ from the grant first."""

    @extend_schema(responses=ChangeSerializer(many=True))
    def get(self, request: Request, pk: int, *args: Any, **kwargs: Any) -> Response:
        amendment = amendments_visible_to(request.user).filter(pk=pk).first()
        if amendment is None:
            raise NotFound
        return Response(ChangeSerializer(amendment_changes(amendment), many=True).data)
