from django.urls import path

from portal.societies import views

app_name = "societies"
urlpatterns = [
    path("", views.society_list, name="list"),
    path("<slug:slug>/", views.society_detail, name="detail"),
]
