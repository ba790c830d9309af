"""Counters behind `GET /_emulator/stats`: requests per route, statuses, faults and job figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.emulator.knobs import FAULT_KINDS

# the keys of `requests` (the API routes; anything unmatched counts as "<METHOD> other")
ROUTE_UPLOAD = "POST /v1/assets"
ROUTE_UPLOADS = "POST /v1/uploads"
ROUTE_PART = "PUT /_s3"
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
    concurrency_limited: int = 0  # 429s of the concurrency cap
    cooldown_refused: int = 0  # 429s of a cooldown
    access_restricted: int = 0  # 403 ModelAccessRestrictedError
    spending_capped: int = 0  # refusals of the CU spending cap
    project_mismatch: int = 0  # 403s for a projectId other than the key's
    project_ids: Counter[str] = field(default_factory=Counter)  # projectId sent on API requests ("" = none)
    dry_runs: int = 0
    uploads: int = 0  # assets made from uploaded files, either way (POST /v1/assets or an imported upload)
    upload_bytes: int = 0
    multipart_created: int = 0
    multipart_imported: int = 0
    multipart_failed: int = 0
    multipart_size_mismatch: int = 0  # imported uploads whose bytes differ from the declared fileSize
    parts_received: int = 0
    part_bytes: int = 0
    parts_refused: int = 0  # part PUTs answered with an S3 error (auth header, signature, expiry, state)
    cu_charged: float = 0.0  # creativeUnitsCost of jobs created, minus refunds of failed and canceled ones
    jobs_created: int = 0
    jobs_succeeded: int = 0
    jobs_failed: int = 0
    jobs_canceled: int = 0
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
            "concurrency_limited": self.concurrency_limited,
            "cooldown_refused": self.cooldown_refused,
            "access_restricted": self.access_restricted,
            "spending_capped": self.spending_capped,
            "project_mismatch": self.project_mismatch,
            "project_ids": dict(sorted(self.project_ids.items())),
            "dry_runs": self.dry_runs,
            "uploads": self.uploads,
            "upload_bytes": self.upload_bytes,
            "multipart_created": self.multipart_created,
            "multipart_imported": self.multipart_imported,
            "multipart_failed": self.multipart_failed,
            "multipart_size_mismatch": self.multipart_size_mismatch,
            "parts_received": self.parts_received,
            "part_bytes": self.part_bytes,
            "parts_refused": self.parts_refused,
            "cu_charged": self.cu_charged,
            "jobs_created": self.jobs_created,
            "jobs_succeeded": self.jobs_succeeded,
            "jobs_failed": self.jobs_failed,
            "jobs_canceled": self.jobs_canceled,
            "cdn_bytes_sent": self.cdn_bytes_sent,
            "cdn_denied": self.cdn_denied,
        }
