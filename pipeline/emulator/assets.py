"""Assets of the emulated account: uploaded inputs (bytes in memory or on disk) and job outputs (built on demand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pipeline.emulator.media import Layout

AssetKind = Literal["video", "image", "audio"]

# scenario-sdk 2.4.0, types/asset_retrieve_response.py: `source` and `metadata.type` of uploads and outputs
UPLOAD_SOURCE: dict[str, str] = {"video": "uploaded-video", "image": "uploaded", "audio": "uploaded-audio"}
OUTPUT_SOURCE = "video2video"


@dataclass(slots=True, eq=False)
class Asset:
    """One asset: an upload (`body` holds its bytes) or a job output (`job_id` set, bytes built from the job)."""

    asset_id: str
    name: str
    kind: AssetKind
    mime_type: str
    created_s: float
    size: int
    body: Layout | None = None  # never mutated
    sha256: str | None = None
    digest: Any = None  # the finished hashlib object of `body`, copied to hash outputs cheaply
    open_box_at: int | None = None  # a video whose last box runs "to the end": that box's offset
    job_id: str | None = None
    model_id: str | None = None

    @property
    def source(self) -> str:
        return OUTPUT_SOURCE if self.job_id is not None else UPLOAD_SOURCE[self.kind]

    def to_json(self, *, url: str, size: int, created_at: str | None, author_id: str, owner_id: str) -> dict[str, Any]:
        """The asset as `GET /v1/assets/{id}` shows it: every field scenario-sdk's `Asset` requires.

        `url`/`size` describe what the URL serves (the original or the transformed delivery)."""
        metadata: dict[str, Any] = {"kind": self.kind, "type": self.source, "name": self.name}
        if self.job_id is not None:
            metadata["modelId"], metadata["parentJobId"] = self.model_id, self.job_id
        return {
            "id": self.asset_id, "url": url, "mimeType": self.mime_type, "kind": self.kind,
            "source": self.source, "status": "success", "privacy": "private",
            "authorId": author_id, "ownerId": owner_id, "createdAt": created_at, "updatedAt": created_at,
            "collectionIds": [], "tags": [], "editCapabilities": [],
            "metadata": metadata, "properties": {"size": size},
        }


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
