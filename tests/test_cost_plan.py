"""`ltx-batch plan MANIFEST --cost`: dry runs (one per kind of job, or per job with --cost-each), the cost per
batch and in total, asset ids reused from the run folder, and every bad answer a located error, never a
traceback. The pricer here is a small loopback server, so each answer can be chosen."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pipeline.cli.main import main
from pipeline.ledger.costs import price_class
from pipeline.ledger.replay import JOURNAL_NAME
from pipeline.manifest.load import load_manifest
from pipeline.run.pricing import PLACEHOLDER_PREFIX

Answer = Callable[[dict[str, Any]], web.Response]


def priced(body: dict[str, Any]) -> web.Response:
    """The sane answer: 269 (as Scenario's own tests), a price from duration and videoStrength."""
    cost = 2.0 * body.get("duration", 5) + 10 * body.get("videoStrength", 1)
    return web.json_response({"creativeUnitsCost": cost, "creativeUnitsDiscount": 0,
                              "costDetails": {"custom-generation": cost}}, status=269)


@dataclass
class Pricer:
    """A loopback server answering POST /v1/generate/custom/{model} with `answer`, recording each request."""

    answer: Answer = priced
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"model": request.match_info["model"], "query": dict(request.query), "body": body,
                              "auth": request.headers.get("Authorization", "")})
        return self.answer(body)


@pytest.fixture
def pricer() -> Iterator[Pricer]:
    """The pricer on 127.0.0.1 (ephemeral port), in a thread of its own: the CLI runs its own event loop."""
    server = Pricer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    app = web.Application()
    app.router.add_post("/v1/generate/custom/{model}", server.generate)
    runner = web.AppRunner(app)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server.url = f"http://127.0.0.1:{port}"
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials set, quick retries, the run folder under tmp_path."""
    monkeypatch.setenv("SCENARIO_API_KEY", "key")
    monkeypatch.setenv("SCENARIO_API_SECRET", "secret")
    monkeypatch.setenv("LTX_BATCH_MAX_RETRIES", "1")
    monkeypatch.setenv("LTX_BATCH_BACKOFF_BASE_S", "0.01")
    monkeypatch.setenv("LTX_BATCH_BACKOFF_MAX_S", "0.02")
    monkeypatch.setenv("LTX_BATCH_MAX_REQUESTS_PER_S", "200")
    monkeypatch.setenv("LTX_BATCH_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("SCENARIO_API_URL", raising=False)


def manifest(folder: Path) -> Path:
    """Two batches: 2 prompts x 2 strengths x 2 seeds (2 kinds of job), and 2 durations x 3 seeds (2 kinds)."""
    (folder / "clip.mp4").write_bytes(b"video bytes")
    path = folder / "m.yaml"
    path.write_text(textwrap.dedent("""\
        name: priced
        inputs:
          video: clip.mp4
        batches:
          - name: strengths
            prompts: [a red fox, a blue whale]
            sweep:
              videoStrength: [0.5, 1.0]
            seeds: [1, 2]
          - name: durations
            prompts: [a storm]
            defaults:
              negativePrompt: blur
            sweep:
              duration: [4, 8]
            seeds: [1, 2, 3]
        """))
    return path


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["plan", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_prices_each_kind_once(tmp_path: Path, pricer: Pricer, capsys: pytest.CaptureFixture[str]) -> None:
    """One dry run per kind of job (?dryRun=true, the body a run would send), the cost per batch and in total."""
    path = manifest(tmp_path)
    status, out, err = plan(capsys, str(path), "--cost", "--api-url", pricer.url, "--project-id", "proj_1")
    assert status == 0, err
    jobs = list(load_manifest(path).jobs())
    kinds = {price_class(j) for j in jobs}
    assert len(jobs) == 14 and len(kinds) == 4 and len(pricer.requests) == 4
    assert all(r["query"] == {"dryRun": "true", "projectId": "proj_1"} for r in pricer.requests)
    assert all(r["body"]["video"].startswith(PLACEHOLDER_PREFIX) for r in pricer.requests)
    assert all(r["auth"].startswith("Basic ") for r in pricer.requests)
    # strengths: 4 jobs at 2*5+5, 4 at 2*5+10 -> 140; durations: 3 at 2*4+10, 3 at 2*8+10 -> 132
    assert "cost      272 CU for 14 jobs" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("          ")}
    assert rows["strengths"] == ["strengths", "8", "2", "15", "to", "20", "140"]
    assert rows["durations"] == ["durations", "6", "2", "18", "to", "26", "132"]
    assert rows["total"] == ["total", "14", "272"]
    assert "priced with 4 dry runs for 14 jobs" in out and "--cost-each prices every job" in out
    assert "placeholder asset id" in out


def test_totals_per_batch(tmp_path: Path, pricer: Pricer, capsys: pytest.CaptureFixture[str]) -> None:
    """The per-batch totals and the grand total add up the dry-run prices of every job."""
    path = manifest(tmp_path)
    status, out, _ = plan(capsys, str(path), "--cost", "--api-url", pricer.url, "--json")
    assert status == 0
    jobs = json.loads(out)
    by_batch: dict[str, float] = {}
    for job in jobs:
        expected = 2.0 * job["params"].get("duration", 5) + 10 * job["params"]["videoStrength"]
        assert job["cost_cu"] == expected
        by_batch[job["batch"]] = by_batch.get(job["batch"], 0.0) + expected
    status, out, _ = plan(capsys, str(path), "--cost", "--api-url", pricer.url)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("          ")}
    assert float(rows["strengths"][-1].replace(",", "")) == by_batch["strengths"]
    assert float(rows["durations"][-1].replace(",", "")) == by_batch["durations"]
    assert float(rows["total"][-1].replace(",", "")) == sum(by_batch.values())
    assert f"cost      {sum(by_batch.values()):g} CU for 14 jobs" in out


def test_cost_each(tmp_path: Path, pricer: Pricer, capsys: pytest.CaptureFixture[str]) -> None:
    """--cost-each prices every job, prompt and seed apart, and says so."""
    status, out, err = plan(capsys, str(manifest(tmp_path)), "--cost-each", "--api-url", pricer.url, "--limit", "2")
    assert status == 0, err
    assert len(pricer.requests) == 14
    assert len({json.dumps(r["body"], sort_keys=True) for r in pricer.requests}) == 14
    assert "14 dry runs, one per job (--cost-each)" in out


def test_reuses_recorded_asset_ids(tmp_path: Path, pricer: Pricer, capsys: pytest.CaptureFixture[str]) -> None:
    """An input the run folder's journal recorded as uploaded is sent as its asset id, not a placeholder."""
    path = manifest(tmp_path)
    sha256 = load_manifest(path).input_files()[0].sha256
    run_dir = tmp_path / "out" / "priced"
    run_dir.mkdir(parents=True)
    (run_dir / JOURNAL_NAME).write_text(json.dumps({"t": 1.0, "ev": "upload", "sha256": sha256,
                                                    "asset_id": "asset_real1"}) + "\n")
    status, out, err = plan(capsys, str(path), "--cost", "--api-url", pricer.url)
    assert status == 0, err
    assert {r["body"]["video"] for r in pricer.requests} == {"asset_real1"}
    assert "placeholder" not in out and "1 input file(s) sent as the asset ids" in out


def test_needs_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Without credentials: a clear error naming what to set, exit 2, and no socket opened."""
    monkeypatch.delenv("SCENARIO_API_KEY")
    path = manifest(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("plan opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    status, out, err = plan(capsys, str(path), "--cost")
    assert status == 2
    assert "SCENARIO_API_KEY" in err and "--emulator" in err


def test_plain_plan_stays_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Without --cost, plan sends nothing and prints no cost."""
    monkeypatch.setattr(socket, "socket", lambda *a, **k: (_ for _ in ()).throw(AssertionError("socket")))
    status, out, _ = plan(capsys, str(manifest(tmp_path)))
    assert status == 0 and "cost" not in out


def text(body: str, status: int = 200, content_type: str = "application/json") -> Answer:
    return lambda _: web.Response(status=status, text=body, content_type=content_type)


@pytest.mark.parametrize(("answer", "exit_status", "says"), [
    (text("<html>Just a moment...</html>", 200, "text/html"), 1, "not JSON"),
    (text("<html>Bad gateway</html>", 502, "text/html"), 1, "HTTP 502"),
    (text('{"message": "videoStrength must be a number", "traceId": "tr-9"}', 400), 1,
     "HTTP 400 from http"),
    (text('{"message": "videoStrength must be a number", "traceId": "tr-9"}', 400), 1, "trace id tr-9"),
    (text('{"message": "Unauthorized"}', 401), 3, "HTTP 401"),
    (text('{"creativeUnitsDiscount": 0}', 269), 1, "no creativeUnitsCost (keys: creativeUnitsDiscount)"),
    (text('{"creativeUnitsCost": "12"}', 200), 1, "creativeUnitsCost is not a number"),
    (text('{"creativeUnitsCost": -3}', 269), 1, "finite number >= 0"),
    (text('[1, 2]', 200), 1, "not a JSON object"),
    (text('{"creativeUnitsCost": 1e999}', 200), 1, "finite number >= 0"),
])
def test_bad_answers(tmp_path: Path, pricer: Pricer, capsys: pytest.CaptureFixture[str], answer: Answer,
                     exit_status: int, says: str) -> None:
    """A dry-run answer that cannot be used: the job located (batch, index, key), why, non-zero exit, no traceback."""
    pricer.answer = answer
    status, out, err = plan(capsys, str(manifest(tmp_path)), "--cost", "--api-url", pricer.url)
    assert status == exit_status
    assert "ltx-batch plan: error:" in err and says in err
    assert "batch 'strengths', job " in err or "batch 'durations', job " in err
    assert "dryRun" in err or "HTTP" in err


def test_emulator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--emulator prices against the built-in emulator, as `run --emulator` runs, with no credentials."""
    pytest.importorskip("pipeline.emulator")
    status, out, err = plan(capsys, str(manifest(tmp_path)), "--cost", "--emulator")
    if status != 0 and "creativeUnitsCost" in err:
        pytest.skip("the emulator does not answer dry runs yet")
    assert status == 0, err
    assert "CU for 14 jobs" in out and "priced with 4 dry runs" in out
