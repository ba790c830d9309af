"""`ltx-batch models [MODEL_ID]`: the models `generate/custom` can run (video ones first, with their
capabilities), or one model's parameters as a table (name, type, range or values, default, required, cost).

The listing asks the API every time (the public models and the account's own, every page); a model's
parameters come from `model_schema.resolve_schema` (built in, cached, or fetched once and cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import aiohttp

from pipeline.api.budget import RequestBudget
from pipeline.api.client import ApiClient
from pipeline.api.models import list_models
from pipeline.cli.model_schema import ResolvedSchema, resolve_schema
from pipeline.config import Credentials, Settings, load_credentials, load_settings
from pipeline.errors import ApiError
from pipeline.manifest.schema import ModelInput, ModelSchema, input_json
from pipeline.manifest.schema_check import describe_allowed, describe_condition, describe_range

log = logging.getLogger(__name__)

HELP = "list the models generate/custom can run, or show one model's parameters (MODEL_ID)"
MIB = 1024 * 1024


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_ID", nargs="?",
                        help="show this model's parameters (e.g. model_ltx-2-3-22b-video-to-video)")
    parser.add_argument("--json", action="store_true", help="print JSON (a model: every field of every input)")
    parser.add_argument("--refresh-model", action="store_true",
                        help="fetch the model's description again, whatever the age of the cached one")
    parser.add_argument("--config", metavar="FILE", help="a YAML file of settings")
    parser.add_argument("--api-url", metavar="URL", help="API base URL (also SCENARIO_API_URL)")
    parser.add_argument("--project-id", metavar="ID", help="Scenario project id, sent as projectId")
    parser.add_argument("--emulator", action="store_true",
                        help="ask the built-in emulator on a free loopback port (no credentials)")


def execute(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, overrides={"api_base_url": args.api_url,
                                                                  "project_id": args.project_id})
    if args.model:
        resolved = resolve_schema(args.model, settings, refresh=args.refresh_model, emulator=args.emulator)
        if args.json:
            _dump(schema_json(resolved))
        else:
            print(schema_text(resolved, now_s=time.time()))
        return 0
    credentials = None if args.emulator else load_credentials()
    rows = runnable(asyncio.run(_list(settings, credentials)))
    if args.json:
        _dump([{"id": r["id"], "name": r.get("name", ""), "capabilities": r.get("capabilities", []),
                "privacy": r.get("privacy", ""), "video": makes_video(r)} for r in rows])
    else:
        print(models_text(rows))
    return 0


async def _list(settings: Settings, credentials: Credentials | None) -> list[dict[str, Any]]:
    """The public models, then the account's own, every page."""
    from pipeline.cli.run import embedded_emulator
    from pipeline.emulator import EMULATOR_API_KEY, EMULATOR_API_SECRET

    async with AsyncExitStack() as stack:
        if credentials is None:
            url = await stack.enter_async_context(embedded_emulator())
            credentials, settings = Credentials(EMULATOR_API_KEY, EMULATOR_API_SECRET), replace(settings,
                                                                                               api_base_url=url)
        session = await stack.enter_async_context(aiohttp.ClientSession(raise_for_status=False))
        api = ApiClient(session, settings, credentials, RequestBudget(settings.max_requests_per_s))
        public = await list_models(api, public=True)
        try:
            own = await list_models(api, public=False)
        except ApiError as exc:  # the public ones are still worth showing
            log.warning("could not list the account's own models (only the public ones are shown): %s", exc)
            own = []
        return [*public, *own]


# -- the listing (pure) ----------------------------------------------------------------------------


def makes_video(row: dict[str, Any]) -> bool:
    """A model whose capabilities include making a video (txt2video, img2video, video2video, audio2video)."""
    return any(isinstance(c, str) and c.endswith("2video") for c in row.get("capabilities") or ())


def runnable(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of models `generate/custom` runs (`custom`, trained), once each, the video ones first (the
    listing's order kept within each group: there is no server-side capability filter)."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        custom = row.get("custom") is True or (row.get("custom") is None and row.get("type") == "custom")
        if row["id"] in seen or not custom or row.get("status", "trained") != "trained":
            continue
        seen.add(row["id"])
        kept.append(row)
    return sorted(kept, key=lambda row: not makes_video(row))


def models_text(rows: Sequence[dict[str, Any]]) -> str:
    table = [("model id", "name", "capabilities")]
    table += [(r["id"], str(r.get("name") or ""), ", ".join(map(str, r.get("capabilities") or ()))) for r in rows]
    videos = sum(makes_video(r) for r in rows)
    return "\n".join([*_columns(table),
                      f"\n{len(rows)} models generate/custom can run, {videos} of them making video; "
                      "`ltx-batch models MODEL_ID` shows one's parameters"])


# -- one model (pure) ------------------------------------------------------------------------------


def schema_text(resolved: ResolvedSchema, *, now_s: float) -> str:
    """The model, where its parameters come from, and a row per input."""
    schema = resolved.schema
    head = f"{schema.model_id}" + (f": {schema.name}" if schema.name else "")
    if schema.capabilities:
        head += f" ({', '.join(schema.capabilities)})"
    table = [("name", "type", "range / values", "default", "required", "cost")]
    table += [(i.name, i.type, values_text(i), default_text(i), required_text(i), "yes" if i.cost_impact else "")
              for i in schema.inputs]
    lines = [head, f"parameters: {resolved.describe(now_s)}", "", *_columns(table)]
    if not schema.inputs:
        lines.append("(no inputs: not a model generate/custom runs)")
    lines.append("\n`--json` shows every field of every input, descriptions included")
    return "\n".join(lines)


def values_text(item: ModelInput) -> str:
    """The range or the allowed values of an input, and for a file its kind and limits."""
    if item.is_file:
        parts = [item.kind or "any kind"]
        if item.is_array:
            parts.append(_count_text(item, "files"))
        if item.max_size_bytes is not None:
            parts.append(f"<= {item.max_size_bytes / MIB:,.0f} MB")
        if item.max_duration_s is not None:
            parts.append(f"<= {item.max_duration_s:g} s")
        return ", ".join(p for p in parts if p)
    if item.allowed_values:
        text = describe_allowed(item)
    elif item.item_type == "number":
        text = describe_range(item)
    elif item.item_type == "boolean":
        text = "true, false"
    elif item.max_length is not None and not item.is_array:
        text = f"<= {item.max_length:,} characters"
    else:
        text = ""
    if item.is_array:
        text = ", ".join(p for p in (text, _count_text(item, "items")) if p)
    return text


def default_text(item: ModelInput) -> str:
    value = item.default
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    label = item.label_of(value)
    shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return f"{shown} ({label})" if label and str(value) not in label else shown


def required_text(item: ModelInput) -> str:
    rule = item.required
    if rule.always:
        return "always"
    parts = [f"if {name} is set" for name, _ in rule.if_defined]
    if rule.if_not_defined:
        parts.append("unless " + " or ".join(name for name, _ in rule.if_not_defined) + " is set")
    parts += [f"if {describe_condition(c)}" for c in rule.conditions]
    return "; ".join(parts)


def schema_json(resolved: ResolvedSchema) -> dict[str, Any]:
    schema: ModelSchema = resolved.schema
    return {"id": schema.model_id, "name": schema.name, "capabilities": list(schema.capabilities),
            "source": resolved.source, "fetchedAtS": resolved.fetched_at_s,
            "cachePath": str(resolved.path) if resolved.path else None,
            "inputs": [input_json(i) for i in schema.inputs]}


def _count_text(item: ModelInput, noun: str) -> str:
    low, high = item.min_length, item.max_length
    if low is not None and high is not None:
        return f"{low} to {high} {noun}"
    if high is not None:
        return f"at most {high} {noun}"
    return f"at least {low} {noun}" if low is not None else f"a list of {noun}"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
