"""A loopback TCP proxy in front of the emulator that can go down: while `down`, every connection (new ones
and the ones open) is reset, as a load balancer whose backend is gone does. Tests point the client at it.
Also `serve`: one aiohttp handler for every route on an ephemeral loopback port (the tests' HTTP spies)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from contextlib import suppress

from aiohttp import web


async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *,
                max_body_bytes: int) -> tuple[web.AppRunner, str]:
    """`handler` answering every method and path on 127.0.0.1 (an ephemeral port): its runner (for `cleanup`)
    and its URL."""
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


class FlakyProxy:
    """`await FlakyProxy(target_port).start()`; `url`; `down = True/False`; `await close()`."""

    def __init__(self, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_port = target_port
        self.host = host
        self._down = False
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.resets = 0  # connections reset because the proxy was down

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.sockets[0].getsockname()[1]}"

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value
        if value:
            for writer in list(self._open):
                self._reset(writer)

    async def start(self) -> FlakyProxy:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                self._reset(writer)
            await self._server.wait_closed()

    def _reset(self, writer: asyncio.StreamWriter) -> None:
        """Close with RST (SO_LINGER 0), not FIN: the client sees 'connection reset by peer'."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.resets += 1
        writer.transport.abort()
        self._open.discard(writer)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._down:
            self._reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            self._reset(client_writer)
            return
        self._open.add(client_writer)
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        finally:
            self._open.discard(client_writer)
            for writer in (upstream_writer, client_writer):
                with suppress(Exception):
                    writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if self._down:
                    return
                writer.write(chunk)
                await writer.drain()
        with suppress(Exception):
            writer.close()
