"""Counters behind `GET /_emulator/stats`: requests per route, statuses, faults and job figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.emulator.knobs import FAULT_KINDS

# the keys of `requests` (the API routes; anything unmatched counts as "<METHOD> other")
ROUTE_UPLOAD = "POST /v1/assets"
ROUTE_ASSET = "GET /v1/assets/{assetId}"
ROUTE_GENERATE = "POST /v1/generate/custom/{modelId}"
ROUTE_JOB = "GET /v1/jobs/{jobId}"
ROUTE_CDN = "GET /_cdn"
ROUTE_CDN_HEAD = "HEAD /_cdn"


@dataclass(slots=True)
class Stats:
    """Counts since start (or the last reset). Job figures that are live state come from the job board."""

    requests: Counter[str] = field(default_factory=Counter)  # "METHOD /route/{param}" -> count
    responses: Counter[str] = field(default_factory=Counter)  # "200", "429", ..., "reset" -> count
    faults: Counter[str] = field(default_factory=Counter)  # fault kind -> count
    unauthorized: int = 0
    rate_limited: int = 0
    credits_exhausted: int = 0  # 402s because `credits_jobs` ran out (random ones are faults["credits"])
    uploads: int = 0
    upload_bytes: int = 0
    jobs_created: int = 0
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    cdn_bytes_sent: int = 0
    cdn_denied: int = 0  # 403: expired or forged token

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "responses": dict(sorted(self.responses.items())),
            "faults": {kind: self.faults[kind] for kind in FAULT_KINDS},
            "unauthorized": self.unauthorized,
            "rate_limited": self.rate_limited,
            "credits_exhausted": self.credits_exhausted,
            "uploads": self.uploads,
            "upload_bytes": self.upload_bytes,
            "jobs_created": self.jobs_created,
            "jobs_succeeded": self.jobs_succeeded,
            "jobs_failed": self.jobs_failed,
            "cdn_bytes_sent": self.cdn_bytes_sent,
            "cdn_denied": self.cdn_denied,
        }
