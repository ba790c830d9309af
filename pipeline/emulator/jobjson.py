"""A job as the API shows it (pure): the fields of scenario-sdk 2.4.0 `types/job_retrieve_response.py`.

`metadata.input` is the request's parameters plus `modelId` and a key the server adds
(`numOutputs`), as api-notes "Jobs" says; listed rows leave it out unless the
`list_rows_with_input` knob is on (whether they carry it is unconfirmed). They carry the
results (`assetIds`, `error`, `hint`) unless the `list_rows_with_results` knob is off (unconfirmed too).

A completed multipart upload is a job too, of type `upload` (the notes list `upload`
among the job types of `GET /v1/jobs`; the SDK's `Upload` has a `jobId`): `in-progress`
while it is validated, then `success` with the asset id or `failure` with the error.
Its exact shape on the real service is unconfirmed; it is here so that listings mix
job types as a real account's do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.emulator.jobs import Job, history, view
from pipeline.emulator.multipart import MultipartUpload

JOB_TYPE = "custom"  # jobType of generate/custom jobs (api-notes "Jobs", confirmed)


def job_input(job: Job) -> dict[str, Any]:
    """`metadata.input`: the parameters sent (normalised), the model id and the server's own key."""
    return {**job.params, "modelId": job.model_id, "numOutputs": 1}


def job_json(job: Job, now_s: float, *, iso: Callable[[float], str | None], unknown_status: str, author_id: str,
             owner_id: str, with_input: bool = True, with_results: bool = True) -> dict[str, Any]:
    """The job as `GET /v1/jobs/{jobId}` shows it at `now_s` (after the board advanced to `now_s`)."""
    seen = view(job, now_s, unknown_status=unknown_status)
    metadata: dict[str, Any] = {}
    if with_input:
        metadata["input"] = job_input(job)
    final = seen.status if with_results else None  # listed rows may leave the results out
    if final == "success":
        metadata["assetIds"] = [job.output_asset_id]
    elif final in ("failure", "canceled"):
        metadata["assetIds"] = []
        metadata["error"] = job.error
        if job.hint is not None:
            metadata["hint"] = job.hint
    marks = [{"status": status, "date": iso(at_s)}
             for status, at_s in history(job, unknown_status=unknown_status) if at_s <= now_s]
    return {
        "jobId": job.job_id, "jobType": JOB_TYPE, "status": seen.status, "progress": seen.progress,
        "createdAt": iso(job.created_s), "updatedAt": iso(seen.updated_s), "statusHistory": marks,
        "authorId": author_id, "ownerId": owner_id,
        "billing": {"cuCost": job.cost_cu, "cuDiscount": 0}, "metadata": metadata,
    }


def upload_job_json(upload: MultipartUpload, now_s: float, *, iso: Callable[[float], str | None], author_id: str,
                    owner_id: str, with_input: bool = True) -> dict[str, Any]:
    """The `upload` job of a completed upload as `GET /v1/jobs/{jobId}` shows it at `now_s`."""
    assert upload.completed_s is not None
    status, since_s = upload.status(now_s)
    final = {"imported": "success", "failed": "failure"}.get(status)
    marks = [{"status": "in-progress", "date": iso(upload.completed_s)}]
    metadata: dict[str, Any] = {}
    if with_input:
        metadata["input"] = {"uploadId": upload.upload_id, "fileName": upload.file_name, "kind": upload.kind}
    if final is not None:
        marks.append({"status": final, "date": iso(since_s)})
        metadata["assetIds"] = [upload.asset_id] if final == "success" else []
    if final == "failure":
        metadata["error"] = upload.error
    return {
        "jobId": upload.job_id, "jobType": "upload", "status": final or "in-progress",
        "progress": 1.0 if final else 0.0, "createdAt": iso(upload.completed_s), "updatedAt": marks[-1]["date"],
        "statusHistory": marks, "authorId": author_id, "ownerId": owner_id, "metadata": metadata,
    }
