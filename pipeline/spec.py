"""The records that flow from the manifest into the run: one `JobSpec` per job to generate.

Pure data and the hashing that names it; shared by `manifest` (which makes them),
the runner (which submits them), `plan` and the report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

KEY_CHARS = 64  # sha256 hex; displays use a prefix
KEY_BYTES = 32  # a key as bytes (kept so by the thousand: the roster, a loaded manifest)


@dataclass(frozen=True, slots=True)
class InputRef:
    """One file of a job: a local file (path + sha256) or an existing asset id, given to a file input
    (`video`, `image`, ...) or as item `index` of a `file_array` input (`referenceVideos`)."""

    param: str  # the input's name: "video", "image", "conditioningVideo", "referenceVideos", ...
    kind: Literal["file", "asset"]
    path: str | None = None  # absolute path of the local file
    sha256: str | None = None  # content hash of the local file
    asset_id: str | None = None  # given in the manifest (kind="asset")
    size_bytes: int | None = None
    media: str | None = None  # the asset kind it is uploaded as: "video", "image", "audio", ...
    index: int | None = None  # its place in a `file_array` input's list; None for a `file` input

    @property
    def upload_kind(self) -> str:
        """The asset kind to upload the file as (records written before `media` existed: from the input's name)."""
        return self.media or ("image" if self.param == "image" else "video")

    @property
    def identity(self) -> str:
        """What the job key hashes for this input: the content hash, or the asset id."""
        return f"sha256:{self.sha256}" if self.kind == "file" else f"asset:{self.asset_id}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"param": self.param, "kind": self.kind}
        for name in ("path", "sha256", "asset_id", "size_bytes", "media", "index"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputRef:
        return cls(
            param=data["param"],
            kind=data["kind"],
            path=data.get("path"),
            sha256=data.get("sha256"),
            asset_id=data.get("asset_id"),
            size_bytes=data.get("size_bytes"),
            media=data.get("media"),
            index=data.get("index"),
        )


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to generate: the complete request parameters (seed included) and its inputs.

    `params` holds every value parameter as sent (defaults filled in, seed explicit);
    the file parameters are in `inputs` and become asset ids at submit time.
    `swept` holds the values that vary across the batch (sweep and zip keys), for names and grids.
    """

    index: int
    batch: str
    key: str
    model: str
    params: Mapping[str, Any]
    inputs: tuple[InputRef, ...]
    swept: Mapping[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return str(self.params.get("prompt", ""))

    @property
    def seed(self) -> int | None:
        """The job's seed; None for a model that takes none."""
        seed = self.params.get("seed")
        return None if seed is None else int(seed)

    def body(self, asset_ids: Mapping[str, str]) -> dict[str, Any]:
        """The JSON request body: the parameters plus each file input's asset id (a `file_array` input's ids
        as a list, in order).

        `asset_ids` maps a local input's sha256 to its uploaded asset id.
        """
        body = dict(self.params)
        arrays: dict[str, list[tuple[int, str]]] = {}
        for ref in self.inputs:
            asset_id = ref.asset_id if ref.kind == "asset" else asset_ids[ref.sha256 or ""]
            if ref.index is None:
                body[ref.param] = asset_id
            else:
                arrays.setdefault(ref.param, []).append((ref.index, asset_id))
        for param, items in arrays.items():
            body[param] = [asset_id for _, asset_id in sorted(items)]
        return body

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "batch": self.batch,
            "key": self.key,
            "model": self.model,
            "params": dict(self.params),
            "inputs": [ref.to_json() for ref in self.inputs],
            "swept": dict(self.swept),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        return cls(
            index=int(data["index"]),
            batch=str(data["batch"]),
            key=str(data["key"]),
            model=str(data["model"]),
            params=dict(data["params"]),
            inputs=tuple(InputRef.from_json(i) for i in data["inputs"]),
            swept=dict(data.get("swept") or {}),
        )


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def job_key(model: str, params: Mapping[str, Any], inputs: tuple[InputRef, ...] | list[InputRef]) -> str:
    """The stable key of a job: sha256 of the model id, complete parameters and input identities."""
    material = {
        "model": model,
        "params": dict(params),
        "inputs": input_identities(inputs),
    }
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


def input_identities(inputs: tuple[InputRef, ...] | list[InputRef]) -> dict[str, str | list[str]]:
    """What a key hashes of a job's files: by input, the identity of its file, or of every file of a `file_array`
    input in order (so two jobs whose lists differ in one file, or in their order, have different keys)."""
    if all(ref.index is None for ref in inputs):
        return {ref.param: ref.identity for ref in inputs}
    out: dict[str, str | list[str]] = {}
    arrays: dict[str, list[tuple[int, str]]] = {}
    for ref in inputs:
        if ref.index is None:
            out[ref.param] = ref.identity
        else:
            arrays.setdefault(ref.param, []).append((ref.index, ref.identity))
    for param, items in arrays.items():
        out[param] = [identity for _, identity in sorted(items)]
    return out


def derived_seed(key_material: str, max_seed: int) -> int:
    """A seed derived from a job's seedless key: reproducible, spread over 0..max_seed."""
    digest = hashlib.sha256(("seed:" + key_material).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (max_seed + 1)
