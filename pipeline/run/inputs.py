"""The run's input files as assets: each distinct local input uploaded once, and the asset ids the journal
remembers from earlier sessions checked with the server before a job of this session uses them.

An id the server no longer knows (a new emulator, another API key or project, an asset deleted) makes the
file go up again, journaled with its new id. The check is one `GET /v1/assets/{id}` per remembered input
and session, asked when the first job that needs the input is sent (a finished run asks nothing). A generate
refused (400/404) naming one of its input assets has that asset checked again once, and the job sent again
with the new id if it was gone: a refused POST made no job, so nothing is paid twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

from pipeline.api.uploads import upload_input
from pipeline.errors import ApiError, AuthError, CreditsError, RunHalted
from pipeline.run.context import RunContext
from pipeline.spec import InputRef, JobSpec

log = logging.getLogger(__name__)


class InputAssets:
    """The asset id of each local input (by sha256) for this session, and why those that have none have none."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self.ids: Mapping[str, str] = ctx.journal.state.uploads  # the journal's: an upload written lands here
        self.not_uploaded: dict[str, str] = {}  # sha256 -> why the file could not be uploaded (its jobs fail)
        self._checked: set[str] = set()  # asset ids usable in this session: uploaded in it, or checked
        self._asked: set[str] = set()  # asset ids asked about (the first check of each)
        self._asked_again: set[str] = set()  # asset ids asked about again after a generate refused one
        self._uploaded: set[str] = set()  # asset ids uploaded in this session
        self._locks: dict[str, asyncio.Lock] = {}

    async def upload_all(self, refs: Iterable[InputRef]) -> None:
        """Upload each of these local inputs the journal knows no asset of, once, in turn. Credentials refused
        halt the run; no credits stop submitting; any other failure fails only the jobs of that input."""
        for ref in refs:
            sha = ref.sha256
            if sha is None or ref.path is None or sha in self.ids or sha in self.not_uploaded:
                continue
            if self._ctx.stop.no_more_submits.is_set() or not await self._upload(ref):
                break

    def missing(self, spec: JobSpec) -> str | None:
        """Why the job cannot be sent (an input of it has no usable asset), or None."""
        for ref in spec.inputs:
            sha = ref.sha256 or ""
            if ref.kind == "file" and (sha in self.not_uploaded or sha not in self.ids):
                return self.not_uploaded.get(sha, f"input {ref.param} {ref.path} was not uploaded")
        return None

    async def ready(self, spec: JobSpec) -> None:
        """Before the job is sent: check each input asset remembered from an earlier session (once a session),
        uploading the file again when the server no longer knows it."""
        for ref in spec.inputs:
            asset_id = self.ids.get(ref.sha256 or "") if ref.kind == "file" else None
            if asset_id is not None and asset_id not in self._checked and ref.sha256 not in self.not_uploaded:
                await self._check(ref, asset_id, again=False)

    def named_in(self, spec: JobSpec, body: Mapping[str, object], refusal: str) -> list[tuple[InputRef, str]]:
        """The job's local inputs whose asset id (as `body` gave it) the refusal's message names, with that id."""
        named = []
        for ref in spec.inputs:
            sent = sent_asset_id(spec, ref, body) if ref.kind == "file" else None
            if sent is not None and sent in refusal:
                named.append((ref, sent))
        return named

    async def renew(self, spec: JobSpec, body: Mapping[str, object], refusal: str) -> bool:
        """A generate with `body` was refused with `refusal`: for each input asset it names, check the asset again
        (once a session) and upload the file again if it is gone. True when an input named now has another asset
        id (the job may be sent again); False when the refusal is about something else, or the upload failed."""
        renewed = False
        for ref, sent in self.named_in(spec, body, refusal):
            await self._check(ref, sent, again=True)
            current = self.ids.get(ref.sha256 or "")
            fresh = current is not None and (current != sent or current in self._uploaded)
            renewed |= fresh and ref.sha256 not in self.not_uploaded
        return renewed

    async def _check(self, ref: InputRef, asset_id: str, *, again: bool) -> None:
        """Ask the server whether `asset_id` (the input's) is usable; upload the file again if not. One check per
        asset id (`again`: one more after a refusal), whichever job asks first; the others wait for it."""
        sha = ref.sha256 or ""
        async with self._locks.setdefault(sha, asyncio.Lock()):
            asked = self._asked_again if again else self._asked
            if self.ids.get(sha) != asset_id or asset_id in asked or sha in self.not_uploaded:
                return  # replaced or asked about already (by the job that asked first)
            if not again and asset_id in self._uploaded:
                return
            asked.add(asset_id)
            try:
                usable = await self._ctx.api.asset_usable(asset_id)
            except AuthError as exc:
                self._ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
                return
            except RunHalted:
                return
            except ApiError as exc:  # unanswered after every retry: use it (a refusal naming it checks again)
                self._checked.add(asset_id)
                log.warning("input %s %s: could not check asset %s (%s); using it", ref.param, ref.path, asset_id, exc)
                return
            if usable:
                self._checked.add(asset_id)
                return
            log.warning("input %s %s: the server no longer knows asset %s (uploaded in an earlier session); "
                        "uploading the file again", ref.param, ref.path, asset_id)
            await self._upload(ref)

    async def _upload(self, ref: InputRef) -> bool:
        """Upload one file and journal its asset id; False when the run must stop submitting (credentials
        refused, no credits, halted). A file that cannot be uploaded or read is recorded in `not_uploaded`."""
        ctx, sha, name = self._ctx, ref.sha256 or "", f"{ref.param} {ref.path}"
        try:
            asset_id = await upload_input(ctx.api, ctx.settings, Path(ref.path or ""), kind=ref.upload_kind,
                                          halted=ctx.stop.halted, upload_id=ctx.journal.state.upload_ids.get(sha),
                                          started=partial(_upload_started, ctx, ref))
        except AuthError as exc:
            ctx.stop.halt("auth", f"the API refused the credentials ({exc.message})")
            return False
        except CreditsError as exc:
            ctx.stop.stop_submitting("credits", f"out of credits ({exc.message}): submitting stopped")
            return False
        except RunHalted:
            return False
        except ApiError as exc:  # refused (400/413/422), or transient errors that outlived every retry
            self.not_uploaded[sha] = f"input {name} could not be uploaded: {exc}"
        except OSError as exc:  # the file went away or became unreadable since the manifest was read
            self.not_uploaded[sha] = f"input {name} could not be read: {exc.strerror or exc}"
        else:
            await ctx.journal.write("upload", sha256=sha, asset_id=asset_id, path=ref.path, param=ref.param)
            self._checked.add(asset_id)
            self._uploaded.add(asset_id)
            log.info("uploaded %s as %s", Path(ref.path or "").name, asset_id)
            return True
        log.error("%s; its jobs fail, the others go on (a resume tries the upload again)", self.not_uploaded[sha])
        return True


def sent_asset_id(spec: JobSpec, ref: InputRef, body: Mapping[str, object]) -> str | None:
    """The asset id `body` gave this input of the job (a `file_array` input's: its place in the list)."""
    value = body.get(ref.param)
    if ref.index is None:
        return value if isinstance(value, str) else None
    places = sorted(other.index for other in spec.inputs if other.param == ref.param and other.index is not None)
    place = places.index(ref.index)
    item = value[place] if isinstance(value, list) and place < len(value) else None
    return item if isinstance(item, str) else None


async def _upload_started(ctx: RunContext, ref: InputRef, upload_id: str) -> None:
    """Journal a multipart upload the moment it exists: a resume continues it instead of sending it again."""
    await ctx.journal.write("upload-started", sha256=ref.sha256, upload_id=upload_id, path=ref.path, param=ref.param)
