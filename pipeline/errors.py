"""The project's exception tree: every error we raise on purpose derives from PipelineError."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


class PipelineError(Exception):
    """Base of every error ltx-batch raises on purpose (shown to the user without a traceback)."""

    exit_status: int = 1


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in user input: where (`batches[0].sweep.videoStrength[2]`), YAML line, what."""

    where: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        place = self.source or ""
        if self.line is not None:
            place = f"{place}:{self.line}" if place else f"line {self.line}"
        prefix = f"{place}: " if place else ""
        where = f"{self.where}: " if self.where else ""
        return f"{prefix}{where}{self.message}"


class InputError(PipelineError):
    """Bad user input (manifest, config file, CLI flags): exit status 2; carries every problem found."""

    exit_status = 2

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ManifestError(InputError):
    """The manifest is invalid; `problems` lists every located problem at once."""


class ConfigError(InputError):
    """A config file, environment variable or CLI flag is invalid."""


class ApiError(PipelineError):
    """The API answered with an error status: carries the status and (secret-free) body text."""

    def __init__(self, status: int, message: str, *, url: str = "", trace_id: str | None = None) -> None:
        self.status = status
        self.message = message
        self.url = url
        self.trace_id = trace_id  # the server's traceId: support asks for it
        super().__init__(f"HTTP {status}{' from ' + url if url else ''}: {message}"
                         + (f" (trace id {trace_id})" if trace_id else ""))


class TransientApiError(ApiError):
    """429, 5xx, connection reset or timeout: worth retrying; `retry_after_s` is the server's hint."""

    def __init__(self, status: int, message: str, *, url: str = "", retry_after_s: float | None = None,
                 trace_id: str | None = None) -> None:
        super().__init__(status, message, url=url, trace_id=trace_id)
        self.retry_after_s = retry_after_s


class ConcurrencyLimited(TransientApiError):
    """429 from the account's cap on jobs running at once (`details.actionName` "model_run"): submit the next job
    when one of ours finishes, not on a timer. `limit` is the cap (`details.actionLimit`) when the server says."""

    def __init__(self, status: int, message: str, *, url: str = "", limit: int | None = None,
                 trace_id: str | None = None) -> None:
        super().__init__(status, message, url=url, trace_id=trace_id)
        self.limit = limit


class CooldownApiError(TransientApiError):
    """429 with `remainingSeconds` (a cooldown, seen in the tens of minutes): every caller waits it out."""


class AuthError(ApiError):
    """401/403 on an API route: the credentials are wrong; the run stops (exit 3)."""

    exit_status = 3


class ModelAccessRestricted(AuthError):
    """403 ModelAccessRestrictedError: the account's plan may not use the model (`required_plan` names the plan
    it needs). Retrying never clears it: no more submissions; what was paid is still polled and downloaded."""

    def __init__(self, status: int, message: str, *, url: str = "", model_id: str | None = None,
                 required_plan: str | None = None, trace_id: str | None = None) -> None:
        super().__init__(status, message, url=url, trace_id=trace_id)
        self.model_id = model_id
        self.required_plan = required_plan


class CreditsError(ApiError):
    """402 or a credits message: stop submitting, keep polling and downloading (exit 3)."""

    exit_status = 3


class RequestRejected(ApiError):
    """400/422: the server rejected this job's parameters; that job fails, the run goes on."""


class JobFailed(PipelineError):
    """A job ended in `failure`/`canceled` on the server; recorded in the ledger, never fatal."""


class SubmitOutcomeUnknown(PipelineError):
    """A generate POST was sent but its answer was lost: the job may or may not exist (never auto-resent)."""


class RunHalted(PipelineError):
    """The run is stopping (Ctrl-C, credentials refused, disk unwritable): this request was not sent."""


class BadResponse(TransientApiError):
    """A 2xx answer that is not JSON or not of the documented shape."""


def did_you_mean(name: str, known: Sequence[str]) -> str | None:
    """The closest known name to a misspelt one (`videoStrenght` -> `videoStrength`), or None."""
    lowered = {candidate.lower(): candidate for candidate in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None
