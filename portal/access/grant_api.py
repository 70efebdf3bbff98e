"""Grants and manifests in the API: ``GET /api/v1/access/grants/`` and a release's manifest with a
fresh signed link per file (``Authorization: Token …``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.access.grant_views import manifest_links, manifest_rows
from portal.access.models import Grant
from portal.access.selectors import grants_of


class GrantReleaseSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    dataset = serializers.CharField(source="dataset.slug")
    version = serializers.IntegerField()
    status = serializers.CharField()


class GrantSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    society = serializers.SerializerMethodField()
    releases = GrantReleaseSerializer(many=True)

    class Meta:
        model = Grant
        fields = ["id", "reference", "status", "paused_reasons", "restricted", "society",
                  "starts_at", "expires_at", "releases"]

    def get_society(self, grant: Grant) -> str | None:
        return grant.society.name_ja if grant.society_id else None


class GrantList(generics.ListAPIView):
    """The grants of the signed-in user (and those of the societies they steward)."""

    serializer_class = GrantSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return grants_of(self.request.user)


class ManifestRowSerializer(serializers.Serializer):  # type: ignore[type-arg]
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    media_type = serializers.CharField()
    link = serializers.URLField()
    expires_at = serializers.DateTimeField()


class GrantManifest(APIView):
    """Every file of a release under a grant, with a fresh signed link each (named users only)."""

    @extend_schema(responses=ManifestRowSerializer(many=True))
    def get(self, request: Request, pk: int, release_pk: int, *args: Any, **kwargs: Any) -> Response:
        links = manifest_links(request._request, request.user, pk, release_pk)  # type: ignore[arg-type]
        if not isinstance(links, list):
            return Response({"detail": links.content.decode()}, status=links.status_code,
                            headers={k: v for k, v in links.items() if k == "Retry-After"})
        return Response({"grant": pk, "release": release_pk, "files": manifest_rows(request._request, links)})
