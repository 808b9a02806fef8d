"""Content-addressed artifact store: ``<root>/ab/abcdef…`` (full SHA-256 as the file name).

Writes go to a temporary file in the same folder and are renamed into place, so a
reader never sees a half-written artifact; identical content is stored once. Every
read re-hashes the bytes and refuses them when they no longer match.  A fold's fitted model
is stored as the bytes :func:`dump_model` makes and read back with :func:`load_model`.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ArtifactCorruptedError, RegistryError

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

RERUN_HINT = "rerun the run (emokit run …) to retrain it, or restore the file from a backup"

#: The artifact name of a fold's fitted model.
MODEL_ARTIFACT = "model"
#: Top-level packages whose classes and functions any stored model may reference; a model may
#: also reference its own plugin's package (``allowed`` of :func:`load_model`).
SAFE_MODULES = ("numpy", "scipy", "sklearn", "torch", "collections", "emokit_core")
SAFE_BUILTINS = ("range", "slice", "complex", "set", "frozenset", "bytearray")


def dump_model(model: Any) -> bytes:
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


class RestrictedUnpickler(pickle.Unpickler):
    """Loads only classes and functions of the allowed top-level packages (and a few harmless
    builtins), so a tampered artifact cannot name ``os.system``; ``needed`` lists what it loaded."""

    def __init__(self, data: bytes, allowed: Iterable[str] = ()):
        super().__init__(io.BytesIO(data))
        self.allowed = frozenset({*SAFE_MODULES, *allowed} - {"__main__", "builtins"})
        self.needed: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        admitted = name in SAFE_BUILTINS if module == "builtins" else module.split(".")[0] in self.allowed
        if not admitted:
            raise pickle.UnpicklingError(f"{module}.{name}")
        self.needed.add(f"{module}.{name}")
        return super().find_class(module, name)


def load_model(data: bytes, allowed: Iterable[str] = ()) -> Any:
    """A fitted model from :func:`dump_model`'s bytes (checksummed by the store before this).
    Raises :class:`pickle.UnpicklingError` naming the first class outside :data:`SAFE_MODULES`
    and ``allowed``."""
    return RestrictedUnpickler(data, allowed).load()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
        raise RegistryError(f"not a SHA-256 artifact id: {sha256!r}", "artifact ids are 64 lowercase hex digits")
    return sha256


class ArtifactStore:
    """Blobs keyed by their SHA-256 under ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        _check_sha(sha256)
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256. Idempotent; repairs a damaged copy."""
        data = bytes(data) if not isinstance(data, bytes) else data
        sha = sha256_hex(data)
        target = self.path(sha)
        if target.is_file():
            try:
                if target.stat().st_size == len(data) and sha256_hex(target.read_bytes()) == sha:
                    return sha
            except OSError:
                pass  # unreadable: rewrite it below
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{sha[:12]}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError as exc:
            raise RegistryError(
                f"cannot write artifact {target}: {exc.strerror or exc}",
                f"check that {self.root} is writable and the disk is not full",
            ) from exc
        return sha

    def get(self, sha256: str, *, context: str | None = None) -> bytes:
        """Read and verify one artifact. ``context`` (e.g. ``run 3, fold 1, 'model'``) goes into errors."""
        target = self.path(sha256)
        where = f" ({context})" if context else ""
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise RegistryError(
                f"artifact {target} is missing{where}",
                f"the artifact folder {self.root} must stay beside the registry database; "
                f"restore it, or {RERUN_HINT}",
            ) from None
        except OSError as exc:
            raise RegistryError(f"cannot read artifact {target}{where}: {exc.strerror or exc}", RERUN_HINT) from exc
        actual = sha256_hex(data)
        if actual != sha256:
            raise ArtifactCorruptedError(
                f"artifact {target} is corrupted{where}: its SHA-256 is {actual}, expected {sha256}",
                f"the file was modified or damaged; {RERUN_HINT}",
            )
        return data

    def iter_hashes(self):
        """Every stored hash (for maintenance; not verified)."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    if _SHA_RE.match(f.name) and f.name.startswith(sub.name):
                        yield f.name
