"""Which schema a model's jobs are checked against: the built-in one, the cached description, or a fresh fetch.

- `model_ltx-2-19b-video-to-video`: the built-in schema (`pipeline.manifest.schema.builtin_schema`, the
  parameter table), offline, always: plan and rerun of its manifests never depend on the network.
- any other model: its description from the per-user cache (`pipeline.api.model_cache`) while younger than
  `model_schema_max_age_s`, else fetched with `GET /v1/models/{modelId}` (credentials and `--api-url` as for
  `run`) and cached. `refresh` fetches it now whatever its age. A stale entry is still used, with a warning,
  when it cannot be renewed (no credentials, the API unreachable); never when the fetch says the model is
  unknown, and never for an explicit refresh.
- with the embedded emulator: fetched from it each time, never cached (its URL changes every run).

Without a cached entry and without credentials, or when the fetch fails, the error says what to do; nothing
else is sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from pipeline.api.budget import RequestBudget
from pipeline.api.client import ApiClient
from pipeline.api.model_cache import CachedModel, ModelCache, cache_root
from pipeline.api.models import check_model_id, fetch_model
from pipeline.config import Credentials, Settings, load_credentials
from pipeline.errors import ApiError, AuthError, ConfigError, PipelineError, Problem
from pipeline.manifest.params import MODEL_ID
from pipeline.manifest.schema import ModelSchema, SchemaError, builtin_schema, parse_model

log = logging.getLogger(__name__)

FETCH_RETRIES = 2  # a schema fetch is interactive: a few seconds of retries, not a run's patience


class SchemaUnavailable(PipelineError):
    """A model's description could not be fetched (nor found in the cache)."""


@dataclass(frozen=True, slots=True)
class ResolvedSchema:
    """A model's schema and where it came from: "built-in", "cache", "fetched" or "stale cache"."""

    schema: ModelSchema
    source: str
    fetched_at_s: float | None = None
    path: Path | None = None  # the cache file
    api_url: str = ""

    def describe(self, now_s: float) -> str:
        """Where the parameters come from, in words (for `models ID` and the logs)."""
        if self.source == "built-in":
            return "built in (the parameter table of ltx-batch itself; no network)"
        when = "" if self.fetched_at_s is None else f" {_ago(now_s - self.fetched_at_s)}"
        where = f" (cached in {self.path})" if self.path else ""
        if self.source == "fetched":
            return f"fetched from {self.api_url}{when}{where}"
        stale = " (stale: it could not be renewed; --refresh-model tries again)" if self.source == "stale cache" else ""
        return f"the description fetched from {self.api_url}{when}, cached in {self.path}{stale}"


def resolve_schema(model_id: str, settings: Settings, *, refresh: bool = False, emulator: bool = False,
                   environ: Mapping[str, str] | None = None, now_s: float | None = None) -> ResolvedSchema:
    """The schema of `model_id` (see the module docstring); UnknownModel (exit 2) for a model the API does not
    know, ConfigError (exit 2) when it must be fetched and there are no credentials, SchemaUnavailable or the
    API's error when the fetch fails."""
    check_model_id(model_id)
    if model_id == MODEL_ID:
        return ResolvedSchema(builtin_schema(), "built-in")
    now_s = time.time() if now_s is None else now_s
    if emulator:
        model = _fetch(model_id, settings, None)
        return ResolvedSchema(_parse(model, model_id, "the emulator"), "fetched", now_s, None, "the embedded emulator")
    env = os.environ if environ is None else environ
    key = env.get("SCENARIO_API_KEY", "")
    cache = ModelCache(cache_root(env), key) if key else None
    url = settings.api_base_url
    cached = cache.read(model_id, api_url=url) if cache is not None else None
    if cached is not None and not refresh and not cached.stale(now_s, settings.model_schema_max_age_s):
        return _from_cache(cached, model_id, "cache")
    try:
        credentials = load_credentials(env)
    except ConfigError:
        if cached is not None and not refresh:
            return _stale(cached, model_id, now_s, "no credentials to renew it")
        raise ConfigError(Problem("", f"the parameters of model {model_id} are not cached yet: set "
                                      "SCENARIO_API_KEY and SCENARIO_API_SECRET (and --api-url or SCENARIO_API_URL "
                                      "for another API than the default) so that ltx-batch fetches them once, or "
                                      "use --emulator")) from None
    try:
        model = _fetch(model_id, settings, credentials)
    except AuthError:
        raise  # wrong credentials: their own message (exit 3)
    except (ApiError, OSError) as exc:  # UnknownModel (a 404) is neither: never hidden behind a stale entry
        if cached is not None and not refresh:
            return _stale(cached, model_id, now_s, str(exc))
        raise SchemaUnavailable(f"could not fetch the parameters of model {model_id} from {url}: {exc}") from None
    schema = _parse(model, model_id, url)
    assert cache is not None
    entry = cache.write(model_id, model, api_url=url, fetched_at_s=now_s)
    return ResolvedSchema(schema, "fetched", now_s, entry.path, url)


def _from_cache(cached: CachedModel, model_id: str, source: str) -> ResolvedSchema:
    return ResolvedSchema(_parse(cached.model, model_id, str(cached.path)), source, cached.fetched_at_s,
                          cached.path, cached.api_url)


def _stale(cached: CachedModel, model_id: str, now_s: float, why: str) -> ResolvedSchema:
    log.warning("using the cached parameters of %s, fetched %s (older than model_schema_max_age_s): %s",
                model_id, _ago(cached.age_s(now_s)), why)
    return _from_cache(cached, model_id, "stale cache")


def _parse(model: dict[str, Any], model_id: str, where: str) -> ModelSchema:
    try:
        return parse_model(model)
    except SchemaError as exc:
        raise SchemaUnavailable(f"the description of model {model_id} from {where} is not usable: {exc}") from None


def _fetch(model_id: str, settings: Settings, credentials: Credentials | None) -> dict[str, Any]:
    """GET /v1/models/{modelId} (credentials None: from the embedded emulator)."""
    return asyncio.run(fetch_description(model_id, settings, credentials))


async def fetch_description(model_id: str, settings: Settings, credentials: Credentials | None) -> dict[str, Any]:
    from pipeline.cli.run import embedded_emulator
    from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET

    settings = replace(settings, max_retries=min(settings.max_retries, FETCH_RETRIES))
    async with AsyncExitStack() as stack:
        if credentials is None:
            url = await stack.enter_async_context(embedded_emulator())
            credentials, settings = Credentials(EMULATOR_API_KEY, EMULATOR_API_SECRET), replace(settings,
                                                                                               api_base_url=url)
        session = await stack.enter_async_context(aiohttp.ClientSession(raise_for_status=False))
        api = ApiClient(session, settings, credentials, RequestBudget(settings.max_requests_per_s))
        return await fetch_model(api, model_id)


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (1 if unit != "day" else 2):
            value = int(seconds // size)
            return f"{value} {unit}{'s' if unit == 'day' and value != 1 else ''} ago"
    return f"{int(seconds)} s ago"
