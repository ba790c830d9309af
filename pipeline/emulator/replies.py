"""Error replies of the emulated API: an exception the service raises and the JSON response it becomes.

The body is `{<key>: message[, "details": ...][, other fields], "traceId": ...}`. The real
service puts the message under `reason`, `message`, `error` or `detail` and a trace id in
`traceId` (api-notes "Errors and limits", observed); the key is the `error_message_key` knob.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

MESSAGE_KEYS = ("error", "message", "reason", "detail")


class ErrorReply(Exception):
    """An API error to send as JSON with `status`; `details` and `fields` add to the body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.details = details
        self.headers = dict(headers or {})
        self.fields = dict(fields or {})

    def body(self, *, message_key: str = "error", trace_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {**self.fields, message_key: self.message}
        if self.details:
            out["details"] = self.details
        if trace_id is not None:
            out["traceId"] = trace_id
        return out

    def response(self, *, message_key: str = "error", trace_id: str | None = None) -> web.Response:
        return web.json_response(self.body(message_key=message_key, trace_id=trace_id), status=self.status,
                                 headers=self.headers)


def page_size(text: str | None, *, default: int, most: int) -> int:
    """A listing's `pageSize` query value: `default` when absent, else a whole number from 1 to `most` (400)."""
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise ErrorReply(400, f"pageSize: must be a whole number from 1 to {most}, not {text!r}")
    return int(text)
