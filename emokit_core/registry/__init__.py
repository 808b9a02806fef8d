"""The model registry: runs, per-fold scores, out-of-fold predictions and artifacts.

Importing this package is cheap (no SQLAlchemy, no alembic, no numpy, no torch): the
:class:`Registry` class is loaded on first access.

>>> from emokit_core.registry import Registry
>>> reg = Registry("sqlite:///registry.db")        # created / upgraded on open
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

__all__ = ["Registry", "RunInfo", "ArtifactStore", "default_registry_url", "DEFAULT_REGISTRY_URL"]

DEFAULT_REGISTRY_URL = "sqlite:///./registry.db"

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

if TYPE_CHECKING:  # pragma: no cover
    from .artifacts import ArtifactStore
    from .store import Registry, RunInfo


def default_registry_url(url: str | os.PathLike[str] | None = None) -> str:
    """Resolve the registry URL.

    The argument wins, else the ``EMOKIT_REGISTRY`` environment variable, else
    ``sqlite:///./registry.db``. A bare filesystem path (``runs/registry.db``,
    ``~/emokit.db``) is accepted anywhere and turned into a SQLite URL.
    """
    if url is None or str(url).strip() == "":
        url = os.environ.get("EMOKIT_REGISTRY", "").strip() or DEFAULT_REGISTRY_URL
    url = os.fspath(url)
    if _URL_RE.match(url):
        return url
    return "sqlite:///" + os.path.expanduser(url)


def __getattr__(name: str) -> Any:
    if name in ("Registry", "RunInfo"):
        from . import store

        return getattr(store, name)
    if name == "ArtifactStore":
        from .artifacts import ArtifactStore

        return ArtifactStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
