"""Datasets and releases in the Django admin: read-only.

Datasets change through the society admins' pages (``/manage/datasets/``), which go through the
services (checks, audit); releases are never edited. The admin is for operators who look things up.
"""

from __future__ import annotations

from django.contrib import admin

from portal.core.admin_readonly import ReadOnlyAdmin
from portal.datasets.models import Dataset, DatasetRelease, ReleaseFile


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ("slug", "title_ja", "society", "modality", "status", "case_count", "image_count")
    list_filter = ("status", "modality", "access_tier")
    list_select_related = ("society",)
    search_fields = ("slug", "title_ja", "title_en")


@admin.register(DatasetRelease)
class DatasetReleaseAdmin(ReadOnlyAdmin):
    list_display = ("dataset", "version", "status", "source", "file_count", "case_count", "created_at")
    list_filter = ("status", "source")
    list_select_related = ("dataset",)
    search_fields = ("dataset__slug", "manifest_sha256")


@admin.register(ReleaseFile)
class ReleaseFileAdmin(ReadOnlyAdmin):
    list_display = ("path", "release", "subject_pseudonym", "study_date", "modality", "size")
    list_select_related = ("release__dataset",)
    search_fields = ("=subject_pseudonym", "=sha256", "path")
    show_full_result_count = False
