"""`ltx-batch models` and the schema of a model's jobs (issue 15): fetched once, cached per user (per API key hash,
with its fetch time), renewed when stale or on --refresh-model, clear errors when it cannot be had.

The commands run synchronously (`asyncio.run` inside), so the emulator runs in a thread of its own here, on
127.0.0.1 with an ephemeral port; requests are counted by the emulator itself."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.api.model_cache import ModelCache, cache_root, key_folder
from pipeline.api.models import UnknownModel
from pipeline.cli.main import main
from pipeline.cli.model_schema import SchemaUnavailable, resolve_schema
from pipeline.cli.models import required_text, runnable, values_text
from pipeline.config import load_settings
from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET, Emulator, EmulatorServer
from pipeline.emulator.catalog import LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID
from pipeline.errors import ConfigError
from pipeline.manifest.params import MODEL_ID
from pipeline.manifest.schema import parse_model

MODEL_ROUTE = "GET /v1/models/{modelId}"
WEEK_S = 604800


class Threaded:
    """An emulator serving from its own thread and loop (`url`, `emulator`, `stop()`)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = EmulatorServer(Emulator(), host="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)
        self.url = self.server.url
        self.running = True

    @property
    def fetches(self) -> int:
        return self.server.emulator.counters.requests[MODEL_ROUTE]

    def stop(self) -> None:
        if self.running:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
            self.running = False

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def api() -> Iterator[Threaded]:
    server = Threaded()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The emulator's credentials, the user's cache under tmp_path, quick retries."""
    values = {"SCENARIO_API_KEY": EMULATOR_API_KEY, "SCENARIO_API_SECRET": EMULATOR_API_SECRET,
              "XDG_CACHE_HOME": str(tmp_path / "cache"), "LTX_BATCH_MAX_RETRIES": "1",
              "LTX_BATCH_BACKOFF_BASE_S": "0.01", "LTX_BATCH_BACKOFF_MAX_S": "0.02"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SCENARIO_API_URL", raising=False)
    return values


def settings_for(url: str, **overrides: Any) -> Any:
    return load_settings(overrides={"api_base_url": url, **overrides})


def command(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["models", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


# -- the cache ---------------------------------------------------------------------------------------


def test_fetched_once_then_offline_from_the_cache(api: Threaded, tmp_path: Path) -> None:
    """The first use fetches and caches (under a hash of the key, with the fetch time); the next is offline,
    the server gone; the file holds neither the key nor the secret."""
    settings = settings_for(api.url)
    first = resolve_schema(LTX23_V2V_ID, settings, now_s=1000.0)
    assert (first.source, api.fetches, first.fetched_at_s) == ("fetched", 1, 1000.0)
    assert first.schema.get("conditioningAttentionStrength") is not None and first.schema.get("cameraMotion") is None
    assert first.path == tmp_path / "cache" / "ltx-batch" / "models" / key_folder(EMULATOR_API_KEY) / (
        LTX23_V2V_ID + ".json")
    text = first.path.read_text()
    assert EMULATOR_API_KEY not in text and EMULATOR_API_SECRET not in text and EMULATOR_API_KEY not in str(first.path)
    assert json.loads(text)["fetchedAtS"] == 1000.0 and json.loads(text)["apiUrl"] == api.url
    api.stop()
    again = resolve_schema(LTX23_V2V_ID, settings, now_s=1000.0 + WEEK_S)
    assert again.source == "cache" and again.schema == first.schema and again.fetched_at_s == 1000.0


def test_a_stale_entry_is_fetched_again(api: Threaded) -> None:
    """Older than model_schema_max_age_s: fetched again and the fetch time renewed; a configurable age."""
    settings = settings_for(api.url)
    resolve_schema(RETAKE_ID, settings, now_s=1000.0)
    renewed = resolve_schema(RETAKE_ID, settings, now_s=1001.0 + WEEK_S)
    assert (renewed.source, renewed.fetched_at_s, api.fetches) == ("fetched", 1001.0 + WEEK_S, 2)
    short = settings_for(api.url, model_schema_max_age_s=10)
    assert resolve_schema(RETAKE_ID, short, now_s=1011.0 + WEEK_S).source == "cache"
    assert resolve_schema(RETAKE_ID, short, now_s=1012.0 + WEEK_S).source == "fetched" and api.fetches == 3


def test_refresh_fetches_whatever_the_age(api: Threaded) -> None:
    """--refresh-model: a fresh entry is fetched again; if that fails, an error (not the old entry)."""
    settings = settings_for(api.url)
    resolve_schema(SEEDANCE_ID, settings, now_s=1000.0)
    assert resolve_schema(SEEDANCE_ID, settings, refresh=True, now_s=1001.0).source == "fetched" and api.fetches == 2
    api.stop()
    with pytest.raises(SchemaUnavailable, match=f"could not fetch the parameters of model {SEEDANCE_ID}"):
        resolve_schema(SEEDANCE_ID, settings, refresh=True, now_s=1002.0)


def test_a_stale_entry_serves_when_it_cannot_be_renewed(api: Threaded, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Stale, and the API unreachable or no secret: the old entry is used, with a warning saying so."""
    settings = settings_for(api.url)
    resolve_schema(RETAKE_ID, settings, now_s=1000.0)
    api.stop()
    late = 2000.0 + WEEK_S
    assert resolve_schema(RETAKE_ID, settings, now_s=late).source == "stale cache"
    monkeypatch.delenv("SCENARIO_API_SECRET")
    assert resolve_schema(RETAKE_ID, settings, now_s=late).source == "stale cache"
    assert "using the cached parameters of model_ltx-2-retake" in caplog.text


def test_without_credentials_or_cache_the_error_says_what_to_set(api: Threaded, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing cached, no credentials: exit 2 naming SCENARIO_API_KEY and SCENARIO_API_SECRET; nothing sent."""
    monkeypatch.delenv("SCENARIO_API_KEY")
    monkeypatch.delenv("SCENARIO_API_SECRET")
    with pytest.raises(ConfigError, match="set SCENARIO_API_KEY and SCENARIO_API_SECRET"):
        resolve_schema(RETAKE_ID, settings_for(api.url))
    status, out, err = command(capsys, RETAKE_ID, "--api-url", api.url)
    assert status == 2 and "not cached yet: set SCENARIO_API_KEY and SCENARIO_API_SECRET" in err and out == ""
    assert sum(api.server.emulator.counters.requests.values()) == 0


def test_an_unknown_model_is_exit_2_and_nothing_is_cached(api: Threaded, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A 404: "unknown model id", exit 2, no cache entry; an id that cannot be one is refused before any
    request."""
    with pytest.raises(UnknownModel, match="unknown model id 'model_nope'"):
        resolve_schema("model_nope", settings_for(api.url))
    assert not (tmp_path / "cache" / "ltx-batch" / "models" / key_folder(EMULATOR_API_KEY) / "model_nope.json").exists()
    status, _, err = command(capsys, "../../etc/passwd", "--api-url", api.url)
    assert status == 2 and "is not a model id" in err and api.fetches == 1


def test_unreadable_or_foreign_entries_are_misses(api: Threaded, environment: dict[str, str]) -> None:
    """A corrupt file, or an entry fetched from another API URL, is fetched again (and rewritten)."""
    settings = settings_for(api.url)
    cache = ModelCache(cache_root(environment), EMULATOR_API_KEY)
    cache.folder.mkdir(parents=True)
    cache.path(RETAKE_ID).write_text("{not json")
    assert resolve_schema(RETAKE_ID, settings).source == "fetched"
    cache.write(RETAKE_ID, {"id": RETAKE_ID, "inputs": []}, api_url="http://elsewhere", fetched_at_s=0)
    again = resolve_schema(RETAKE_ID, settings)
    assert again.source == "fetched" and again.schema.names and api.fetches == 2


def test_the_builtin_model_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """LTX-2 19B is the built-in schema: no credentials, no server, no cache."""
    monkeypatch.delenv("SCENARIO_API_KEY")
    resolved = resolve_schema(MODEL_ID, settings_for("http://127.0.0.1:9"), refresh=True)
    assert resolved.source == "built-in" and resolved.schema.builtin


def test_cache_root_follows_xdg(tmp_path: Path) -> None:
    """$XDG_CACHE_HOME/ltx-batch when set (absolute), else ~/.cache/ltx-batch."""
    assert cache_root({"XDG_CACHE_HOME": "/x/y", "HOME": "/home/u"}) == Path("/x/y/ltx-batch")
    assert cache_root({"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}) == Path("/home/u/.cache/ltx-batch")
    assert cache_root({"HOME": "/home/u"}) == Path("/home/u/.cache/ltx-batch")


# -- the command -------------------------------------------------------------------------------------


def test_models_lists_video_models_first(capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch models --emulator`: runnable models only (no custom: false one), the video ones first, with
    their capabilities; --json too."""
    status, out, err = command(capsys, "--emulator")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["model", "id", "name", "capabilities"]
    ids = [line.split()[0] for line in lines[1:] if line.startswith("model_")]
    assert ids == [MODEL_ID, LTX23_V2V_ID, RETAKE_ID, SEEDANCE_ID, "model_openai-gpt-image-2"]
    assert "txt2video, img2video, video2video" in out and "5 models generate/custom can run, 4 of them" in out
    status, out, _ = command(capsys, "--emulator", "--json")
    assert [row["video"] for row in json.loads(out)] == [True, True, True, True, False]


def test_model_parameters_as_a_table(api: Threaded, capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch models ID` with credentials and --api-url: name, type, range or values, default, required,
    cost; then from the cache; --json gives every field."""
    status, out, err = command(capsys, SEEDANCE_ID, "--api-url", api.url)
    assert status == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[4:] if line.strip()}
    assert rows["duration"].split()[1:] == ["number", "-1", "(Auto),", "4..15", "-1", "(Auto)", "yes"]
    assert "video, at most 3 files" in rows["referenceVideos"] and "if lastFrameImage is set" in rows["image"]
    assert f"parameters: fetched from {api.url} just now (cached in" in out
    status, out, _ = command(capsys, SEEDANCE_ID, "--api-url", api.url, "--json")
    data = json.loads(out)
    assert status == 0 and data["source"] == "cache" and parse_model(data).get("referenceVideos").max_length == 3  # type: ignore[union-attr]
    assert api.fetches == 1


def test_unknown_model_from_the_command(api: Threaded, capsys: pytest.CaptureFixture[str]) -> None:
    """`ltx-batch models model_nope`: exit 2, the error names the id and says how to list models."""
    status, out, err = command(capsys, "model_nope", "--api-url", api.url)
    assert status == 2 and "unknown model id 'model_nope'" in err and "`ltx-batch models` lists" in err


@pytest.mark.parametrize(("rows", "kept"), [
    ([{"id": "a", "custom": True, "capabilities": ["txt2img"]}, {"id": "b", "custom": True,
                                                                 "capabilities": ["img2video"]}], ["b", "a"]),
    ([{"id": "a", "custom": False}, {"id": "b", "type": "custom"}, {"id": "c", "type": "flux.1-lora"}], ["b"]),
    ([{"id": "a", "custom": True, "status": "training"}, {"id": "a", "custom": True}, {"id": "a", "custom": True}],
     ["a"]),
    ([{"id": "x", "custom": True}, {"id": "v2", "custom": True, "capabilities": ["video2video"]},
      {"id": "y", "custom": True}, {"id": "v1", "custom": True, "capabilities": ["audio2video"]}],
     ["v2", "v1", "x", "y"]),
])
def test_runnable_rows(rows: list[dict[str, Any]], kept: list[str]) -> None:
    """Custom and trained models only, each once, video makers first in listing order."""
    assert [row["id"] for row in runnable(rows)] == kept


@pytest.mark.parametrize(("raw", "values", "required"), [
    ({"name": "f", "type": "file_array", "kind": "video", "minLength": 1, "maxLength": 3, "maxSize": 2 * 2**20,
      "maxDuration": 15}, "video, 1 to 3 files, <= 2 MB, <= 15 s", ""),
    ({"name": "s", "type": "string_array", "allowedValues": ["a", "b"], "required": {"ifNotDefined": {"x": {}}}},
     "'a', 'b', a list of items", "unless x is set"),
    ({"name": "n", "type": "number", "min": 0, "step": 0.5,
      "required": {"conditional": {"values": {"mode": ["a"]}}}}, ">= 0 step 0.5", "if mode is 'a'"),
    ({"name": "b", "type": "boolean", "required": True}, "true, false", "always"),
])
def test_table_cells(raw: dict[str, Any], values: str, required: str) -> None:
    """The range/values and required cells for arrays, steps and every required form."""
    item = parse_model({"id": "m", "inputs": [raw]}).inputs[0]
    assert (values_text(item), required_text(item)) == (values, required)


def test_own_models_refused_still_lists_the_public_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """A key that may not list its own models (403 on GET /v1/models): the public ones are shown, with a
    warning; an API whose public listing fails is an error (exit 3 for a 403)."""
    from aiohttp import web

    refuse_public = False

    async def models(request: web.Request) -> web.Response:
        if request.query.get("privacy") == "public" and not refuse_public:
            return web.json_response({"models": [{"id": "model_v", "custom": True, "capabilities": ["txt2video"]}]})
        return web.json_response({"error": "forbidden"}, status=403)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    try:
        url = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
        status, out, err = command(capsys, "--api-url", url)
        assert status == 0 and "model_v" in out and "could not list the account's own models" in err
        refuse_public = True
        status, out, err = command(capsys, "--api-url", url)
        assert status == 3 and "forbidden" in err and out == ""
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
