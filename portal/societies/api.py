from __future__ import annotations

from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny

from portal.societies.models import Society
from portal.societies.selectors import society_list_public


class SocietySerializer(serializers.ModelSerializer):
    class Meta:
        model = Society
        fields = [
            "slug",
            "name_ja",
            "name_en",
            "kind",
            "image_types_ja",
            "image_types_en",
            "description_ja",
            "description_en",
            "website",
        ]


class SocietyList(generics.ListAPIView):
    """The societies that share images through the portal (public)."""

    permission_classes = [AllowAny]
    serializer_class = SocietySerializer
    pagination_class = None

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return society_list_public()


class SocietyDetail(generics.RetrieveAPIView):
    """One society (public)."""

    permission_classes = [AllowAny]
    serializer_class = SocietySerializer
    lookup_field = "slug"
    queryset = Society.objects.all()
