"""`Library`: the account's assets (uploaded inputs, job outputs) and the CDN serving them; a base of `Emulator`.

api-notes "Outputs" (confirmed): `GET /v1/assets/{id}` answers a signed, expiring
`url`; `originalAssets=true` "returns the original asset without transformation".
What the default URL serves is unconfirmed: here a transformed delivery (the
original plus a marker box: other bytes, other size), unless the
`transform_deliveries` knob is off. `POST /v1/assets/get-bulk` answers up to 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import TYPE_CHECKING, Any

from pipeline.emulator.assets import Asset, AssetStore
from pipeline.emulator.cdn import CDN_PREFIX, UrlSigner
from pipeline.emulator.media import Layout, delivery_layout, has_files, layout_sha256, output_layout, png_bytes, stamp
from pipeline.emulator.replies import ErrorReply
from pipeline.emulator.uploads import receive_upload

if TYPE_CHECKING:
    from pipeline.emulator.clock import LoopClock
    from pipeline.emulator.faults import FaultDice
    from pipeline.emulator.jobs import Job, JobBoard
    from pipeline.emulator.knobs import EmulatorKnobs
    from pipeline.emulator.stats import Stats

THREAD_HASH_BYTES = 4 * 2**20  # outputs whose un-cached part is bigger are hashed in a worker thread
MAX_BULK_IDS = 200  # api-notes "Outputs": get-bulk takes at most 200 ids
TRANSFORMED = "~t"  # marks a CDN token of the transformed delivery
STUB_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"  # what a job without an input video starts from


class Library:
    """Assets by id, their bytes, their JSON and their signed CDN URLs."""

    _knobs: EmulatorKnobs
    _board: JobBoard
    _dice: FaultDice
    clock: LoopClock
    counters: Stats
    author_id: str
    owner_id: str

    def __init__(self) -> None:
        self._assets = AssetStore()
        self._signer = UrlSigner(os.urandom(32))
        self._stub = Asset("asset_stub", "stub.mp4", "video", "video/mp4", 0.0, len(STUB_MP4),
                           body=Layout((STUB_MP4,)), sha256=hashlib.sha256(STUB_MP4).hexdigest(),
                           digest=hashlib.sha256(STUB_MP4))

    def _sync(self) -> None:
        raise NotImplementedError

    async def upload(self, raw: bytes | bytearray) -> Asset:
        """Store an image from a `POST /v1/assets` body (ErrorReply 400/413 on a bad, big or video one)."""
        knobs = self._knobs
        upload = await receive_upload(raw, max_bytes=knobs.max_upload_bytes, image_max_bytes=knobs.asset_image_max_bytes)
        asset = Asset(self._dice.new_id("asset"), upload.name, upload.kind, upload.mime_type, self.clock.now_s(),
                      len(upload.data), body=Layout((upload.data,)), sha256=upload.digest.hexdigest(),
                      digest=upload.digest)
        return self.add_upload_asset(asset)

    def add_upload_asset(self, asset: Asset) -> Asset:
        """Publish an asset made from an uploaded file (either route)."""
        self.counters.uploads += 1
        self.counters.upload_bytes += asset.size
        return self._assets.add(asset)

    def add_output(self, job: Job) -> None:
        """Publish a succeeded job's output asset (a video, or a small PNG with the `output_kind` knob `image`)."""
        created_s = job.finished_s or job.created_s
        if self._knobs.output_kind == "image":
            png = png_bytes(stamp(job_id=job.job_id, seed=job.params.get("seed"),
                                  prompt=str(job.params.get("prompt", ""))))
            digest = hashlib.sha256(png)  # one digest for both fields, as `upload` does
            asset = Asset(job.output_asset_id, f"{job.job_id}.png", "image", "image/png", created_s, len(png),
                          body=Layout((png,)), sha256=digest.hexdigest(), digest=digest,
                          job_id=job.job_id, model_id=job.model_id)
        else:
            asset = Asset(job.output_asset_id, f"{job.job_id}.mp4", "video", "video/mp4", created_s, 0,
                          job_id=job.job_id, model_id=job.model_id)
        self._assets.add(asset)
        asset.size = job.output_size = self.layout(asset).size

    def asset(self, asset_id: str) -> Asset:
        """An asset by id (outputs appear once their job succeeded); 404 otherwise."""
        self._sync()
        asset = self._assets.get(asset_id)
        if asset is None:
            raise ErrorReply(404, f"Asset not found: {asset_id}")
        return asset

    def asset_json(self, asset: Asset, base_url: str, *, original: bool) -> dict[str, Any]:
        """The asset as `GET /v1/assets/{assetId}` shows it, with a fresh signed CDN URL of the original or of
        the transformed delivery."""
        original = original or not self._knobs.transform_deliveries
        expires_ms = self.clock.wall_ms(self.clock.now_s() + self._knobs.url_ttl_s)
        token = self._signer.token(asset.asset_id + ("" if original else TRANSFORMED), expires_ms)
        return asset.to_json(url=f"{base_url}{CDN_PREFIX}{token}", size=self.delivery(asset, original=original).size,
                             created_at=self.clock.iso(asset.created_s), author_id=self.author_id,
                             owner_id=self.owner_id)

    def assets_json(self, body: Any, base_url: str, *, original: bool) -> dict[str, Any]:
        """`POST /v1/assets/get-bulk {"assetIds": [...]}`: the known ones among at most 200 ids."""
        ids = body.get("assetIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ErrorReply(400, "assetIds: is required (a list of asset ids)")
        if len(ids) > MAX_BULK_IDS:
            raise ErrorReply(400, f"assetIds: at most {MAX_BULK_IDS} ids, not {len(ids)}")
        self._sync()
        found = [self._assets.get(i) for i in dict.fromkeys(ids)]
        return {"assets": [self.asset_json(a, base_url, original=original) for a in found if a is not None]}

    def download(self, token: str) -> tuple[Asset, Layout]:
        """The asset and bytes a CDN token grants; 403 when forged or expired, 404 when gone."""
        checked = self._signer.check(token, self.clock.wall_ms(self.clock.now_s()))
        if checked.asset_id is None:
            self.counters.cdn_denied += 1
            raise ErrorReply(403, "URL expired" if checked.problem == "expired" else "Invalid URL signature")
        asset_id, transformed = checked.asset_id.removesuffix(TRANSFORMED), checked.asset_id.endswith(TRANSFORMED)
        asset = self.asset(asset_id)
        return asset, self.delivery(asset, original=not transformed)

    def delivery(self, asset: Asset, *, original: bool) -> Layout:
        """The bytes a URL serves: the original, or the transformed copy."""
        layout = self.layout(asset)
        return layout if original else delivery_layout(layout, asset.asset_id)

    def layout(self, asset: Asset) -> Layout:
        """The original bytes of an asset: an upload as stored, an output built from its job's input video."""
        if asset.body is not None:
            return asset.body
        job = self._board.get(asset.job_id or "")
        assert job is not None
        source = self._source(job)
        assert source.body is not None
        return output_layout(source.body, job_id=job.job_id, seed=job.params.get("seed"),
                             prompt=str(job.params.get("prompt", "")), pad_bytes=job.pad_bytes,
                             open_box_at=source.open_box_at)

    def _source(self, job: Job) -> Asset:
        """The uploaded video a job's output is built from: its first video input (`video`, else the first video
        of any file input, such as Seedance's `referenceVideos`; an output used as input counts as its own
        source); a job without one (text or image to video) is built from a stub MP4."""
        asset = self._video_input(job.params)
        while asset is not None and asset.body is None:
            parent = self._board.get(asset.job_id or "")
            asset = self._video_input(parent.params) if parent else None
        return asset if asset is not None else self._stub

    def _video_input(self, params: dict[str, Any]) -> Asset | None:
        ordered = [params.get("video"), *(v for k, v in params.items() if k != "video")]
        for value in ordered:
            for asset_id in value if isinstance(value, list) else [value]:
                asset = self._assets.get(asset_id) if isinstance(asset_id, str) else None
                if asset is not None and asset.kind == "video":
                    return asset
        return None

    async def output_sha256(self, job: Job) -> str:
        """The sha256 of a job's original output (files and big data hashed in a worker thread)."""
        asset = self._assets.get(job.output_asset_id)
        assert asset is not None
        layout, source = self.layout(asset), self._source(job)
        rest = layout.segments[layout.prefix:]
        if Layout(rest).size > THREAD_HASH_BYTES or has_files(rest):
            return await asyncio.to_thread(layout_sha256, layout, source.digest)
        return layout_sha256(layout, source.digest)
