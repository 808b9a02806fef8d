"""The registry's corpora: one row per (name, fingerprint), with its ordered class list."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..errors import RegistryError
from .engine import Database
from .records import plain
from .schema import Corpus, utcnow


class CorpusTable:
    db: Database

    def upsert_corpus(self, *, name: str, fingerprint: str, classes: Sequence[str], n_clips: int,
                      root: str | os.PathLike[str], reader: str | None = None,
                      reader_options: Mapping[str, Any] | None = None) -> int:
        """Get or create the corpus (name, fingerprint); return its id. Updates root, n_clips and
        the reader (the corpus-table name and options that read it again, e.g. for the report's frames)."""
        options = plain(dict(reader_options)) if reader_options else None
        classes = [str(c) for c in classes]
        root = os.fspath(root)

        def upsert(conn: Connection) -> int:
            row = conn.execute(
                select(Corpus.id, Corpus.classes).where(Corpus.name == name, Corpus.fingerprint == fingerprint)
            ).first()
            if row is None:
                return conn.execute(
                    insert(Corpus)
                    .values(name=name, fingerprint=fingerprint, classes=classes, n_clips=int(n_clips), root=root,
                            reader=reader, reader_options=options, created_at=utcnow())
                    .returning(Corpus.id)
                ).scalar_one()
            if list(row.classes) != classes:
                raise RegistryError(
                    f"corpus {name!r} (fingerprint {fingerprint}) is registered with classes "
                    f"{list(row.classes)}, not {classes}",
                    "the class list (and its order) must be part of the corpus fingerprint",
                )
            changes = {"n_clips": int(n_clips), "root": root, **({"reader": reader, "reader_options": options} if reader else {})}
            conn.execute(update(Corpus).where(Corpus.id == row.id).values(**changes))
            return row.id

        return self.db.write(upsert)
