from django.urls import path

from portal.ethics import public

app_name = "committees"
urlpatterns = [
    path("", public.committee_list, name="list"),
    path("<slug:slug>/", public.committee_detail, name="detail"),
    path("<slug:slug>/summary/<int:year>/", public.committee_summary, name="summary"),
]
