"""The API client against connections the server closes under it: a reused keep-alive connection found
closing as the request is written ("Cannot write to closing transport") is an unknown outcome for a POST and
a transient error, retried, for a GET; never an exception that escapes the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from pipeline.api.client import ApiClient
from pipeline.api.budget import RequestBudget
from pipeline.errors import SubmitOutcomeUnknown
from pipeline.emulator import EmulatorServer
from run_helpers import CLIP, CREDENTIALS, settings_for

MODEL = "model_ltx-2-19b-video-to-video"


class ClosingOnReuse:
    """A trace config that, the next `armed` times a pooled connection is reused, has the server close every
    connection first and lets the client see the close: the request then meets a closing transport."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.armed = 0
        self.fired = 0
        self.config = aiohttp.TraceConfig()
        self.config.on_connection_reuseconn.append(self._on_reuse)

    async def _on_reuse(self, session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
        if self.armed > 0:
            self.armed -= 1
            self.fired += 1
            self.server.drop_connections()
            await asyncio.sleep(0.05)  # the FIN reaches the client: the reused transport is now closing


@pytest.fixture
async def client(tmp_path: Path, emulator: EmulatorServer) -> AsyncIterator[tuple[ApiClient, ClosingOnReuse]]:
    closer = ClosingOnReuse(emulator)
    async with aiohttp.ClientSession(trace_configs=[closer.config]) as session:
        yield ApiClient(session, settings_for(emulator, tmp_path), CREDENTIALS, RequestBudget(100.0)), closer


async def test_a_post_on_a_reused_closing_connection_is_an_unknown_outcome(client, emulator) -> None:
    """A generate POST that meets a closing keep-alive connection raises SubmitOutcomeUnknown (never resent)."""
    api, closer = client
    asset_id = await api.upload(CLIP, kind="video")  # opens the connection the POST will reuse
    closer.armed = 1
    with pytest.raises(SubmitOutcomeUnknown, match="connection lost"):
        await api.submit(MODEL, {"prompt": "a reused connection", "video": asset_id})
    assert closer.fired == 1
    assert emulator.emulator.stats()["requests"].get("POST /v1/generate/custom/{modelId}", 0) == 0


async def test_a_get_on_a_reused_closing_connection_is_retried(client, emulator) -> None:
    """A poll and an asset lookup that meet a closing keep-alive connection are retried and answer."""
    api, closer = client
    asset_id = await api.upload(CLIP, kind="video")
    job = await api.submit(MODEL, {"prompt": "a reused connection", "video": asset_id})
    closer.armed = 1
    assert (await api.job(job.job_id)).job_id == job.job_id
    closer.armed = 1
    assert (await api.asset_url(asset_id)).startswith("http://127.0.0.1")
    assert closer.fired == 2 and api.retries >= 2
