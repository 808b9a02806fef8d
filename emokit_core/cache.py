"""On-disk feature cache keyed by content and configuration.

Key = SHA-256 of (the clip's content fingerprint, the extractor's class as
``module.qualname``, its parameters, its ``cache_version``, the checksum of any weights it
uses and emokit's decoder version).  A clip's
content fingerprint is the SHA-256 of its media file(s), memoised by path, size and
mtime so that unchanged files are not re-hashed on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .contracts import Clip


def default_home() -> Path:
    return Path(os.environ.get("EMOKIT_HOME", Path.home() / ".cache" / "emokit")).expanduser()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def extractor_key(name: str, extractor: Any) -> dict[str, Any]:
    """What identifies an extractor's output: its name, parameters (less those listed in its
    ``cache_ignores``, such as the device), ``cache_version``, weights checksum, and the version
    of emokit's decoding that fed it."""
    from .media import DECODER_VERSION

    params = extractor.get_params(deep=False) if hasattr(extractor, "get_params") else {}
    params = {k: v for k, v in params.items() if k not in getattr(extractor, "cache_ignores", ())}
    return {"extractor": name, "params": _jsonable(params),
            "version": str(getattr(extractor, "cache_version", "1")),
            "weights": getattr(extractor, "weights_sha256", None), "decoder": DECODER_VERSION}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "sha256"):  # a checkpoint (WeightsRef) counts by content, wherever it lies
        return {"sha256": value.sha256}
    if hasattr(value, "get_params"):
        return {"class": type(value).__qualname__, "params": _jsonable(value.get_params(deep=False))}
    return repr(value)


class FeatureCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_home() / "features"
        self.root.mkdir(parents=True, exist_ok=True)
        self._fingerprints = self.root / "fingerprints.sqlite"
        self._local = threading.local()
        self.hits = 0
        self.misses = 0

    # -- clip fingerprints ------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._fingerprints, timeout=30)
            db.execute("create table if not exists fp (path text primary key, size int, mtime int, sha text)")
            self._local.db = db
        return db

    def file_fingerprint(self, path: Path) -> str:
        stat = path.stat()
        db = self._db()
        row = db.execute("select size, mtime, sha from fp where path=?", (str(path.resolve()),)).fetchone()
        if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return row[2]
        sha = file_sha256(path)
        with db:
            db.execute("insert or replace into fp values (?,?,?,?)",
                       (str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha))
        return sha

    def clip_fingerprint(self, clip: Clip, modality: str) -> str:
        path = clip.media_path(modality)
        if path is None:
            raise ValueError(f"clip {clip.id} has no {modality} media")
        return self.file_fingerprint(path)

    # -- features ---------------------------------------------------------------------------
    def key(self, fingerprint: str, ext_key: dict[str, Any]) -> str:
        blob = json.dumps({"clip": fingerprint, **ext_key}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def has(self, key: str) -> bool:
        return self._path(key).exists()

    def load(self, key: str, mmap: bool = False) -> np.ndarray:
        return np.load(self._path(key), mmap_mode="r" if mmap else None, allow_pickle=False)

    def store(self, key: str, features: np.ndarray) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(features), allow_pickle=False)
            os.replace(tmp, target)  # atomic: a killed run never leaves half a feature file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
