from django.urls import path

from portal.ethics import views

app_name = "ethics"
urlpatterns = [
    path("protocols/", views.protocol_list, name="protocol_list"),
    path("protocols/new/", views.protocol_create, name="protocol_create"),
    path("protocols/<int:pk>/", views.protocol_detail, name="protocol_detail"),
    path("protocols/<int:pk>/edit/", views.protocol_edit, name="protocol_edit"),
    path("protocols/<int:pk>/attachments/", views.attachment_upload, name="attachment_upload"),
    path(
        "protocols/<int:pk>/attachments/<int:attachment_pk>/",
        views.attachment_download,
        name="attachment_download",
    ),
    path("protocols/<int:pk>/submit/", views.protocol_submit, name="protocol_submit"),
    path("protocols/<int:pk>/diff/", views.version_diff, name="version_diff"),
    path("protocols/<int:pk>/conditions/answer/", views.conditions_answer, name="conditions_answer"),
    path("protocols/<int:pk>/conditions/verify/", views.conditions_verify, name="conditions_verify"),
    path("protocols/<int:pk>/amendment/", views.amendment_start, name="amendment_start"),
    path("protocols/<int:pk>/completion/", views.completion_report, name="completion_report"),
    path("protocols/<int:pk>/periodic-reports/", views.periodic_report, name="periodic_report"),
    path(
        "protocols/<int:pk>/periodic-reports/<int:report_pk>/acknowledge/",
        views.periodic_report_acknowledge,
        name="periodic_report_acknowledge",
    ),
    path("protocols/<int:pk>/withdraw/", views.protocol_withdraw, name="protocol_withdraw"),
    path("protocols/<int:pk>/suspend/", views.protocol_suspend, name="protocol_suspend"),
    path("protocols/<int:pk>/resume/", views.protocol_resume, name="protocol_resume"),
    path("protocols/<int:pk>/close/", views.protocol_close, name="protocol_close"),
    path("protocols/<int:pk>/return/", views.protocol_return, name="protocol_return"),
    path(
        "protocols/<int:pk>/acknowledge/",
        views.minor_amendment_acknowledge,
        name="minor_amendment_acknowledge",
    ),
    path("protocols/<int:pk>/permission/", views.head_decide, name="head_decide"),
    path("protocols/<int:pk>/review/", views.review_detail, name="review_detail"),
    path("protocols/<int:pk>/review/open/", views.review_open, name="review_open"),
    path("protocols/<int:pk>/review/comments/", views.review_comment, name="review_comment"),
    path("protocols/<int:pk>/review/vote/", views.review_vote, name="review_vote"),
    path("protocols/<int:pk>/review/attendance/", views.review_attendance, name="review_attendance"),
    path("protocols/<int:pk>/review/decision/", views.review_decision, name="review_decision"),
    path("inbox/", views.inbox, name="inbox"),
    path("secretariat/", views.secretariat_queue, name="secretariat_queue"),
    path("head/", views.head_queue, name="head_queue"),
]
