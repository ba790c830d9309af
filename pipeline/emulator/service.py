"""`Emulator`: the emulated Scenario service for one account: knobs, assets, jobs, credits and counters.

Everything here runs in the event loop and never blocks it: the job timeline is
computed lazily from timestamps (see `jobs`), big uploads are decoded and outputs
hashed in worker threads. The HTTP layer is `app`; this class is also the
in-process handle tests use (`stats()`, `job_records()`, `configure(...)`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pipeline.emulator.access import TokenBucket, basic_auth_matches
from pipeline.emulator.assets import Asset, AssetStore
from pipeline.emulator.cdn import CDN_PREFIX, UrlSigner
from pipeline.emulator.clock import LoopClock
from pipeline.emulator.faults import JOB_FAILURE_REASONS, FaultDice
from pipeline.emulator.jobs import Job, JobBoard, JobView, view
from pipeline.emulator.knobs import EMULATOR_API_KEY, EMULATOR_API_SECRET, EmulatorKnobs, apply_changes
from pipeline.emulator.media import Layout, layout_sha256, output_layout
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.stats import Stats
from pipeline.emulator.uploads import receive_upload
from pipeline.emulator.validation import check_generate

THREAD_HASH_BYTES = 4 * 2**20  # outputs whose un-cached part is bigger are hashed in a worker thread


class Emulator:
    """One emulated account of the Scenario API; `knob_values` are `EmulatorKnobs` fields.

    The real service's limits, upload format and CDN details are partly
    unconfirmed (see /work/shared/api-notes.md); the knobs make each tunable.
    """

    def __init__(
        self,
        *,
        api_key: str = EMULATOR_API_KEY,
        api_secret: str = EMULATOR_API_SECRET,
        knobs: EmulatorKnobs | None = None,
        **knob_values: Any,
    ) -> None:
        base = knobs or EmulatorKnobs()
        self._knobs = apply_changes(base, knob_values) if knob_values else base
        self._credentials = (api_key, api_secret)
        self._signer = UrlSigner(os.urandom(32))
        self._dice = FaultDice(self._knobs.seed)
        self._board = JobBoard(max_running=self._knobs.max_running_jobs)
        self._assets = AssetStore()
        self._bucket = self._new_bucket(self._knobs)
        self._credits_left = self._knobs.credits_jobs
        self.clock = LoopClock()
        self.counters = Stats()

    def __repr__(self) -> str:
        return f"Emulator(jobs={len(self._board)}, assets={len(self._assets)})"

    # -- knobs -------------------------------------------------------------------------------

    @property
    def knobs(self) -> EmulatorKnobs:
        """The knobs in force now."""
        return self._knobs

    def configure(self, **changes: Any) -> EmulatorKnobs:
        """Change knobs live (ValueError names a bad one). `credits_jobs` sets the credits left from now;
        a new `max_running_jobs` applies from now; a new `seed` restarts the random streams."""
        new = apply_changes(self._knobs, changes)
        old, self._knobs = self._knobs, new
        if new.seed != old.seed:
            self._dice = FaultDice(new.seed)
        if (new.rate_limit_per_s, new.burst) != (old.rate_limit_per_s, old.burst):
            self._bucket = self._new_bucket(new)
        if "credits_jobs" in changes:
            self._credits_left = new.credits_jobs
        if new.max_running_jobs != old.max_running_jobs:
            self._account(self._board.set_max_running(new.max_running_jobs, self.now_s()))
        return new

    @staticmethod
    def _new_bucket(knobs: EmulatorKnobs) -> TokenBucket | None:
        return None if knobs.rate_limit_per_s is None else TokenBucket(knobs.rate_limit_per_s, knobs.burst)

    def now_s(self) -> float:
        """The event loop's clock (the only clock the emulator reads, so tests may patch it)."""
        return self.clock.now_s()

    # -- guards ------------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        """Whether an `Authorization` header carries this account's Basic credentials (and auth is not revoked)."""
        return not self._knobs.revoke_auth and basic_auth_matches(header, *self._credentials)

    def rate_limit_wait_s(self) -> float:
        """0.0 if a request may go ahead now, else the seconds until the rate limit allows one."""
        return 0.0 if self._bucket is None else self._bucket.take(self.now_s())

    def fault(self, kind: str) -> bool:
        """Draw fault `kind` and count it when it strikes."""
        if self._dice.hit(kind, self._knobs):
            self.counters.fault(kind)
            return True
        return False

    @property
    def dice(self) -> FaultDice:
        return self._dice

    # -- assets ------------------------------------------------------------------------------

    async def upload(self, raw: bytes | bytearray) -> Asset:
        """Store an input from a `POST /v1/assets` body (ErrorReply 400/413 on a bad or big one)."""
        upload = await receive_upload(raw, max_bytes=self._knobs.max_upload_bytes)
        asset = Asset(self._dice.new_id("asset"), upload.name, upload.kind, upload.mime_type, self.now_s(),
                      len(upload.data), data=upload.data, sha256=upload.digest.hexdigest(), digest=upload.digest)
        self.counters.uploads += 1
        self.counters.upload_bytes += asset.size
        return self._assets.add(asset)

    def asset(self, asset_id: str) -> Asset:
        """An asset by id (outputs appear once their job succeeded); 404 otherwise."""
        self._sync()
        asset = self._assets.get(asset_id)
        if asset is None:
            raise ErrorReply(404, f"Asset not found: {asset_id}")
        return asset

    def asset_json(self, asset: Asset, base_url: str) -> dict[str, Any]:
        """The asset as `GET /v1/assets/{assetId}` shows it, with a fresh signed CDN URL."""
        expires_ms = self.clock.wall_ms(self.now_s() + self._knobs.url_ttl_s)
        token = self._signer.token(asset.asset_id, expires_ms)
        return {**asset.to_json(), "url": f"{base_url}{CDN_PREFIX}{token}",
                "createdAt": self.clock.iso(asset.created_s)}

    def download(self, token: str) -> tuple[Asset, Layout]:
        """The asset and bytes a CDN token grants; 403 when forged or expired, 404 when gone."""
        now_ms = self.clock.wall_ms(self.now_s())
        checked = self._signer.check(token, now_ms)
        if checked.asset_id is None:
            self.counters.cdn_denied += 1
            raise ErrorReply(403, "URL expired" if checked.problem == "expired" else "Invalid URL signature")
        asset = self.asset(checked.asset_id)
        return asset, self.layout(asset)

    def layout(self, asset: Asset) -> Layout:
        """The bytes of an asset: an upload as stored, an output built from its job's input video."""
        if asset.data is not None:
            return Layout((asset.data,))
        job = self._board.get(asset.job_id or "")
        assert job is not None
        source = self._source(job)
        return output_layout(source.data or b"", job_id=job.job_id, seed=job.params.get("seed"),
                             prompt=str(job.params.get("prompt", "")), pad_bytes=job.pad_bytes)

    def _source(self, job: Job) -> Asset:
        """The uploaded video a job's output is built from (an output used as input counts as its own source)."""
        asset = self._assets.get(job.params["video"])
        while asset is not None and asset.data is None:
            parent = self._board.get(asset.job_id or "")
            asset = self._assets.get(parent.params["video"]) if parent else None
        assert asset is not None
        return asset

    # -- jobs --------------------------------------------------------------------------------

    def create_job(self, model_id: str, body: Any) -> Job:
        """Validate a generate request and queue the job (404 model, 400 params/assets, 402 credits)."""
        params = check_generate(model_id, body, self._assets)
        if self.fault("credits"):
            raise ErrorReply(402, "Insufficient credits")
        if self._credits_left is not None:
            if self._credits_left <= 0:
                self.counters.credits_exhausted += 1
                raise ErrorReply(402, "Insufficient credits")
            self._credits_left -= 1
        knobs = self._knobs
        low = max(0.0, knobs.job_time_s - knobs.job_time_spread_s)
        run_s = self._dice.stream("timing").uniform(low, knobs.job_time_s + knobs.job_time_spread_s)
        failure = self._dice.stream("job_failure").choice(JOB_FAILURE_REASONS) if self.fault("job_failure") else None
        job = Job(self._dice.new_id("job"), model_id, body, params, self.now_s(), run_s,
                  self._dice.new_id("asset"), failure=failure, warmup=self.fault("unknown_status"),
                  pad_bytes=knobs.output_pad_bytes)
        self._account(self._board.add(job, job.created_s))
        self.counters.jobs_created += 1
        return job

    def job(self, job_id: str) -> Job:
        """A job by id, its timeline brought up to now; 404 otherwise."""
        self._sync()
        job = self._board.get(job_id)
        if job is None:
            raise ErrorReply(404, f"Job not found: {job_id}")
        return job

    def job_json(self, job: Job, *, fresh: bool = False) -> dict[str, Any]:
        """The job as `GET /v1/jobs/{jobId}` shows it now; `fresh`: as the generate reply shows it (queued)."""
        seen = view(job, self.now_s(), unknown_status=self._knobs.unknown_status)
        if fresh:
            seen = JobView("queued", 0.0, job.created_s)
        metadata: dict[str, Any] = {"input": job.params}
        if seen.status == "success":
            metadata["assetIds"] = [job.output_asset_id]
        elif seen.status == "failure":
            metadata["error"] = job.failure
        return {"jobId": job.job_id, "jobType": "video2video", "modelId": job.model_id, "status": seen.status,
                "progress": seen.progress, "createdAt": self.clock.iso(job.created_s),
                "updatedAt": self.clock.iso(seen.updated_s), "metadata": metadata}

    def _sync(self) -> None:
        self._account(self._board.advance(self.now_s()))

    def _account(self, finished: list[Job]) -> None:
        """Book jobs that just finished: count them and publish each success's output asset."""
        for job in finished:
            if job.failure is not None:
                self.counters.jobs_failed += 1
                continue
            self.counters.jobs_succeeded += 1
            asset = Asset(job.output_asset_id, f"{job.job_id}.mp4", "video", "video/mp4",
                          job.finished_s or job.created_s, 0, job_id=job.job_id)
            self._assets.add(asset)
            asset.size = job.output_size = self.layout(asset).size

    # -- introspection -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The `/_emulator/stats` figures: counters since the last reset plus live job figures."""
        self._sync()
        board = self._board
        return {**self.counters.to_json(), "jobs_queued": board.queued, "jobs_running": board.running,
                "jobs_in_flight": board.in_flight, "peak_in_flight": board.peak_in_flight,
                "peak_running": board.peak_running, "jobs_total": len(board),
                "credits_left": self._credits_left}

    def reset_stats(self) -> None:
        """Zero the counters; peaks restart from the current figures. Jobs and assets stay."""
        self._sync()
        self.counters = Stats()
        self._board.reset_peaks()

    async def job_records(self) -> list[dict[str, Any]]:
        """Every job as `/_emulator/jobs` lists it: body as received, status, times, output id, sha256 and size."""
        self._sync()
        records = []
        for job in list(self._board):
            if job.succeeded and job.output_sha256 is None:
                job.output_sha256 = await self._output_sha256(job)
            seen = view(job, self.now_s(), unknown_status=self._knobs.unknown_status)
            records.append({
                "jobId": job.job_id, "modelId": job.model_id, "body": job.body, "status": seen.status,
                "createdAt": self.clock.iso(job.created_s), "startedAt": self.clock.iso(job.started_s),
                "finishedAt": self.clock.iso(job.finished_s),
                "outputAssetIds": [job.output_asset_id] if job.succeeded else [],
                "outputSha256": job.output_sha256, "outputSize": job.output_size, "error": job.failure,
            })
        return records

    async def _output_sha256(self, job: Job) -> str:
        asset = self._assets.get(job.output_asset_id)
        assert asset is not None
        layout, source = self.layout(asset), self._source(job)
        uncached = layout.size - (source.size if layout.verbatim_prefix else 0)
        if uncached > THREAD_HASH_BYTES:
            return await asyncio.to_thread(layout_sha256, layout, source.digest)
        return layout_sha256(layout, source.digest)
