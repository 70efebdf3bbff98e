from django.urls import path

from portal.access.extension_api import AmendmentChanges, ExtensionPrefill
from portal.access.grant_api import GrantList, GrantManifest

urlpatterns: list = [
    path("access/grants/", GrantList.as_view(), name="api-access-grant-list"),
    path("access/grants/<int:pk>/releases/<int:release_pk>/manifest/", GrantManifest.as_view(),
         name="api-access-grant-manifest"),
    path("access/grants/<int:pk>/extension-prefill/", ExtensionPrefill.as_view(),
         name="api-access-grant-extension-prefill"),
    path("access/amendments/<int:pk>/changes/", AmendmentChanges.as_view(), name="api-access-amendment-changes"),
]
