from django.urls import path

from portal.datasets import catalogue

app_name = "catalogue"

urlpatterns = [
    path("", catalogue.catalogue_list, name="list"),
    path("statistics/", catalogue.catalogue_statistics_page, name="statistics"),
    path("<slug:slug>/", catalogue.catalogue_detail, name="detail"),
    path("<slug:slug>/releases/<int:version>/", catalogue.catalogue_release_detail, name="release"),
]
