"""The emulator's tuning knobs: one frozen dataclass, its checks, and coercion from JSON or CLI text.

Each field carries its help text in `metadata["help"]`, which `ltx-batch emulator`
turns into a command-line flag (`job_time_s` -> `--job-time-s`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

EMULATOR_API_KEY = "emulator-key"
EMULATOR_API_SECRET = "emulator-secret"

FAULT_KINDS: tuple[str, ...] = (
    "5xx", "reset", "truncate", "job_failure", "job_canceled", "lost_response", "credits", "bad_json",
    "unknown_status", "upload_failure", "stale_update",
)
"""Fault kinds; the knob for kind `k` is `fault_{k}_rate` and `/_emulator/stats` counts it under `faults[k]`."""


KNOWN_STATUSES = ("pending", "queued", "warming-up", "in-progress", "finalizing", "success", "failure", "canceled")
"""The job statuses of api-notes "Jobs" (confirmed)."""


def _knob(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class EmulatorKnobs:
    """How the emulated service behaves: timing, limits, URL lifetime and fault probabilities.

    Rates are probabilities in 0..1 drawn per request (per job for job faults) from
    streams seeded by `seed`, one stream per fault kind, so a test's faults repeat.
    """

    job_time_s: float = _knob(2.0, "mean time a job runs once it has a running slot")
    job_time_spread_s: float = _knob(0.0, "run time is uniform in mean +/- this spread")
    job_pending_s: float = _knob(0.05, "time a new job is 'pending' before it is 'queued'")
    max_running_jobs: int = _knob(4, "jobs running at once per account; the rest wait in 'queued' (FIFO)")
    job_concurrency_limit: int | None = _knob(
        None, "generate answers 429 {details: {actionName: model_run, actionLimit}} while this many jobs are "
              "pending, queued or running (none: no cap)")
    rate_limit_per_s: float | None = _knob(None, "API requests per second per account before 429 (none: unlimited)")
    rate_limit_burst: int | None = _knob(None, "token-bucket size for the rate limit (none: ceil(rate))")
    send_retry_after: bool = _knob(True, "send a Retry-After header (whole seconds) with the rate limit's 429")
    cooldown_s: float = _knob(0.0, "a cooldown: for this many seconds from when it is set, every API request gets "
                                   "429 with remainingSeconds and no Retry-After (0: none)")
    url_ttl_s: float = _knob(600.0, "lifetime of a signed CDN download URL")
    transform_deliveries: bool = _knob(True, "the default asset URL serves a transformed copy; originalAssets=true "
                                             "the original (off: both serve the original)")
    max_upload_bytes: int = _knob(16 * 2**30, "largest file accepted (an upload's fileSize, a JSON image's data)")
    asset_image_max_bytes: int = _knob(6_000_000, "POST /v1/assets takes images under this size; bigger ones and "
                                                  "videos get 400 (they go through POST /v1/uploads)")
    max_json_body_bytes: int = _knob(10_000_000, "largest JSON request body (the gateway's cap); 413 beyond")
    upload_processing_s: float = _knob(0.5, "time from 'complete' to 'imported' (validating, then validated)")
    upload_url_ttl_s: float = _knob(3600.0, "lifetime of a presigned part URL; later PUTs get 403")
    upload_dir: str = _knob("", "folder for uploaded parts (empty: the system's temporary folder)")
    output_kind: str = _knob("video", "what hosted models output: video (the input video, stamped; video/mp4) or "
                                      "image (a small stamped PNG; mimeType and CDN Content-Type image/png)")
    output_pad_bytes: int = _knob(0, "zero bytes added to each output's free box (large-output benchmarks)")
    cdn_bytes_per_s: float | None = _knob(None, "speed of each CDN download, paced per chunk (none: as fast as "
                                                "the machine goes)")
    cu_per_second: float = _knob(4.0, "price model: CU per output second at 720p and 40 steps (see pricing)")
    credits_jobs: int | None = _knob(None, "jobs the account may still create before 402 (none: unlimited)")
    spending_cap_cu: float | None = _knob(None, "the API key's CU spending cap: a job that would pass it is refused "
                                                "(none: no cap)")
    spending_cap_status: int = _knob(403, "HTTP status of the spending-cap refusal (a 4xx)")
    required_plan: str | None = _knob(None, "generate (and its dry run) answer 403 ModelAccessRestrictedError "
                                            "naming this plan (none: the plan covers the model)")
    project_id: str | None = _knob(None, "the project the API key is bound to: a request naming another projectId "
                                         "gets 403 (none: any projectId is accepted)")
    revoke_auth: bool = _knob(False, "answer 401 to every API request, even with the right key")
    error_message_key: str = _knob("error", "where error bodies put the message: error, message, reason or detail")
    list_rows_with_input: bool = _knob(False, "GET /v1/jobs rows carry metadata.input (unconfirmed; off: they do "
                                              "not, fetch the job)")
    list_rows_with_results: bool = _knob(True, "GET /v1/jobs rows carry metadata.assetIds, error and hint "
                                               "(unconfirmed; off: they do not, fetch the job)")
    jobs_list_order: str = _knob("newest", "GET /v1/jobs order (unconfirmed): newest or oldest first")
    list_short_pages: bool = _knob(False, "GET /v1/jobs pages hold fewer rows than pageSize while more follow: "
                                          "none on the first page, half on the others (scenario-sdk: a page can "
                                          "hold fewer jobs than pageSize, or none, while nextPaginationToken is "
                                          "set)")
    list_jobs_refused: int | None = _knob(None, "GET /v1/jobs answers this 4xx status (a key that may not list "
                                                "jobs; none: it lists)")
    unknown_status: str = _knob("rescheduling", "status word reported by jobs hit by the unknown-status fault")
    fault_5xx_rate: float = _knob(0.0, "API/CDN/part request answered 500/502/503")
    fault_reset_rate: float = _knob(0.0, "API/CDN/part request whose TCP connection is reset with no response")
    fault_truncate_rate: float = _knob(0.0, "CDN download that sends the full Content-Length but stops half-way")
    fault_job_failure_rate: float = _knob(0.0, "job that ends in 'failure' with metadata.error and metadata.hint")
    fault_job_canceled_rate: float = _knob(0.0, "job that ends 'canceled' (by the service) with metadata.error")
    fault_lost_response_rate: float = _knob(0.0, "generate request that creates the job, then drops the connection")
    fault_credits_rate: float = _knob(0.0, "generate request refused with 402 Insufficient credits")
    fault_bad_json_rate: float = _knob(0.0, "API request answered 200 with a non-JSON or wrong-shape body")
    fault_unknown_status_rate: float = _knob(0.0, "job that reports `unknown_status` while queued and warming up")
    fault_upload_failure_rate: float = _knob(0.0, "completed upload that ends 'failed' with an errorMessage")
    fault_stale_update_rate: float = _knob(0.0, "job whose status changes do not move its updatedAt (it stays at its "
                                                "creation date): a listing by update date never shows it finish")
    seed: int = _knob(0, "seed of every random stream (fault draws, run times, ids)")

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ValueError("; ".join(problems))

    def replace(self, **changes: Any) -> EmulatorKnobs:
        """A copy with `changes` applied (checked like the constructor)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The knobs as a JSON-ready mapping (what `GET /_emulator/config` returns)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def burst(self) -> int:
        """The effective token-bucket size."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit_per_s or 1))


KNOB_NAMES: tuple[str, ...] = tuple(f.name for f in fields(EmulatorKnobs))


def knob_type(name: str) -> tuple[type, bool]:
    """The base type of a knob and whether it may be None (from its annotation text)."""
    annotation = str(next(f.type for f in fields(EmulatorKnobs) if f.name == name))
    optional = annotation.endswith("| None")
    base = annotation.removesuffix("| None").strip()
    return {"float": float, "int": int, "bool": bool, "str": str}[base], optional


def coerce_knob(name: str, value: Any) -> Any:
    """Check one JSON value against the knob's type (an int is a fine float; a bool is not a number)."""
    if name not in KNOB_NAMES:
        raise ValueError(f"unknown knob {name!r}")
    kind, optional = knob_type(name)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} must not be null")
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, bool):
        pass
    elif kind is int and isinstance(value, int):
        return value
    elif kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    elif kind is float and isinstance(value, (int, float)):
        return float(value)
    raise ValueError(f"{name} must be {'a ' + kind.__name__}{' or null' if optional else ''}, not {value!r}")


def apply_changes(knobs: EmulatorKnobs, changes: Mapping[str, Any]) -> EmulatorKnobs:
    """`knobs` with JSON `changes` coerced and applied; ValueError names the bad knob."""
    return knobs.replace(**{name: coerce_knob(str(name), value) for name, value in changes.items()})


def _problems(knobs: EmulatorKnobs) -> list[str]:
    out = []
    for f in fields(knobs):
        value = getattr(knobs, f.name)
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            out.append(f"{f.name} must be finite")
        elif value < 0:
            out.append(f"{f.name} must not be negative")
        elif f.name.startswith("fault_") and value > 1:
            out.append(f"{f.name} is a probability (0..1), not {value}")
    if knobs.max_running_jobs < 1:
        out.append("max_running_jobs must be at least 1")
    if knobs.rate_limit_per_s is not None and knobs.rate_limit_per_s <= 0:
        out.append("rate_limit_per_s must be greater than 0 (or none)")
    if knobs.rate_limit_burst is not None and knobs.rate_limit_burst < 1:
        out.append("rate_limit_burst must be at least 1 (or none)")
    if not knobs.unknown_status or knobs.unknown_status in KNOWN_STATUSES:
        out.append("unknown_status must be a non-empty word that is not a known status")
    if knobs.job_concurrency_limit is not None and knobs.job_concurrency_limit < 1:
        out.append("job_concurrency_limit must be at least 1 (or none)")
    if knobs.cdn_bytes_per_s is not None and knobs.cdn_bytes_per_s <= 0:
        out.append("cdn_bytes_per_s must be greater than 0 (or none)")
    if knobs.list_jobs_refused is not None and not 400 <= knobs.list_jobs_refused <= 499:
        out.append("list_jobs_refused must be a 4xx status")
    if not 400 <= knobs.spending_cap_status <= 499:
        out.append("spending_cap_status must be a 4xx status")
    if knobs.error_message_key not in ("error", "message", "reason", "detail"):
        out.append("error_message_key must be one of error, message, reason, detail")
    if knobs.output_kind not in ("video", "image"):
        out.append("output_kind must be video or image")
    if knobs.jobs_list_order not in ("newest", "oldest"):
        out.append("jobs_list_order must be newest or oldest")
    return out
