"""Assets of the emulated account: uploaded inputs (bytes kept once) and job outputs (built on demand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

AssetKind = Literal["video", "image"]


@dataclass(slots=True, eq=False)
class Asset:
    """One asset: an upload (with its bytes) or a job output (`job_id` set, bytes built from the job)."""

    asset_id: str
    name: str
    kind: AssetKind
    mime_type: str
    created_s: float
    size: int
    data: bytes | bytearray | None = None  # never mutated
    sha256: str | None = None
    digest: Any = None  # the finished hashlib object of `data`, copied to hash outputs cheaply
    job_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.asset_id, "name": self.name, "kind": self.kind, "mimeType": self.mime_type,
            "size": self.size, "status": "success",
        }
        if self.job_id is not None:
            out["jobId"] = self.job_id
        return out


class AssetStore:
    """Assets by id."""

    def __init__(self) -> None:
        self._assets: dict[str, Asset] = {}

    def __len__(self) -> int:
        return len(self._assets)

    def add(self, asset: Asset) -> Asset:
        self._assets[asset.asset_id] = asset
        return asset

    def get(self, asset_id: str) -> Asset | None:
        return self._assets.get(asset_id)
