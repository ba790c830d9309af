"""The HTTP client for the Scenario API: auth, the request budget, retries (what answers mean: `answers`).

Knows nothing of queues or the journal. One `aiohttp.ClientSession` (created inside
the running loop) serves API calls and CDN downloads; the Authorization header is
sent to the API only, never to a CDN URL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from pipeline.api.answers import JobView, classify, parse_job
from pipeline.api.budget import LOOKUP, POLL, SUBMIT, RequestBudget, sleep_unless
from pipeline.api.connectivity import Connectivity
from pipeline.api.pacing import Pacing
from pipeline.api.retry import backoff_s
from pipeline.api.uploads import upload_input
from pipeline.config import Credentials, Settings
from pipeline.errors import (
    ApiError,
    BadResponse,
    ConcurrencyLimited,
    CooldownApiError,
    RunHalted,
    SubmitOutcomeUnknown,
    TransientApiError,
)

log = logging.getLogger(__name__)

MAX_API_BODY_BYTES = 4 * 1024 * 1024  # an API answer larger than this is refused as malformed
MAX_BULK_ASSETS = 200  # api-notes "Outputs": get-bulk answers at most 200 assets
THROTTLED_RETRIES_FACTOR = 10  # a call waits out up to 10 x max_retries 429s before giving up

# errors from aiohttp after the request may have reached the server: every client error but a failed
# connect (caught first), including a reused keep-alive connection that the server closed as we wrote
# (ClientConnectionResetError "Cannot write to closing transport") and a plain ClientConnectionError
_MAYBE_SENT = (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError)


@dataclass(slots=True)
class PostState:
    """Whether a POST may be on the server with its answer unread: True from the moment an attempt is sent
    until the server's answer refused it. A caller cancelled while this is False knows no job was made."""

    on_the_wire: bool = False


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.0f} s"


def basic_auth(credentials: Credentials) -> str:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return f"Basic {token}"


async def _read_capped(stream: aiohttp.StreamReader, max_bytes: int) -> bytes:
    """The body up to `max_bytes` (`read(n)` alone returns only what has arrived so far: a large answer
    that comes in several pieces would be cut and taken for malformed)."""
    body = bytearray()
    while len(body) < max_bytes and (chunk := await stream.read(max_bytes - len(body))):
        body += chunk
    return bytes(body)


class ApiClient:
    """Calls the Scenario API within the shared request budget, retrying what is transient."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings, credentials: Credentials,
                 budget: RequestBudget, *, rng: random.Random | None = None) -> None:
        self._session = session
        self._settings = settings
        self._auth = basic_auth(credentials)
        self._budget = budget
        self._rng = rng or random.Random()
        self.retries = 0
        self.throttled = 0  # 429 answers received
        self.connectivity = Connectivity()  # down after a connection failure, up at the next real answer
        self.reconcile_requests = 0  # of `requests`, those spent asking the server about lost POSTs

    @property
    def requests(self) -> int:
        """API requests sent so far (every attempt, retries included)."""
        return self._budget.requests

    @property
    def pacing(self) -> Pacing:
        """The sending rate as 429s have lowered it (and calm has raised it back)."""
        return self._budget.pacing

    def used_share(self) -> float:
        """How much of the request budget the last few seconds took (0 idle, 1 full)."""
        return self._budget.used_share()

    @property
    def waiting(self) -> str | None:
        """What every API request is waiting for right now (a 429 pause or a cooldown, with the time left)."""
        return self._budget.waiting

    @property
    def base_url(self) -> str:
        return self._settings.api_base_url

    @property
    def max_retries(self) -> int:
        """How often a failed (or malformed) answer is asked for again (the max_retries setting)."""
        return self._settings.max_retries

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared HTTP session, for requests outside the API (CDN downloads, presigned upload parts)."""
        return self._session

    async def call(self, method: str, path: str, priority: int, *, body: Any = None,
                   params: Mapping[str, str] | None = None, idempotent: bool = True) -> Any:
        """One API call (`path` under the base URL) within the budget, with retries; its JSON answer.

        `projectId` is added to the query when the project_id setting is set. `idempotent=False` for a POST
        that may create something billed: a lost answer is then SubmitOutcomeUnknown, never retried."""
        return await self._call(method, path, priority, body=body, params=params, idempotent=idempotent)

    async def upload(self, path: Path, *, kind: str) -> str:
        """Upload a local input file; its asset id (`pipeline.api.uploads`: JSON for small images, else multipart).

        Nothing is journaled here: a run uploads through `produce`, which records the upload id."""
        return await upload_input(self, self._settings, path, kind=kind, halted=self._budget.halted, rng=self._rng)

    async def submit(self, model: str, body: Mapping[str, Any], *, post: PostState | None = None) -> JobView:
        """POST one generation; raises SubmitOutcomeUnknown when the answer was lost after sending.

        `post` tells a caller that is cancelled mid-call whether an attempt may be on the server."""
        data = await self._call("POST", f"/v1/generate/custom/{model}", SUBMIT, body=dict(body), idempotent=False,
                                post=post)
        try:
            return parse_job(data)
        except BadResponse as exc:
            raise SubmitOutcomeUnknown(f"the generate answer was malformed ({exc.message})") from None

    async def job(self, job_id: str) -> JobView:
        return parse_job(await self._call("GET", f"/v1/jobs/{job_id}", POLL))

    async def asset_url(self, asset_id: str) -> str:
        """The asset's current (temporary) download URL, of the original file the model made
        (`originalAssets=true`: the default URL may serve a transformed delivery)."""
        data = await self._call("GET", f"/v1/assets/{asset_id}", LOOKUP, params={"originalAssets": "true"})
        asset = data.get("asset") if isinstance(data, dict) else None
        url = asset.get("url") if isinstance(asset, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadResponse(200, f"asset {asset_id} answer lacks a download url")
        return url

    async def asset_usable(self, asset_id: str) -> bool:
        """Whether the server still has this asset for us to generate with (`GET /v1/assets/{id}`, one lookup):
        False when it answers 400/403/404/410 (unknown here: deleted, or of another project or key), or shows
        it deleted (`deletedAt`) or failed (`status: error`), the fields of scenario-sdk's `Asset`. Other
        errors are raised, after the usual retries."""
        try:
            data = await self._call("GET", f"/v1/assets/{quote(asset_id, safe='')}", LOOKUP)
        except ApiError as exc:
            if isinstance(exc, TransientApiError) or exc.status not in (400, 403, 404, 410):
                raise
            return False
        asset = data.get("asset") if isinstance(data, dict) else None
        if not isinstance(asset, dict):
            raise BadResponse(200, f"asset {asset_id} answer lacks an 'asset' object")
        return not asset.get("deletedAt") and str(asset.get("status", "")).lower() != "error"

    async def asset_urls(self, asset_ids: Sequence[str], *, priority: int = LOOKUP) -> dict[str, str]:
        """The current download URLs of up to 200 assets in one request (`POST /v1/assets/get-bulk`, of the
        originals: `originalAssets=true`, in the query as scenario-sdk sends it). An id the answer leaves out
        (or gives no usable URL) is missing from the mapping: resolve it on its own (`asset_url`)."""
        if len(asset_ids) > MAX_BULK_ASSETS:
            raise ValueError(f"get-bulk takes at most {MAX_BULK_ASSETS} asset ids, not {len(asset_ids)}")
        data = await self._call("POST", "/v1/assets/get-bulk", priority, body={"assetIds": list(asset_ids)},
                                params={"originalAssets": "true"})
        assets = data.get("assets") if isinstance(data, dict) else None
        if not isinstance(assets, list):
            raise BadResponse(200, "the get-bulk answer lacks an `assets` list")
        wanted = set(asset_ids)
        return {asset["id"]: asset["url"] for asset in assets
                if isinstance(asset, dict) and asset.get("id") in wanted and isinstance(asset.get("url"), str)
                and asset["url"].startswith(("http://", "https://"))}

    async def probe(self) -> None:
        """One cheap request (the newest job of the account), no retry: tells `connectivity` whether the API
        answers. Errors are the answer; none is raised."""
        try:
            await self._once("GET", self._settings.api_base_url + "/v1/jobs", self._query({"pageSize": "1"}),
                             LOOKUP, None, True, PostState())
        except (ApiError, RunHalted):
            pass

    def _query(self, params: Mapping[str, str] | None) -> dict[str, str]:
        query = dict(params or {})
        if self._settings.project_id:
            query["projectId"] = self._settings.project_id
        return query

    async def _call(self, method: str, path: str, priority: int, *, body: Any = None,
                    params: Mapping[str, str] | None = None, idempotent: bool = True,
                    post: PostState | None = None) -> Any:
        """One API call with its retries; RunHalted when the run halts before an attempt is sent."""
        url = self._settings.api_base_url + path
        query = self._query(params)
        failures = throttles = 0
        post = post if post is not None else PostState()
        while True:
            try:
                return await self._once(method, url, query, priority, body, idempotent, post)
            except ConcurrencyLimited:
                raise  # the running-jobs cap: the submit stage waits for one of our jobs to finish, not a timer
            except CooldownApiError as exc:  # every caller waits it out, however long: a wait, not a failure
                self.throttled += 1
                delay = exc.retry_after_s or 0.0
                if self._budget.paused_for_s < delay - 1:
                    log.warning("the API asks for a cooldown of %s (429 with remainingSeconds): every request "
                                "waits; the run goes on after it", _duration(delay))
                self._budget.pause(delay, reason="cooldown (429)")
                await self._wait_to_retry(delay, f"{method} {path}", exc)
            except TransientApiError as exc:
                if exc.status == 0 and not idempotent:
                    raise  # no connection: the submit stage waits until the API answers again, then resends
                # a 429 is the server pacing us, not a failed attempt: it has its own, larger allowance
                if exc.status == 429:
                    throttles += 1
                else:
                    failures += 1
                retries = self._settings.max_retries
                if failures > retries or throttles > THROTTLED_RETRIES_FACTOR * retries:
                    raise
                attempt = throttles if exc.status == 429 else failures
                delay = backoff_s(attempt, base_s=self._settings.backoff_base_s,
                                  max_s=self._settings.backoff_max_s, rng=self._rng)
                if exc.status == 429:
                    self.throttled += 1
                    delay = exc.retry_after_s if exc.retry_after_s is not None else delay
                    self._budget.pause(delay, reason="rate limit (429)")
                elif exc.retry_after_s is not None:
                    delay = exc.retry_after_s
                self.retries += 1
                log.debug("%s %s: %s; retry %d in %.2fs", method, path, exc.message, attempt, delay)
                await self._wait_to_retry(delay, f"{method} {path}", exc)

    async def _wait_to_retry(self, delay_s: float, call: str, exc: ApiError) -> None:
        """Wait before the next attempt; RunHalted if the run halts meanwhile (a halted run sends no new one)."""
        if await sleep_unless(self._budget.halted, delay_s):
            raise RunHalted(f"the run is stopping: {call} not retried (last answer: {exc.message})") from None

    async def _once(self, method: str, url: str, query: Mapping[str, str], priority: int, body: Any,
                    idempotent: bool, post: PostState) -> Any:
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        async with self._budget.slot(priority) as sent_at:
            post.on_the_wire = True
            try:
                async with self._session.request(method, url, params=query or None, json=body, headers=headers,
                                                 timeout=self._timeout()) as resp:
                    status, retry_after = resp.status, resp.headers.get("Retry-After")
                    if status < 500:
                        self.connectivity.answered()
                    if not 200 <= status < 300:
                        post.on_the_wire = False  # the server answered: this attempt made no job
                    raw = await _read_capped(resp.content, MAX_API_BODY_BYTES + 1)
            except aiohttp.ClientConnectorError as exc:  # never reached the server
                post.on_the_wire = False
                reason = f"cannot connect to {exc.host}: {exc.os_error.strerror or exc}"
                self.connectivity.failed(reason)
                raise TransientApiError(0, reason, url=url) from None
            except _MAYBE_SENT as exc:
                self.connectivity.failed(f"connection lost ({type(exc).__name__})")
                if not idempotent:
                    raise SubmitOutcomeUnknown(f"connection lost after sending ({type(exc).__name__})") from None
                raise TransientApiError(0, f"connection lost ({type(exc).__name__})", url=url) from None
        log.debug("%s %s -> %d (%d bytes, %.0f ms)", method, url, status, len(raw),
                  (time.monotonic() - sent_at) * 1000)
        if len(raw) > MAX_API_BODY_BYTES:
            if not idempotent and 200 <= status < 300:
                raise SubmitOutcomeUnknown("the generate answer was too large to be real")
            raise BadResponse(status, f"answer larger than {MAX_API_BODY_BYTES} bytes", url=url)
        text = raw.decode("utf-8", "replace")
        if not 200 <= status < 300:
            error = classify(status, text, retry_after, url)
            if status == 429 and not isinstance(error, (ConcurrencyLimited, CooldownApiError)):
                self._budget.throttled(sent_at=sent_at)  # a rate limit: send more slowly
            raise error
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            if not idempotent:
                raise SubmitOutcomeUnknown("the generate answer was not JSON") from None
            raise BadResponse(status, "answer is not JSON", url=url) from None

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self._settings.request_timeout_s,
                                     connect=self._settings.connect_timeout_s)
