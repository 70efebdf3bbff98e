from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import Organization, OrganizationMembership, User
from portal.accounts.services import organization_membership_add, organization_membership_remove


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("full_name", "full_name_kana")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["user", "role", "title"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name_ja", "name_en", "kind"]
    list_filter = ["kind"]
    search_fields = ["name_ja", "name_en"]
    inlines = [MembershipInline]


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "title"]
    list_filter = ["role", "organization__kind"]
    autocomplete_fields = ["user", "organization"]

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        if change:
            raise PermissionError("Memberships are added or removed, not edited.")
        obj.pk = organization_membership_add(
            user=obj.user,
            organization=obj.organization,
            role=obj.role,
            title=obj.title,
            by=request.user,
        ).pk

    def delete_model(self, request, obj) -> None:  # type: ignore[no-untyped-def]
        organization_membership_remove(membership=obj, by=request.user)

    def delete_queryset(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for membership in queryset.select_related("user"):
            organization_membership_remove(membership=membership, by=request.user)

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return obj is None and super().has_change_permission(request, obj)
