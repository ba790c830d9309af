"""A tiny Chrome DevTools Protocol driver for tests: headless Debian chromium over aiohttp's websocket client.

    async with Browser.launch(tmp_path) as page:
        await page.goto(url)
        value = await page.evaluate("1 + 1")
        png = await page.screenshot()
        page.errors  # console errors, uncaught exceptions and log errors seen so far
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0",
         "--window-size=1400,1000", "--hide-scrollbars", "--mute-audio")
START_TIMEOUT_S = 20.0


class Browser:
    """One headless chromium and one page of it, driven over CDP."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.errors: list[str] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, tmp: Path) -> AsyncIterator[Browser]:
        """Start chromium with a fresh profile in `tmp`, attach to its first page, enable Runtime/Log/Page."""
        profile = tmp / "chromium-profile"
        process = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = await _devtools_port(profile / "DevToolsActivePort", process)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
                    targets = await answer.json()
                page_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with session.ws_connect(page_url, max_msg_size=0) as ws:
                    browser = cls(ws)
                    async with asyncio.TaskGroup() as group:
                        reader = group.create_task(browser._read())
                        for domain in ("Runtime", "Log", "Page"):
                            await browser.send(f"{domain}.enable")
                        try:
                            yield browser
                        finally:
                            reader.cancel()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result (raise on a protocol error)."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def expect(self, event: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `event` (register it before causing the event)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._events.setdefault(event, []).append(future)
        return future

    async def goto(self, url: str, *, until: str = "Page.loadEventFired", timeout_s: float = 15.0) -> None:
        """Navigate and wait for the load event (or `until`, e.g. Page.domContentEventFired)."""
        loaded = self.expect(until)
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, timeout_s)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JS in the page (promises awaited) and return its JSON value."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS exception: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, **params: Any) -> bytes:
        """A PNG of the viewport (or `captureBeyondViewport=True` for the full page)."""
        return base64.b64decode((await self.send("Page.captureScreenshot", format="png", **params))["data"])

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            method, params = data.get("method", ""), data.get("params", {})
            self._note_error(method, params)
            for future in self._events.pop(method, []):
                if not future.done():
                    future.set_result(params)
        for future in [*self._waiting.values(), *(f for fs in self._events.values() for f in fs)]:
            if not future.done():
                future.set_exception(ConnectionError("the DevTools connection closed"))

    def _note_error(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in args))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            what = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {what}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())


async def _devtools_port(path: Path, process: subprocess.Popen[bytes]) -> int:
    """The port chromium chose (first line of DevToolsActivePort), waiting for the file to appear."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(path.read_text().splitlines()[0])
        await asyncio.sleep(0.05)
    raise TimeoutError(f"chromium did not write {path} within {START_TIMEOUT_S}s")
