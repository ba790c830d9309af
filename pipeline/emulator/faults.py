"""Fault injection: seeded dice (one stream per fault kind) and the bodies that faulty replies carry.

Where each fault applies (the `/_emulator/*` routes never see any):

- `reset`, `5xx`: any `/v1/*`, `/_cdn/*` or `/_s3/*` (part PUT) request, before it is
  processed (so a reset or 5xx on `POST /v1/generate/...` creates no job; a part PUT's
  5xx is S3's XML).
- `bad_json`: any `/v1/*` request, before it is processed: 200 with an HTML
  page, a truncated JSON text, or JSON of the wrong shape.
- `credits`: `POST /v1/generate/custom/{modelId}` only: 402, no job.
- `lost_response`: `POST /v1/generate/custom/{modelId}` only: the job IS
  created, then the connection is reset before the reply.
- `truncate`: `GET /_cdn/{token}` only: full `Content-Length`, about half the
  body, then the connection closes.
- `job_failure`, `job_canceled`, `unknown_status`, `stale_update`: drawn once per job when it is created.
- `upload_failure`: drawn once per upload when it is completed: it ends `failed`.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
from dataclasses import dataclass

from aiohttp import web

from pipeline.emulator.knobs import FAULT_KINDS, EmulatorKnobs

FIVE_XX_STATUSES = (500, 502, 503)

JOB_FAILURES: tuple[tuple[str, str], ...] = (  # (metadata.error, metadata.hint)
    ("GPU worker crashed during inference (emulated)", "Retry the job: it usually succeeds on another worker."),
    ("Generation timed out (emulated)", "Try a shorter duration or fewer inference steps, then retry."),
    ("Content moderation rejected the output (emulated)", "Change the prompt or the input video, then retry."),
)
JOB_CANCELED = ("Job canceled by the service (emulated)", "The job was stopped by Scenario; submit it again.")
UPLOAD_FAILURE = "Upload processing failed (emulated): the file could not be imported"


class FaultDice:
    """Seeded random streams, one per fault kind plus `timing` and `ids`, so faults repeat run to run."""

    def __init__(self, seed: int) -> None:
        self._streams = {kind: random.Random(f"{seed}:{kind}") for kind in (*FAULT_KINDS, "timing", "ids")}

    def hit(self, kind: str, knobs: EmulatorKnobs) -> bool:
        """Whether fault `kind` strikes now (no draw is made when its rate is 0)."""
        rate: float = getattr(knobs, f"fault_{kind}_rate")
        if rate <= 0:
            return False
        return rate >= 1 or self._streams[kind].random() < rate

    def stream(self, kind: str) -> random.Random:
        """The random stream of `kind` (for choosing a variant of a fault, a run time or an id)."""
        return self._streams[kind]

    def new_id(self, prefix: str) -> str:
        """A fresh id such as `job_3f9c...` (24 hex digits, from the seeded `ids` stream)."""
        return f"{prefix}_{self._streams['ids'].getrandbits(96):024x}"


@dataclass(frozen=True, slots=True)
class FaultyReply:
    """A reply that a fault sends instead of the real one."""

    status: int
    body: str
    content_type: str

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.body, content_type=self.content_type)


def server_error(dice: FaultDice) -> FaultyReply:
    """A 500/502/503 with either a JSON error or an HTML page (as proxies send)."""
    rng = dice.stream("5xx")
    status = rng.choice(FIVE_XX_STATUSES)
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
    if rng.random() < 0.5:
        return FaultyReply(status, json.dumps({"error": reason}), "application/json")
    page = f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
    return FaultyReply(status, page, "text/html")


def bad_json(dice: FaultDice) -> FaultyReply:
    """A 200 whose body is not what the route promises: HTML, cut-off JSON, or JSON of another shape."""
    variant = dice.stream("bad_json").randrange(3)
    if variant == 0:
        return FaultyReply(200, "<html><body>Please wait while we check your browser</body></html>", "text/html")
    if variant == 1:
        return FaultyReply(200, '{"job": {"jobId": "job_', "application/json")
    return FaultyReply(200, json.dumps({"message": "ok", "data": None}), "application/json")


def reset_connection(request: web.BaseRequest) -> None:
    """Abort the request's TCP connection with an RST (SO_LINGER 0), sending nothing more."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone: aborting is enough
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def close_connection(request: web.BaseRequest) -> None:
    """Close the request's TCP connection after what was written is flushed (a cut-off body)."""
    if request.transport is not None:
        request.transport.close()
