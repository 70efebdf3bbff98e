from django.urls import path

from portal.societies.api import SocietyDetail, SocietyList

urlpatterns = [
    path("societies/", SocietyList.as_view(), name="api-society-list"),
    path("societies/<slug:slug>/", SocietyDetail.as_view(), name="api-society-detail"),
]
