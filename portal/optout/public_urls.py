from django.urls import path

from portal.optout import public

app_name = "optout_public"

urlpatterns = [
    path("", public.notice_list, name="list"),
    path("<str:reference>/", public.notice_detail, name="detail"),
    path("<str:reference>/poster.pdf", public.notice_poster, name="poster"),
]
