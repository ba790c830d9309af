"""Shared fixtures. The Scenario API emulator runs on 127.0.0.1 with an ephemeral port, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pipeline.emulator import Emulator, EmulatorServer

EMULATOR_FAST_KNOBS: dict[str, Any] = {"job_time_s": 0.2, "job_time_spread_s": 0.05, "max_running_jobs": 8,
                                       "upload_processing_s": 0.02}
"""Defaults of the emulator fixtures: short jobs, so lifecycles finish within a test."""

EmulatorFactory = Callable[..., Awaitable[EmulatorServer]]


@pytest.fixture
async def emulator_factory() -> AsyncIterator[EmulatorFactory]:
    """`await emulator_factory(**knobs)` starts an emulator (fast defaults, overridable; also
    `api_key=`/`api_secret=`) and returns the started `EmulatorServer`; all are closed after the test."""
    servers: list[EmulatorServer] = []

    async def start(**knobs: Any) -> EmulatorServer:
        server = EmulatorServer(Emulator(**{**EMULATOR_FAST_KNOBS, **knobs}), host="127.0.0.1", port=0)
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            await server.close()


@pytest.fixture
async def emulator(emulator_factory: EmulatorFactory) -> EmulatorServer:
    """A started emulator with the fast defaults (`server.url`, `server.emulator` for in-process stats)."""
    return await emulator_factory()
