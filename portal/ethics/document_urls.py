from django.urls import path

from portal.ethics import document_views

app_name = "ethics_documents"
urlpatterns = [
    path(
        "protocols/<int:protocol_id>/versions/<int:version>/<slug:kind>.pdf",
        document_views.notice_download,
        name="notice_download",
    ),
]
