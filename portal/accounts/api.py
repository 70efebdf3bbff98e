from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.roles import has_mfa, roles_for


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    full_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    mfa_enabled = serializers.BooleanField()


class MeView(APIView):
    """The signed-in user, with the roles the portal gives them."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "email": user.email,
            "full_name": user.full_name,
            "roles": sorted(str(role) for role in roles_for(user)),
            "mfa_enabled": has_mfa(user),
        }
        return Response(MeSerializer(data).data)
