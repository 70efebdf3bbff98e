from __future__ import annotations

from django.test import RequestFactory, override_settings

from portal.lib.client_ip import client_ip


def test_client_ip_ignores_forwarded_header_without_trusted_proxy():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert client_ip(request) == "10.0.0.5"


@override_settings(PORTAL_TRUSTED_PROXY_COUNT=1)
def test_client_ip_takes_address_added_by_trusted_proxy():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9"
    )
    assert client_ip(request) == "203.0.113.9"


@override_settings(PORTAL_TRUSTED_PROXY_COUNT=1)
def test_client_ip_garbage_header_gives_none():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="not-an-ip")
    assert client_ip(request) is None
