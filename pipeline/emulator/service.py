"""`Emulator`: the emulated Scenario service for one account: knobs, guards, jobs, credits and counters.

Everything here runs in the event loop and never blocks it: the job timeline is
computed lazily from timestamps (see `jobs`); uploads (`desk`) and the asset
library with its CDN (`library`) read files and hash big data in worker threads.
The HTTP layer is `app` and the `routes_*` modules; this class is also the
in-process handle tests use (`stats()`, `job_records()`, `configure(...)`).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from multidict import MultiMapping

from pipeline.emulator.clock import LoopClock
from pipeline.emulator.desk import UploadDesk
from pipeline.emulator.faults import JOB_CANCELED, JOB_FAILURES
from pipeline.emulator.gates import access_refusal, concurrency_refusal, spending_refusal
from pipeline.emulator.guards import Guards
from pipeline.emulator.jobjson import job_input, job_json, upload_job_json
from pipeline.emulator.jobs import Job, JobBoard, view
from pipeline.emulator.knobs import EMULATOR_API_KEY, EMULATOR_API_SECRET, EmulatorKnobs, apply_changes
from pipeline.emulator.library import Library
from pipeline.emulator.listing import JobQuery, Row, parse_query, select
from pipeline.emulator.pricing import cost_answer, price_cu
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.stats import Stats
from pipeline.emulator.validation import check_generate, model_schema


SNAPSHOT_S = 1.0  # the next pages of a listing asked within this long share its first page's rows


class Emulator(Guards, Library):
    """One emulated account of the Scenario API; `knob_values` are `EmulatorKnobs` fields.

    The real service's limits and several details are unconfirmed (see
    /work/shared/api-notes.md); the knobs make each tunable.
    """

    def __init__(self, *, api_key: str = EMULATOR_API_KEY, api_secret: str = EMULATOR_API_SECRET,
                 knobs: EmulatorKnobs | None = None, **knob_values: Any) -> None:
        base = knobs or EmulatorKnobs()
        self._knobs = apply_changes(base, knob_values) if knob_values else base
        self._board = JobBoard(max_running=self._knobs.max_running_jobs)
        self._credits_left = self._knobs.credits_jobs
        self._spent_cu = 0.0
        self.author_id = hashlib.sha256(api_key.encode()).hexdigest()[:32]
        self.clock = LoopClock()
        self.counters = Stats()
        Guards.__init__(self, api_key, api_secret)
        Library.__init__(self)
        self.uploads = UploadDesk(self)
        self._listing: tuple[JobQuery, float, list[Row]] | None = None  # the last listing's rows (see `_rows`)

    def __repr__(self) -> str:
        return f"Emulator(jobs={len(self._board)}, assets={len(self._assets)}, uploads={len(self.uploads)})"

    # -- knobs -------------------------------------------------------------------------------

    @property
    def knobs(self) -> EmulatorKnobs:
        """The knobs in force now."""
        return self._knobs

    def configure(self, **changes: Any) -> EmulatorKnobs:
        """Change knobs live (ValueError names a bad one). `credits_jobs` sets the credits left from now;
        `cooldown_s` starts a cooldown now (0 ends it); a new `max_running_jobs` applies from now; a new
        `seed` restarts the random streams; `upload_dir` applies to the next emulator only."""
        new = apply_changes(self._knobs, changes)
        old, self._knobs = self._knobs, new
        self._retune(old, new, changes)
        if "credits_jobs" in changes:
            self._credits_left = new.credits_jobs
        if new.max_running_jobs != old.max_running_jobs:
            self._account(self._board.set_max_running(new.max_running_jobs, self.now_s()))
        return new

    def now_s(self) -> float:
        """The event loop's clock (the only clock the emulator reads, so tests may patch it)."""
        return self.clock.now_s()

    @property
    def owner_id(self) -> str:
        """The project owning what this key makes (the `project_id` knob when set)."""
        return self._knobs.project_id or "project_emulator"

    # -- jobs --------------------------------------------------------------------------------

    def dry_run(self, model_id: str, body: Any) -> dict[str, Any]:
        """`?dryRun=true`: the price of a job with this body; no job, no charge, no parameter checks."""
        model_schema(model_id)
        self._check_access(model_id)
        self.counters.dry_runs += 1
        return cost_answer(price_cu(body, cu_per_second=self._knobs.cu_per_second))

    def create_job(self, model_id: str, body: Any) -> Job:
        """Validate a generate request and queue the job (404 model, 403 plan, 400 params/assets, 402 credits,
        the spending cap, 429 concurrency cap)."""
        model_schema(model_id)
        self._check_access(model_id)
        params = check_generate(model_id, body, self._assets)
        knobs = self._knobs
        cost = price_cu(params, cu_per_second=knobs.cu_per_second)
        if self.fault("credits"):
            raise ErrorReply(402, "Insufficient credits")
        if self._credits_left is not None and self._credits_left <= 0:
            self.counters.credits_exhausted += 1
            raise ErrorReply(402, "Insufficient credits")
        self._sync()
        refusal = spending_refusal(self._spent_cu, cost, knobs.spending_cap_cu, status=knobs.spending_cap_status)
        if refusal is not None:
            self.counters.spending_capped += 1
            raise refusal
        refusal = concurrency_refusal(self._board.in_flight, knobs.job_concurrency_limit)
        if refusal is not None:
            self.counters.concurrency_limited += 1
            raise refusal
        if self._credits_left is not None:
            self._credits_left -= 1
        low = max(0.0, knobs.job_time_s - knobs.job_time_spread_s)
        run_s = self._dice.stream("timing").uniform(low, knobs.job_time_s + knobs.job_time_spread_s)
        job = Job(self._dice.new_id("job"), model_id, body, params, self.now_s(), run_s, self._dice.new_id("asset"),
                  cost_cu=cost, warmup=self.fault("unknown_status"), pad_bytes=knobs.output_pad_bytes,
                  stale_update=self.fault("stale_update"))
        if self.fault("job_failure"):
            job.fate, (job.error, job.hint) = "failure", self._dice.stream("job_failure").choice(JOB_FAILURES)
        elif self.fault("job_canceled"):
            job.fate, (job.error, job.hint) = "canceled", JOB_CANCELED
        self._account(self._board.add(job, job.created_s, pending_s=knobs.job_pending_s))
        self._spent_cu += cost
        self.counters.cu_charged += cost
        self.counters.jobs_created += 1
        return job

    def _check_access(self, model_id: str) -> None:
        refusal = access_refusal(model_id, self._knobs.required_plan)
        if refusal is not None:
            self.counters.access_restricted += 1
            raise refusal

    def job(self, job_id: str) -> Job:
        """A job by id, its timeline brought up to now; 404 otherwise."""
        self._sync()
        job = self._board.get(job_id)
        if job is None:
            raise ErrorReply(404, f"Job not found: {job_id}")
        return job

    def job_answer(self, job_id: str, *, listed: bool = False) -> dict[str, Any]:
        """`GET /v1/jobs/{jobId}`: a generate job or an upload's `upload` job, as it is now; 404 otherwise."""
        upload = self.uploads.job_of(job_id)
        if upload is None:
            return self.job_json(self.job(job_id), listed=listed)
        return upload_job_json(upload, self.now_s(), iso=self.clock.iso, author_id=self.author_id,
                               owner_id=self.owner_id, with_input=not listed or self._knobs.list_rows_with_input)

    def job_json(self, job: Job, *, listed: bool = False) -> dict[str, Any]:
        """The job as `GET /v1/jobs/{jobId}` (or, `listed`, a `GET /v1/jobs` row) shows it now."""
        return job_json(job, self.now_s(), iso=self.clock.iso, unknown_status=self._knobs.unknown_status,
                        author_id=self.author_id, owner_id=self.owner_id,
                        with_input=not listed or self._knobs.list_rows_with_input,
                        with_results=not listed or self._knobs.list_rows_with_results)

    def list_jobs(self, query: MultiMapping[str]) -> dict[str, Any]:
        """`GET /v1/jobs`: one page of the account's jobs (ErrorReply 400 for a bad query)."""
        checked = parse_query(query)
        self._sync()
        now_s = self.now_s()
        rows = self._rows(checked, now_s)
        page, token = select(rows, checked, author_id=self.author_id, now_s=self.clock.wall_s(now_s),
                             newest_first=self._knobs.jobs_list_order == "newest",
                             short_pages=self._knobs.list_short_pages)
        out: dict[str, Any] = {"jobs": [self.job_answer(row.job_id, listed=True) for row in page]}
        if token is not None:
            out["nextPaginationToken"] = token
        return out

    def _rows(self, query: JobQuery, now_s: float) -> list[Row]:
        """What filtering and sorting need of every job the listing may show. The next pages of one listing
        (the same filters, a paginationToken) asked within SNAPSHOT_S are served from its first page's rows,
        as a database cursor would: a listing of thousands of jobs in flight costs one pass, not one a page
        (each row's answer is still the job as it is now)."""
        filters = replace(query, after=None, page_size=0)
        cached = self._listing
        if query.after is not None and cached is not None and cached[0] == filters and now_s - cached[1] <= SNAPSHOT_S:
            return cached[2]
        stamp, unknown = self.clock.wall_s, self._knobs.unknown_status
        rows = []
        for job in self._candidates(query):
            seen = view(job, now_s, unknown_status=unknown)
            rows.append(Row(job.job_id, "custom", seen.status, stamp(job.created_s), stamp(seen.updated_s)))
        for upload in self.uploads.completed():
            shown = self.job_answer(upload.job_id or "", listed=True)
            rows.append(Row(shown["jobId"], "upload", shown["status"], stamp(upload.completed_s or 0),
                            stamp(upload.status(now_s)[1])))
        self._listing = (filters, now_s, rows)
        return rows

    def _candidates(self, query: JobQuery) -> list[Job] | JobBoard:
        """The jobs a listing with a date filter can show, found without looking at every job (`select` filters
        them exactly): a listing of recent changes stays cheap however many jobs the account has."""
        margin_s = 0.01  # dates are shown to the millisecond: take a little more, `select` decides
        if query.created_after_s is not None:
            return self._board.created_since(self.clock.loop_s(query.created_after_s) - margin_s)
        if query.updated_after_s is not None:
            return self._board.changed_since(self.clock.loop_s(query.updated_after_s) - margin_s)
        return self._board

    def _sync(self) -> None:
        self._account(self._board.advance(self.now_s()))

    def _account(self, finished: list[Job]) -> None:
        """Book jobs that just finished: count them, refund failures, publish each success's output asset."""
        for job in finished:
            if job.fate != "success":
                self.counters.jobs_failed += job.fate == "failure"
                self.counters.jobs_canceled += job.fate == "canceled"
                self._spent_cu -= job.cost_cu
                self.counters.cu_charged -= job.cost_cu
                continue
            self.counters.jobs_succeeded += 1
            self.add_output(job)

    # -- introspection -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The `/_emulator/stats` figures: counters since the last reset plus live job figures."""
        self._sync()
        board = self._board
        return {**self.counters.to_json(), "jobs_pending": board.pending, "jobs_queued": board.queued,
                "jobs_running": board.running, "jobs_in_flight": board.in_flight,
                "peak_in_flight": board.peak_in_flight, "peak_running": board.peak_running,
                "jobs_total": len(board), "credits_left": self._credits_left, "cu_spent": self._spent_cu,
                "uploads_total": len(self.uploads), "cooldown_left_s": round(self._cooldown.peek_s(self.now_s()), 3)}

    def reset_stats(self) -> None:
        """Zero the counters; peaks restart from the current figures. Jobs and assets stay."""
        self._sync()
        self.counters = Stats()
        self._board.reset_peaks()

    async def job_records(self) -> list[dict[str, Any]]:
        """Every job as `/_emulator/jobs` lists it: body as received, status, times, cost, output id, the
        original output's sha256 and size."""
        self._sync()
        records = []
        for job in list(self._board):
            if job.succeeded and job.output_sha256 is None:
                job.output_sha256 = await self.output_sha256(job)
            seen = view(job, self.now_s(), unknown_status=self._knobs.unknown_status)
            records.append({
                "jobId": job.job_id, "modelId": job.model_id, "body": job.body, "input": job_input(job),
                "status": seen.status, "createdAt": self.clock.iso(job.created_s),
                "startedAt": self.clock.iso(job.started_s), "finishedAt": self.clock.iso(job.finished_s),
                "costCu": job.cost_cu, "outputAssetIds": [job.output_asset_id] if job.succeeded else [],
                "outputSha256": job.output_sha256, "outputSize": job.output_size, "error": job.error,
                "hint": job.hint,
            })
        return records

    async def aclose(self) -> None:
        """Stop upload validations and remove the uploaded parts from disk."""
        await self.uploads.close()
