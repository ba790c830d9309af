"""`api_session`: an `ApiClient` for a command's few calls (`plan --cost`, `models`, fetching a model's schema),
against the API, or the embedded emulator when the command runs without credentials (`--emulator`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import aiohttp

from pipeline.api.budget import RequestBudget
from pipeline.api.client import ApiClient
from pipeline.config import Credentials, Settings


@asynccontextmanager
async def api_session(settings: Settings, credentials: Credentials | None) -> AsyncIterator[ApiClient]:
    """The client, its session and budget for one command; `credentials` None: the embedded emulator on a free
    loopback port (started here, stopped on exit; imported only then, so other commands start fast)."""
    async with AsyncExitStack() as stack:
        if credentials is None:
            from pipeline.cli.emulator import embedded_emulator
            from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET

            url = await stack.enter_async_context(embedded_emulator())
            credentials, settings = Credentials(EMULATOR_API_KEY, EMULATOR_API_SECRET), replace(settings,
                                                                                               api_base_url=url)
        session = await stack.enter_async_context(aiohttp.ClientSession(raise_for_status=False))
        yield ApiClient(session, settings, credentials, RequestBudget(settings.max_requests_per_s))
