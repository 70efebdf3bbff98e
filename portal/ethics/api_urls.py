from django.urls import path

from portal.ethics.api import ProtocolDetail, ProtocolList

urlpatterns = [
    path("ethics/protocols/", ProtocolList.as_view(), name="api-ethics-protocol-list"),
    path("ethics/protocols/<int:pk>/", ProtocolDetail.as_view(), name="api-ethics-protocol-detail"),
]
