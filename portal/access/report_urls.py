"""Usage reports, provision records and the society's overview (under /access/, namespace ``access``)."""

from django.urls import path

from portal.access import report_views as views

urlpatterns: list = [
    path("reports/", views.report_list, name="report_list"),
    path("reports/review/", views.report_review, name="report_review"),
    path("reports/<int:pk>/", views.report_detail, name="report_detail"),
    path("reports/<int:pk>/submit/", views.report_submit, name="report_submit"),
    path("reports/<int:pk>/accept/", views.report_accept, name="report_accept"),
    path("reports/<int:pk>/confirm/", views.report_confirm, name="report_confirm"),
    path("reports/stop/<int:grant_pk>/", views.report_stop, name="report_stop"),
    path("reports/<int:pk>/certificate/", views.report_certificate, name="report_certificate"),
    path("provision-records/", views.provision_list, name="provision_list"),
    path("provision-records/export.csv", views.provision_csv_view, name="provision_csv"),
    path("provision-records/<int:pk>/", views.provision_detail, name="provision_detail"),
    path("provision-records/<int:pk>/pdf/", views.provision_pdf_view, name="provision_pdf"),
    path("overview/", views.society_overview_index, name="society_overview_index"),
    path("overview/<slug:slug>/", views.society_overview_view, name="society_overview"),
]
