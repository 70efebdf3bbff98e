from __future__ import annotations

from django.contrib import admin

from portal.societies.models import Society, SocietyMembership
from portal.societies.services import (
    PROFILE_FIELDS,
    society_create,
    society_membership_add,
    society_membership_remove,
    society_update_profile,
)


@admin.register(Society)
class SocietyAdmin(admin.ModelAdmin):
    list_display = ["name_ja", "name_en", "slug", "kind"]
    list_filter = ["kind"]
    search_fields = ["name_ja", "name_en", "slug"]
    prepopulated_fields = {"slug": ("name_en",)}

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        profile = {
            name: form.cleaned_data[name] for name in PROFILE_FIELDS if name in form.cleaned_data
        }
        if change:
            society_update_profile(society=obj, by=request.user, **profile)
        else:
            profile = {k: v for k, v in profile.items() if k not in {"name_ja", "name_en"}}
            obj.pk = society_create(
                slug=obj.slug,
                name_ja=obj.name_ja,
                name_en=obj.name_en,
                kind=obj.kind,
                by=request.user,
                **profile,
            ).pk


@admin.register(SocietyMembership)
class SocietyMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "society", "role"]
    list_filter = ["role", "society"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        if change:
            raise PermissionError("Memberships are added or removed, not edited.")
        obj.pk = society_membership_add(
            society=obj.society, user=obj.user, role=obj.role, by=request.user
        ).pk

    def delete_model(self, request, obj) -> None:  # type: ignore[no-untyped-def]
        society_membership_remove(membership=obj, by=request.user)

    def delete_queryset(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for membership in queryset.select_related("society", "user"):
            society_membership_remove(membership=membership, by=request.user)

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return obj is None and super().has_change_permission(request, obj)
