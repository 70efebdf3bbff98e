from django.urls import path

from portal.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("unread-count/", views.unread_badge, name="unread_badge"),
    path("read-all/", views.mark_all_read, name="mark_all_read"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/open/", views.go, name="go"),
]
