from django.urls import path

from portal.agreements import views

app_name = "agreements"

urlpatterns = [
    path("", views.template_list, name="template_list"),
    path("new/", views.template_create, name="template_create"),
    path("<int:pk>/", views.template_detail, name="template_detail"),
    path("<int:pk>/versions/new/", views.version_new, name="version_new"),
    path("versions/<int:pk>/", views.version_detail, name="version_detail"),
    path("versions/<int:pk>/edit/", views.version_edit, name="version_edit"),
    path("versions/<int:pk>/publish/", views.version_publish, name="version_publish"),
    path("signed/<int:pk>/pdf/", views.signed_pdf, name="signed_pdf"),
]
