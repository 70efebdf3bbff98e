"""A person calling the API with their own token, as a script would (``Authorization: Token …``)."""

from __future__ import annotations

from typing import Any

from knox.models import AuthToken


class Caller:
    def __init__(self, client: Any, user: Any) -> None:
        self.client = client
        self.auth = f"Token {AuthToken.objects.create(user)[1]}"

    def post(self, path: str, data: Any = None, *, format: str = "json") -> Any:
        if format == "multipart":
            return self.client.post(path, data or {}, HTTP_AUTHORIZATION=self.auth)
        return self.client.post(path, data or {}, content_type="application/json", HTTP_AUTHORIZATION=self.auth)

    def patch(self, path: str, data: Any) -> Any:
        return self.client.patch(path, data, content_type="application/json", HTTP_AUTHORIZATION=self.auth)

    def get(self, path: str) -> Any:
        return self.client.get(path, HTTP_AUTHORIZATION=self.auth)
