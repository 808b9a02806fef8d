"""The registry's database: URL, SQLAlchemy engine, SQLite pragmas, transactions and the
alembic migrations run on open.

Opening creates or upgrades the schema through the migrations shipped in ``migrations/``;
a database written by a newer emokit is refused untouched.
"""

from __future__ import annotations

import functools
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from ..errors import RegistryError, SchemaTooNewError
from . import default_registry_url
from .records import json_dumps

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_TOO_NEW_HINT = (
    "upgrade emokit (pip install -U emokit) or point --registry/EMOKIT_REGISTRY at another database"
)
BUSY_TIMEOUT_S = 60.0
WRITE_RETRIES = 8
_UPGRADE_LOCK = 731902415  # PostgreSQL advisory lock that serialises concurrent upgrades

T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def script_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision this emokit ships, its heads)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return known, frozenset(script.get_heads())


def alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


class Database:
    """One SQLAlchemy engine on the registry's database, its schema at this emokit's head.

    ``url``: a SQLAlchemy URL or a bare path to a SQLite file; ``None`` resolves through
    :func:`~emokit_core.registry.default_registry_url`.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None):
        self.url = default_registry_url(url)
        try:
            sa_url = make_url(self.url)
        except Exception as exc:  # ArgumentError and friends
            raise RegistryError(
                f"not a database URL: {self.url!r} ({exc})",
                "use a path to a .db file or a SQLAlchemy URL such as postgresql+psycopg://host/emokit",
            ) from None
        self.dialect = sa_url.get_backend_name()
        self.file: Path | None = None
        memory = False
        if self.dialect == "sqlite":
            database = sa_url.database or ""
            memory = database in ("", ":memory:") or sa_url.query.get("mode") == "memory"
            if not memory and not database.startswith("file:"):
                self.file = Path(database).expanduser().absolute()
                sa_url = sa_url.set(database=str(self.file))
        self.label = str(self.file) if self.file else sa_url.render_as_string(hide_password=True)
        self.engine = self._make_engine(sa_url, memory)
        try:
            self._migrate()
        except BaseException:
            self.engine.dispose()
            raise

    def _make_engine(self, sa_url, memory: bool) -> Engine:
        kwargs: dict[str, Any] = {"json_serializer": json_dumps}
        if self.dialect == "sqlite":
            from sqlalchemy.pool import StaticPool

            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
            if memory:
                kwargs["poolclass"] = StaticPool  # one shared in-memory database
            if self.file is not None:
                try:
                    self.file.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise RegistryError(
                        f"cannot create the folder of the registry {self.file}: {exc.strerror or exc}",
                        "point --registry/EMOKIT_REGISTRY at a writable location",
                    ) from exc
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(sa_url, **kwargs)
        except Exception as exc:  # missing driver, bad options
            raise RegistryError(
                f"cannot use the registry {self.label}: {exc}",
                "install the database driver named in the URL, or use a SQLite path",
            ) from exc

        if self.dialect == "sqlite":

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin
                # (so that DDL is transactional and writers can take the lock up front).
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn):
                # writers take the write lock at BEGIN: no lock upgrades, no deadlocks
                immediate = conn.get_execution_options().get("emokit_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def tx(self, write: bool = False) -> Iterator[Connection]:
        """One transaction; ``write=True`` takes SQLite's write lock at BEGIN."""
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(emokit_write=True)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise RegistryError(
                f"registry {self.label}: {exc.orig if exc.orig is not None else exc}",
                "another process may be holding the database lock (retry), or the database "
                "is unreachable or read-only; many concurrent writers are better served by PostgreSQL",
            ) from exc

    def write(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in one write transaction, retried when a unique key was taken meanwhile."""
        for attempt in range(WRITE_RETRIES):
            try:
                with self.tx(write=True) as conn:
                    return fn(conn)
            except IntegrityError:
                if attempt == WRITE_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _current_revisions(self, conn: Connection) -> set[str]:
        from alembic.runtime.migration import MigrationContext

        return set(MigrationContext.configure(conn).get_current_heads())

    def _check_known(self, current: set[str]) -> None:
        known, heads = script_revisions()
        unknown = sorted(current - known)
        if unknown:
            raise SchemaTooNewError(
                f"the registry {self.label} has schema revision {', '.join(unknown)}, which this "
                f"emokit does not know (it knows up to {', '.join(sorted(heads))}): it was written "
                "by a newer emokit",
                SCHEMA_TOO_NEW_HINT,
            )

    def _migrate(self) -> None:
        _known, heads = script_revisions()
        try:
            with self.tx() as conn:  # read-only look first: never touch a too-new database
                current = self._current_revisions(conn)
            self._check_known(current)
            if self.file is not None:
                raw = self.engine.raw_connection()
                try:
                    raw.driver_connection.execute("PRAGMA journal_mode=WAL")
                finally:
                    raw.close()
            if current == set(heads):
                return
            with self.tx(write=True) as conn:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
                current = self._current_revisions(conn)
                self._check_known(current)
                if current != set(heads):
                    from alembic import command

                    command.upgrade(alembic_config(conn), "head")
        except RegistryError:
            raise
        except Exception as exc:
            raise RegistryError(
                f"cannot open or upgrade the registry {self.label}: {exc}",
                "is this an emokit registry? Point --registry/EMOKIT_REGISTRY at another database "
                "(a new path creates a fresh one)",
            ) from exc

    def close(self) -> None:
        self.engine.dispose()
