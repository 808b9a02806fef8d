"""Pretrained weights: local checkpoints registered by name with their SHA-256 (the file stays
where it is), and their resolution, checksum checked, when a pipeline asks for them: a
registered name first, then a name a plugin provides (:class:`~emokit_core.specs.WeightsSpec`),
then a file path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from ..errors import RegistryError, WeightsError
from .engine import Database
from .records import WeightsRecord, plain, utc
from .schema import Weights, utcnow

if TYPE_CHECKING:
    from ..specs import WeightsSpec


class WeightsTable:
    db: Database

    def add_weights(self, name: str, path: str | os.PathLike[str], *, kind: str | None = None,
                    replace: bool = False, provenance: Mapping[str, Any] | None = None) -> WeightsRecord:
        """Register a local checkpoint under ``name`` (``replace``: over an existing name), with
        what made it (``provenance``, plain data) where that is known."""
        from ..cache import file_sha256

        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise RegistryError(f"{file}: no such checkpoint file", "give the path of a local .pth/.pt file")
        row = {"name": name, "path": str(file), "sha256": file_sha256(file), "size": file.stat().st_size,
               "kind": kind, "created_at": utcnow(), "provenance": plain(dict(provenance)) if provenance else None}

        def add(conn: Connection) -> None:
            old = conn.execute(select(Weights.id, Weights.path).where(Weights.name == name)).first()
            if old is not None and not replace:
                raise RegistryError(f"weights {name!r} are already registered ({old.path})",
                                    "choose another name, or pass --replace")
            if old is not None:
                conn.execute(update(Weights).where(Weights.id == old.id).values(**row))
            else:
                conn.execute(insert(Weights).values(**row))

        self.db.write(add)
        return WeightsRecord(**row)

    def list_weights(self) -> list[WeightsRecord]:
        with self.db.tx() as conn:
            rows = conn.execute(select(Weights.name, Weights.path, Weights.sha256, Weights.size, Weights.kind,
                                       Weights.created_at, Weights.provenance).order_by(Weights.name)).all()
        return [WeightsRecord(r.name, r.path, r.sha256, r.size, r.kind, utc(r.created_at), r.provenance) for r in rows]

    def resolve_weights(self, ref: str, packaged: Mapping[str, WeightsSpec] | None = None) -> WeightsRecord:
        """``NAME`` (registered, else one of ``packaged``: the plugins' weights) or ``PATH`` -> its
        record, the file's SHA-256 checked against the registered (or declared) one."""
        from ..cache import file_sha256
        from ..naming import closest

        with self.db.tx() as conn:
            row = conn.execute(select(Weights.name, Weights.path, Weights.sha256, Weights.size, Weights.kind,
                                      Weights.created_at, Weights.provenance).where(Weights.name == ref)).first()
            names = [] if row else [n for n, in conn.execute(select(Weights.name))]
        if row is None and packaged and ref in packaged:
            return packaged_record(packaged[ref])
        if row is None:
            file = Path(ref).expanduser()
            if file.is_file():
                return WeightsRecord(None, str(file.resolve()), file_sha256(file), file.stat().st_size)
            suggestion = closest(ref, [*names, *(packaged or {})])
            raise RegistryError(f"no weights named {ref!r} in {self.db.label}, and no such file",
                                f"did you mean {suggestion!r}?" if suggestion else
                                f"register a checkpoint first: emokit weights add {ref} PATH")
        file = Path(row.path)
        if not file.is_file():
            raise RegistryError(f"weights {ref!r}: {file} is missing",
                                f"restore the file or register it again: emokit weights add {ref} PATH --replace")
        sha = file_sha256(file)
        if sha != row.sha256:
            raise RegistryError(f"weights {ref!r}: {file} changed since it was registered "
                                f"(SHA-256 {sha[:12]}…, registered {row.sha256[:12]}…)",
                                f"if the new file is intended: emokit weights add {ref} {file} --replace")
        return WeightsRecord(row.name, str(file), row.sha256, row.size, row.kind, utc(row.created_at), row.provenance)


def packaged_record(spec: WeightsSpec) -> WeightsRecord:
    """A plugin's weights as a record: the file located and its SHA-256 checked against the
    declared one; ``provenance`` carries the source and licence, marked ``packaged``."""
    from ..cache import file_sha256

    file = spec.locate()
    sha = file_sha256(file)
    if sha != spec.sha256:
        raise WeightsError(f"weights {spec.name!r}: {file} has SHA-256 {sha[:12]}…, but its plugin declares "
                           f"{spec.sha256[:12]}…; the file was changed or belongs to another release",
                           "reinstall the distribution that provides it")
    provenance = {**plain(dict(spec.provenance)), "source": spec.source, "licence": spec.licence, "packaged": True}
    return WeightsRecord(spec.name, str(file), sha, file.stat().st_size, spec.architecture, None, provenance)
