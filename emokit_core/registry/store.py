"""The registry: an MLflow-like store of corpora, model versions, runs and their results.

One :class:`Registry` is the facade over one database (:mod:`.engine`; SQLite by default,
any SQLAlchemy URL works) and a content-addressed :class:`~.artifacts.ArtifactStore`. Its
methods come from one module per table group: corpora (:mod:`.corpora`), the run lifecycle
with resume (:mod:`.runs`), read queries (:mod:`.queries`) and pretrained weights
(:mod:`.weights`). Everything returned is a record of :mod:`.records`; timestamps are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sqlalchemy import Engine

from .artifacts import ArtifactStore
from .corpora import CorpusTable
from .engine import Database
from .queries import RunQueries
from .records import RunInfo
from .runs import RunLifecycle
from .weights import WeightsTable

__all__ = ["Registry", "RunInfo"]


class Registry(CorpusTable, RunLifecycle, RunQueries, WeightsTable):
    """The model registry.

    ``url``: a SQLAlchemy URL or a bare path to a SQLite file; ``None`` resolves through
    :func:`~emokit_core.registry.default_registry_url` (``EMOKIT_REGISTRY``, else
    ``sqlite:///./registry.db``). ``artifact_root``: where artifacts live; by default beside a
    SQLite database (``dir/registry.db`` -> ``dir/registry.artifacts/``), for other databases
    ``EMOKIT_ARTIFACTS`` or ``./emokit-artifacts``.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, artifact_root: str | os.PathLike[str] | None = None):
        self.db = Database(url)
        if artifact_root is not None:
            root = Path(artifact_root)
        elif self.db.file is not None:
            root = self.db.file.with_name(self.db.file.stem + ".artifacts")
        else:
            root = Path(os.environ.get("EMOKIT_ARTIFACTS") or "./emokit-artifacts")
        self.artifacts = ArtifactStore(root.expanduser().absolute())
        self.hostname = socket.gethostname() or "localhost"  # recorded with each run, for resume

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def label(self) -> str:
        """How messages name this registry: its file, or its URL without the password."""
        return self.db.label

    @property
    def file(self) -> Path | None:
        """The SQLite file, or None for an in-memory or server database."""
        return self.db.file

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def put_artifact(self, data: bytes) -> str:
        """Store bytes content-addressed (atomic, deduplicated); return their SHA-256."""
        return self.artifacts.put(data)

    def get_artifact(self, sha256: str, *, context: str | None = None) -> bytes:
        """The bytes of an artifact, verified against their SHA-256."""
        return self.artifacts.get(sha256, context=context)

    def close(self) -> None:
        """Release the database connections."""
        self.db.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.label!r}, artifacts={str(self.artifacts.root)!r})"
