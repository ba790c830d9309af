"""`EmulatorServer`: runs an `Emulator` on a real TCP socket (127.0.0.1 and an ephemeral port by default)."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from pipeline.emulator.app import build_app
from pipeline.emulator.service import Emulator
from pipeline.gcpause import IdleFreezer

SHUTDOWN_TIMEOUT_S = 2.0


class EmulatorServer:
    """An async context manager serving `emulator` over HTTP; `url` is its base URL once started.

        async with EmulatorServer(Emulator(job_time_s=0.2)) as server:
            ...  # point the client at server.url; server.emulator.stats() in-process
    """

    def __init__(self, emulator: Emulator | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 freezer: IdleFreezer | None = None) -> None:
        self.emulator = emulator if emulator is not None else Emulator()
        self.freezer = freezer
        self.host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> EmulatorServer:
        """Bind and start serving (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the emulator server is already started")
        runner = web.AppRunner(build_app(self.emulator, freezer=self.freezer), access_log=None, handle_signals=False,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop serving (open downloads get a short grace time, then are cut), then stop upload validations and
        remove the uploaded parts from disk."""
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await runner.cleanup()
            finally:
                await self.emulator.aclose()

    def drop_connections(self) -> int:
        """Close every open client connection now, kept-alive ones included, as a load balancer or a restarting
        backend does; returns how many. A client that reuses one finds it closing as it writes."""
        server = self._runner.server if self._runner is not None else None
        handlers = list(server.connections) if server is not None else []
        for handler in handlers:
            handler.force_close()
        return len(handlers)

    @property
    def port(self) -> int:
        """The bound port (the real one once started, even when asked for port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give the client, e.g. `http://127.0.0.1:41235` (no trailing slash)."""
        if self._runner is None:
            raise RuntimeError("the emulator server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    async def __aenter__(self) -> EmulatorServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
