from django.urls import path

from portal.access import grant_views

urlpatterns: list = [
    path("grants/", grant_views.grant_list, name="grant_list"),
    path("grants/<int:pk>/", grant_views.grant_detail, name="grant_detail"),
    path("grants/<int:pk>/revoke/", grant_views.grant_revoke_view, name="grant_revoke"),
    path("grants/<int:pk>/extend/", grant_views.grant_extend_view, name="grant_extend"),
    path("grants/<int:pk>/training/", grant_views.grant_training_renew_view, name="grant_training_renew"),
    path("grants/<int:pk>/files/<int:file_pk>/download/", grant_views.grant_file_link, name="grant_file"),
    path("grants/<int:pk>/releases/<int:release_pk>/manifest.json", grant_views.manifest_json,
         name="manifest_json"),
    path("grants/<int:pk>/releases/<int:release_pk>/manifest.tsv", grant_views.manifest_tsv,
         name="manifest_tsv"),
    path("download/<str:token>/", grant_views.download, name="download"),
]
