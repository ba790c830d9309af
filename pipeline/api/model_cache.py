"""The per-user cache of model descriptions: `GET /v1/models/{modelId}` answers kept on disk with the time
they were fetched, so a model's schema is fetched once and `plan` stays offline afterwards.

Where: `$XDG_CACHE_HOME/ltx-batch/models/` (else `~/.cache/ltx-batch/models/`), one folder per API key named
by the first 16 hex digits of the key's sha256 (never the key itself: different accounts may see different
models, and a private model belongs to one), one file per model: `<modelId>.json` holding
`{"modelId", "fetchedAt" (ISO 8601), "fetchedAtS" (Unix time), "apiUrl", "model": {...}}`. An entry fetched
from another API URL is not used (the embedded emulator and the real service share no answers). Writes go to a
temporary file renamed over the old one, so a reader never sees half a file; a file that cannot be read is a
miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.api.models import check_model_id

log = logging.getLogger(__name__)

APP_DIR = "ltx-batch"
MAX_ENTRY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CachedModel:
    """One cached description: the `model` object, when and where from it was fetched."""

    model: dict[str, Any]
    fetched_at_s: float
    api_url: str
    path: Path

    def age_s(self, now_s: float) -> float:
        return max(0.0, now_s - self.fetched_at_s)

    def stale(self, now_s: float, max_age_s: float) -> bool:
        """Older than `max_age_s` (0: always stale, so every use fetches it again)."""
        return max_age_s <= 0 or self.age_s(now_s) > max_age_s


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """The user's cache folder for ltx-batch: $XDG_CACHE_HOME/ltx-batch, else ~/.cache/ltx-batch."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path(env.get("HOME") or Path.home()) / ".cache"
    return root / APP_DIR


def key_folder(api_key: str) -> str:
    """The folder name of one API key's entries: a hash, never the key."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


class ModelCache:
    """The cached descriptions of one API key's models."""

    def __init__(self, root: Path, api_key: str) -> None:
        self.folder = root / "models" / key_folder(api_key)

    def path(self, model_id: str) -> Path:
        return self.folder / f"{check_model_id(model_id)}.json"

    def read(self, model_id: str, *, api_url: str) -> CachedModel | None:
        """The entry of `model_id` fetched from `api_url`, or None (absent, unreadable, from another URL)."""
        path = self.path(model_id)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_ENTRY_BYTES + 1)
            data = json.loads(raw) if len(raw) <= MAX_ENTRY_BYTES else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("ignoring the cached description %s: %s", path, exc)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict) or data.get("modelId") != model_id:
            log.warning("ignoring the cached description %s: not one this version wrote", path)
            return None
        fetched = data.get("fetchedAtS")
        if isinstance(fetched, bool) or not isinstance(fetched, (int, float)) or data.get("apiUrl") != api_url:
            return None
        return CachedModel(data["model"], float(fetched), api_url, path)

    def write(self, model_id: str, model: dict[str, Any], *, api_url: str, fetched_at_s: float) -> CachedModel:
        """Keep a freshly fetched description (atomically); an unwritable cache is only a warning."""
        path = self.path(model_id)
        entry = {"modelId": model_id, "fetchedAt": datetime.fromtimestamp(fetched_at_s, UTC).isoformat(),
                 "fetchedAtS": fetched_at_s, "apiUrl": api_url, "model": model}
        temporary: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.folder, prefix=f".{model_id}.",
                                             suffix=".tmp", delete=False) as handle:
                temporary = handle.name
                json.dump(entry, handle, ensure_ascii=False, indent=1)
            os.replace(temporary, path)
            temporary = None
        except OSError as exc:
            log.warning("could not cache the description of %s in %s: %s", model_id, self.folder, exc)
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
        return CachedModel(model, fetched_at_s, api_url, path)
