"""Error replies of the emulated API: an exception the service raises and the JSON response it becomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web


class ErrorReply(Exception):
    """An API error to send as `{"error": message[, "details": [...]]}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.message}
        if self.details:
            body["details"] = self.details
        return web.json_response(body, status=self.status, headers=self.headers)
