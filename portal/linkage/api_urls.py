from django.urls import path

from portal.linkage.api import MatchList

urlpatterns = [
    path("linkage/matches/", MatchList.as_view(), name="api-linkage-match-list"),
]
