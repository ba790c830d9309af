"""The emulated object store behind multipart uploads: presigned part URLs and S3's XML errors (pure).

A part URL is `/_s3/{bucket}/{uploadId}?partNumber=N&uploadId=..&Expires=<unix ms>&Signature=<hmac>`;
it is its own credential, like a presigned S3 URL: a request that also carries an
`Authorization` header is refused, as S3 refuses two auth mechanisms (api-notes,
"Uploading inputs", confirmed).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from aiohttp import web

S3_PREFIX = "/_s3/"
BUCKET = "emulator-uploads"
MIN_PART_BYTES = 5 * 2**20  # S3: every part but the last is at least 5 MiB (EntityTooSmall otherwise)
MAX_PART_BYTES = 5 * 2**30  # S3: at most 5 GiB a part
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class PartGrant:
    """What a genuine part URL allows: PUT part `number` of `upload_id`."""

    upload_id: str
    number: int


class PartSigner:
    """Signs and checks part URLs; the key is per emulator instance."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def url(self, base_url: str, upload_id: str, number: int, expires_ms: int) -> str:
        query = {"partNumber": number, "uploadId": upload_id, "Expires": expires_ms,
                 "Signature": self._mac(upload_id, number, expires_ms)}
        return f"{base_url}{S3_PREFIX}{BUCKET}/{upload_id}?{urlencode(query)}"

    def check(self, key: str, query: Mapping[str, str], now_ms: int) -> PartGrant:
        """The grant of a genuine, unexpired URL; S3Error 403 otherwise."""
        upload_id, number, expires = query.get("uploadId", ""), query.get("partNumber", ""), query.get("Expires", "")
        if not (number.isdigit() and expires.isdigit()) or upload_id != key:
            raise S3Error(403, "AccessDenied", "Query-string authentication requires the Signature, Expires "
                                               "and partNumber parameters")
        mac = query.get("Signature", "")
        if not hmac.compare_digest(mac, self._mac(upload_id, int(number), int(expires))):
            raise S3Error(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you provided.")
        if now_ms >= int(expires):
            raise S3Error(403, "AccessDenied", "Request has expired")
        return PartGrant(upload_id, int(number))

    def _mac(self, upload_id: str, number: int, expires_ms: int) -> str:
        return hmac.new(self._key, f"{upload_id}:{number}:{expires_ms}".encode(), hashlib.sha256).hexdigest()[:40]


class S3Error(Exception):
    """An S3 error answer: status, code and message, sent as S3's XML document."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def response(self, *, request_id: str = "EMULATOR") -> web.Response:
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                f"<RequestId>{escape(request_id)}</RequestId></Error>")
        return web.Response(status=self.status, text=body, content_type="application/xml")


def two_auth_mechanisms() -> S3Error:
    """S3's answer to a presigned request that also carries an Authorization header."""
    return S3Error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                                           "parameter, Signature query string parameter or the Authorization "
                                           "header should be specified")


def no_such_upload() -> S3Error:
    """S3's answer to a part PUT for an upload that is unknown or already completed."""
    return S3Error(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, "
                                        "or the upload may have been aborted or completed.")


def s3_server_error(status: int) -> S3Error:
    """A 5xx as S3 sends it (a `reset`/`5xx` fault on a part PUT)."""
    if status == 503:
        return S3Error(503, "SlowDown", "Please reduce your request rate.")
    return S3Error(status, "InternalError", "We encountered an internal error. Please try again.")
