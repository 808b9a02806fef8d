"""The registry: an MLflow-like store of corpora, model versions, runs and their results.

One :class:`Registry` wraps one SQLAlchemy engine (SQLite by default, any SQLAlchemy URL
works) plus a content-addressed :class:`~emokit_core.registry.artifacts.ArtifactStore`.
Opening it creates or upgrades the schema through the alembic migrations shipped in
``migrations/``; a database written by a newer emokit is refused untouched.

Everything returned is plain data (dicts, dataclasses, lists); no ORM object leaves a
transaction. Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from ..errors import RegistryError, SchemaTooNewError
from . import default_registry_url
from .artifacts import ArtifactStore
from .schema import (
    UNFINISHED_STATUSES,
    Artifact,
    Corpus,
    FoldResult,
    Model,
    ModelVersion,
    Prediction,
    Run,
    RunArtifact,
    RunInput,
    RunTag,
    Score,
    Weights,
    utcnow,
)

__all__ = ["Registry", "RunInfo"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_TOO_NEW_HINT = (
    "upgrade emokit (pip install -U emokit) or point --registry/EMOKIT_REGISTRY at another database"
)
BUSY_TIMEOUT_S = 60.0
_WRITE_RETRIES = 8
# metrics for which a smaller value is better (leaderboard ordering)
_LOWER_IS_BETTER_SUFFIXES = ("loss", "error", "ece", "brier")


@dataclass(frozen=True)
class RunInfo:
    """What :meth:`Registry.start_run` hands back."""

    run_id: int
    model: str
    version: int
    resumed: bool
    finished_folds: frozenset[int] = field(default_factory=frozenset)
    model_version_id: int | None = None
    corpus_id: int | None = None


# --------------------------------------------------------------------------- helpers


def _plain(obj: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays, tuples, sets and paths become plain Python."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_plain(v) for v in obj), key=repr)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy array or scalar, torch tensor
        return _plain(obj.tolist())
    if hasattr(obj, "item"):
        return _plain(obj.item())
    return str(obj)


def _json_dumps(obj: Any) -> str:
    return json.dumps(_plain(obj), ensure_ascii=False)


def _num(x: Any) -> float | None:
    """A float for the database; NaN/inf become NULL."""
    if x is None:
        return None
    v = float(x.item() if hasattr(x, "item") else x)
    return v if math.isfinite(v) else None


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):  # a driver that hands back text
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _norm_folds(folds: Any) -> list[list[str]]:
    return [[str(a) for a in fold] for fold in (folds or [])]


def _norm_inputs(inputs: Mapping[str, int] | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in (inputs or {}).items()}


def _tag_condition(tag: str):
    """WHERE clause for runs carrying the tag ``"key"`` (any value) or ``"key=value"``."""
    key, has_value, value = tag.partition("=")
    key = key.strip()
    if not key:
        raise RegistryError(f"bad tag filter {tag!r}", "write KEY or KEY=VALUE, e.g. --tag grid=fusion")
    cond = and_(RunTag.run_id == Run.id, RunTag.key == key)
    if has_value:
        cond = and_(cond, RunTag.value == value)
    return select(RunTag.run_id).where(cond).exists()


def _pid_alive(pid: int | None) -> bool:
    """Is ``pid`` a live process on this host? Our own pid counts as alive."""
    if not pid or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:  # a zombie is dead for our purposes (Linux only; elsewhere assume alive)
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rindex(")") + 2 :].startswith("Z"):
            return False
    except (OSError, ValueError):
        pass
    return True


def _hostname() -> str:
    return socket.gethostname() or "localhost"


@functools.lru_cache(maxsize=1)
def _script_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(every revision this emokit ships, its heads)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return known, frozenset(script.get_heads())


def _alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


# --------------------------------------------------------------------------- registry


class Registry:
    """The model registry.

    ``url``: a SQLAlchemy URL or a bare path to a SQLite file; ``None`` resolves through
    :func:`default_registry_url` (``EMOKIT_REGISTRY``, else ``sqlite:///./registry.db``).
    ``artifact_root``: where artifacts live; by default beside a SQLite database
    (``dir/registry.db`` → ``dir/registry.artifacts/``), for other databases
    ``EMOKIT_ARTIFACTS`` or ``./emokit-artifacts``.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, artifact_root: str | os.PathLike[str] | None = None):
        self.url = default_registry_url(url)
        try:
            sa_url = make_url(self.url)
        except Exception as exc:  # ArgumentError and friends
            raise RegistryError(
                f"not a database URL: {self.url!r} ({exc})",
                "use a path to a .db file or a SQLAlchemy URL such as postgresql+psycopg://host/emokit",
            ) from None
        self.dialect = sa_url.get_backend_name()
        self.db_file: Path | None = None
        memory = False
        if self.dialect == "sqlite":
            database = sa_url.database or ""
            memory = database in ("", ":memory:") or sa_url.query.get("mode") == "memory"
            if not memory and not database.startswith("file:"):
                self.db_file = Path(database).expanduser().absolute()
                sa_url = sa_url.set(database=str(self.db_file))
        self._sa_url = sa_url
        self.label = str(self.db_file) if self.db_file else sa_url.render_as_string(hide_password=True)

        if artifact_root is not None:
            root = Path(artifact_root)
        elif self.db_file is not None:
            root = self.db_file.with_name(self.db_file.stem + ".artifacts")
        else:
            root = Path(os.environ.get("EMOKIT_ARTIFACTS") or "./emokit-artifacts")
        self.artifacts = ArtifactStore(root.expanduser().absolute())
        self.host = _hostname()

        self._engine = self._make_engine(sa_url, memory)
        try:
            self._open()
        except BaseException:
            self._engine.dispose()
            raise

    # ------------------------------------------------------------------ plumbing

    def _make_engine(self, sa_url, memory: bool) -> Engine:
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
        if self.dialect == "sqlite":
            from sqlalchemy.pool import StaticPool

            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
            if memory:
                kwargs["poolclass"] = StaticPool  # one shared in-memory database
            if self.db_file is not None:
                try:
                    self.db_file.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise RegistryError(
                        f"cannot create the folder of the registry {self.db_file}: {exc.strerror or exc}",
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
    def _tx(self, write: bool = False) -> Iterator[Connection]:
        """One transaction; ``write=True`` takes SQLite's write lock at BEGIN."""
        try:
            with self._engine.connect() as conn:
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

    def _write_retrying(self, fn):
        """Run ``fn(conn)`` in a write transaction, retrying on unique-key races."""
        for attempt in range(_WRITE_RETRIES):
            try:
                with self._tx(write=True) as conn:
                    return fn(conn)
            except IntegrityError:
                if attempt == _WRITE_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _current_revisions(self, conn: Connection) -> set[str]:
        from alembic.runtime.migration import MigrationContext

        return set(MigrationContext.configure(conn).get_current_heads())

    def _check_known(self, current: set[str]) -> None:
        known, heads = _script_revisions()
        unknown = sorted(current - known)
        if unknown:
            raise SchemaTooNewError(
                f"the registry {self.label} has schema revision {', '.join(unknown)}, which this "
                f"emokit does not know (it knows up to {', '.join(sorted(heads))}): it was written "
                "by a newer emokit",
                SCHEMA_TOO_NEW_HINT,
            )

    def _open(self) -> None:
        known, heads = _script_revisions()
        try:
            with self._tx() as conn:  # read-only look first: never touch a too-new database
                current = self._current_revisions(conn)
            self._check_known(current)
            if self.db_file is not None:
                raw = self._engine.raw_connection()
                try:
                    raw.driver_connection.execute("PRAGMA journal_mode=WAL")
                finally:
                    raw.close()
            if current == set(heads):
                return
            with self._tx(write=True) as conn:
                if self.dialect == "postgresql":  # serialise concurrent upgrades
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(731902415)")
                current = self._current_revisions(conn)
                self._check_known(current)
                if current != set(heads):
                    from alembic import command

                    command.upgrade(_alembic_config(conn), "head")
        except RegistryError:
            raise
        except Exception as exc:
            raise RegistryError(
                f"cannot open or upgrade the registry {self.label}: {exc}",
                "is this an emokit registry? Point --registry/EMOKIT_REGISTRY at another database "
                "(a new path creates a fresh one)",
            ) from exc

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.label!r}, artifacts={str(self.artifacts.root)!r})"

    @property
    def engine(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ artifacts

    def put_artifact(self, data: bytes) -> str:
        """Store bytes content-addressed (atomic, deduplicated); return their SHA-256."""
        return self.artifacts.put(data)

    def get_artifact(self, sha256: str, *, context: str | None = None) -> bytes:
        """The bytes of an artifact, verified against their SHA-256."""
        return self.artifacts.get(sha256, context=context)

    # ------------------------------------------------------------------ corpora

    def upsert_corpus(self, *, name: str, fingerprint: str, classes: Sequence[str], n_clips: int, root: str | os.PathLike[str]) -> int:
        """Get or create the corpus (name, fingerprint); return its id. Updates root / n_clips."""
        classes = [str(c) for c in classes]
        root = os.fspath(root)

        def work(conn: Connection) -> int:
            row = conn.execute(
                select(Corpus.id, Corpus.classes).where(Corpus.name == name, Corpus.fingerprint == fingerprint)
            ).first()
            if row is None:
                return conn.execute(
                    insert(Corpus)
                    .values(name=name, fingerprint=fingerprint, classes=classes, n_clips=int(n_clips), root=root, created_at=utcnow())
                    .returning(Corpus.id)
                ).scalar_one()
            if list(row.classes) != classes:
                raise RegistryError(
                    f"corpus {name!r} (fingerprint {fingerprint}) is registered with classes "
                    f"{list(row.classes)}, not {classes}",
                    "the class list (and its order) must be part of the corpus fingerprint",
                )
            conn.execute(update(Corpus).where(Corpus.id == row.id).values(n_clips=int(n_clips), root=root))
            return row.id

        return self._write_retrying(work)

    # ------------------------------------------------------------------ runs: writing

    def start_run(
        self,
        *,
        pipeline: str,
        modality: str,
        params: Mapping[str, Any],
        config_hash: str,
        profile: str,
        seed: int,
        corpus_id: int,
        folds: Sequence[Sequence[str]],
        library_versions: Mapping[str, Any],
        weights: Mapping[str, Any] | None = None,
        inputs: Mapping[str, int] | None = None,
        command: str = "",
        resume: bool = True,
    ) -> RunInfo:
        """Resume a matching unfinished run, or register the pipeline's next version and its run.

        A run matches when pipeline, config hash, profile, corpus, seed, folds, weights and
        inputs are the same and its status is running / interrupted / failed. A ``running``
        run is left alone when its process is alive on this host (or it runs on another
        host, where we cannot tell); then a new version is created.
        """
        if not folds:
            raise RegistryError(f"run of {pipeline} has no folds", "a run needs at least one held-out fold")
        folds_plain = _plain([list(f) for f in folds])
        folds_norm = _norm_folds(folds)
        inputs_norm = _norm_inputs(inputs)
        weights_plain = _plain(weights) if weights is not None else None
        params_plain = _plain(dict(params))
        libs_plain = _plain(dict(library_versions))
        pid = os.getpid()
        now = utcnow()

        def work(conn: Connection) -> RunInfo:
            if conn.execute(select(Corpus.id).where(Corpus.id == corpus_id)).first() is None:
                raise RegistryError(f"no corpus with id {corpus_id} in {self.label}", "register it with upsert_corpus first")
            for mod, rid in inputs_norm.items():
                if conn.execute(select(Run.id).where(Run.id == rid)).first() is None:
                    raise RegistryError(f"input run {rid} ({mod}) of {pipeline} does not exist", "see emokit runs")

            if resume:
                info = self._try_resume(
                    conn, pipeline, config_hash, profile, seed, corpus_id, folds_norm, weights_plain, inputs_norm, pid, command
                )
                if info is not None:
                    return info

            model = conn.execute(select(Model.id, Model.modality).where(Model.name == pipeline)).first()
            if model is None:
                model_id = conn.execute(
                    insert(Model).values(name=pipeline, modality=modality, created_at=now).returning(Model.id)
                ).scalar_one()
            else:
                model_id = model.id
                if model.modality != modality:
                    raise RegistryError(
                        f"model {pipeline} is registered with modality {model.modality!r}, not {modality!r}",
                        "a pipeline name must keep its modality; rename the pipeline",
                    )
            version = (
                conn.execute(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id)).scalar()
                or 0
            ) + 1
            mv_id = conn.execute(
                insert(ModelVersion)
                .values(model_id=model_id, version=version, config_hash=config_hash, params=params_plain, profile=profile, created_at=now)
                .returning(ModelVersion.id)
            ).scalar_one()
            run_id = conn.execute(
                insert(Run)
                .values(
                    model_version_id=mv_id,
                    corpus_id=corpus_id,
                    seed=int(seed),
                    profile=profile,
                    folds=folds_plain,
                    status="running",
                    started_at=now,
                    library_versions=libs_plain,
                    weights=weights_plain,
                    host=self.host,
                    pid=pid,
                    command=command or "",
                )
                .returning(Run.id)
            ).scalar_one()
            if inputs_norm:
                conn.execute(
                    insert(RunInput),
                    [{"run_id": run_id, "modality": m, "input_run_id": r} for m, r in sorted(inputs_norm.items())],
                )
            return RunInfo(run_id, pipeline, version, False, frozenset(), mv_id, corpus_id)

        return self._write_retrying(work)

    def _try_resume(self, conn, pipeline, config_hash, profile, seed, corpus_id, folds_norm, weights, inputs_norm, pid, command):
        rows = conn.execute(
            select(
                Run.id, Run.status, Run.pid, Run.host, Run.folds, Run.weights, Run.corpus_id,
                ModelVersion.id.label("mv_id"), ModelVersion.version,
            )
            .join(ModelVersion, ModelVersion.id == Run.model_version_id)
            .join(Model, Model.id == ModelVersion.model_id)
            .where(
                Model.name == pipeline,
                ModelVersion.config_hash == config_hash,
                Run.profile == profile,
                Run.corpus_id == corpus_id,
                Run.seed == int(seed),
                Run.status.in_(UNFINISHED_STATUSES),
            )
            .order_by(ModelVersion.version.desc())
        ).all()
        for row in rows:
            if _norm_folds(row.folds) != folds_norm or (row.weights or None) != (weights or None):
                continue
            got_inputs = {
                r.modality: r.input_run_id
                for r in conn.execute(select(RunInput.modality, RunInput.input_run_id).where(RunInput.run_id == row.id))
            }
            if got_inputs != inputs_norm:
                continue
            if row.status == "running" and (row.host != self.host or _pid_alive(row.pid)):
                continue  # someone's live run (or one on another machine we cannot check)
            claimed = conn.execute(
                update(Run)
                .where(Run.id == row.id, Run.status == row.status, Run.pid == row.pid, Run.host == row.host)
                .values(status="running", pid=pid, host=self.host, command=command or "", error=None, finished_at=None)
            ).rowcount
            if claimed != 1:
                continue  # another process got there first
            done = frozenset(
                conn.execute(select(FoldResult.fold).where(FoldResult.run_id == row.id)).scalars().all()
            )
            return RunInfo(row.id, pipeline, row.version, True, done, row.mv_id, row.corpus_id)
        return None

    def _run_row(self, conn: Connection, run_id: int):
        row = conn.execute(select(Run.id, Run.status, Run.folds).where(Run.id == int(run_id))).first()
        if row is None:
            raise RegistryError(f"no run {run_id} in the registry {self.label}", "emokit runs lists the recorded runs")
        return row

    def record_fold(
        self,
        run_id: int,
        fold: int,
        *,
        n_train: int,
        n_test: int,
        seconds: float,
        scores: Mapping[str, float],
        predictions: Iterable[Sequence[Any] | Mapping[str, Any]],
        artifacts: Mapping[str, bytes] | None = None,
    ) -> None:
        """Record one finished fold in ONE transaction (artifacts are written to the store first).

        ``predictions``: ``(clip_id, actor, label, pred, probs)`` tuples (or dicts with those keys)
        for the fold's held-out clips.
        """
        run_id, fold = int(run_id), int(fold)
        with self._tx() as conn:
            run = self._run_row(conn, run_id)
        self._check_writable(run, fold)

        pred_rows = []
        for p in predictions:
            if isinstance(p, Mapping):
                clip_id, actor, label, pred, probs = (p["clip_id"], p["actor"], p["label"], p["pred"], p["probs"])
            else:
                clip_id, actor, label, pred, probs = p
            pred_rows.append(
                {
                    "run_id": run_id,
                    "clip_id": str(clip_id),
                    "fold": fold,
                    "actor": str(actor),
                    "label": int(label),
                    "pred": int(pred),
                    "probs": [_num(v) for v in _plain(probs)],
                }
            )
        score_rows = [{"run_id": run_id, "fold": fold, "metric": str(k), "value": _num(v)} for k, v in scores.items()]
        # 1) bytes into the content-addressed store (a failure here leaves the DB untouched)
        stored = {str(name): (self.artifacts.put(data), len(data)) for name, data in (artifacts or {}).items()}
        now = utcnow()

        def work(conn: Connection) -> None:
            self._check_writable(self._run_row(conn, run_id), fold)
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(FoldResult).values(
                            run_id=run_id, fold=fold, n_train=int(n_train), n_test=int(n_test),
                            seconds=float(seconds), created_at=now,
                        )
                    )
            except IntegrityError:
                raise RegistryError(
                    f"fold {fold} of run {run_id} is already recorded",
                    "a resumed run skips the folds listed in RunInfo.finished_folds",
                ) from None
            if score_rows:
                conn.execute(insert(Score), score_rows)
            if pred_rows:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(Prediction), pred_rows)
                except IntegrityError as exc:
                    raise RegistryError(
                        f"fold {fold} of run {run_id} repeats a clip that already has an out-of-fold "
                        f"prediction in this run ({exc.orig})",
                        "each clip must be held out in exactly one fold",
                    ) from None
            self._link_artifacts(conn, run_id, fold, stored, now)

        self._write_retrying(work)

    def record_artifacts(self, run_id: int, artifacts: Mapping[str, bytes], *, fold: int | None = None) -> dict[str, str]:
        """Attach named artifacts to a run (``fold=None``: run-level, e.g. a model refit on all clips)."""
        run_id = int(run_id)
        with self._tx() as conn:
            self._run_row(conn, run_id)
        stored = {str(name): (self.artifacts.put(data), len(data)) for name, data in artifacts.items()}

        def work(conn: Connection) -> None:
            self._run_row(conn, run_id)
            cond = RunArtifact.fold.is_(None) if fold is None else RunArtifact.fold == int(fold)
            conn.execute(delete(RunArtifact).where(RunArtifact.run_id == run_id, cond, RunArtifact.name.in_(list(stored))))
            self._link_artifacts(conn, run_id, fold, stored, utcnow())

        self._write_retrying(work)
        return {name: sha for name, (sha, _size) in stored.items()}

    def _check_writable(self, run, fold: int | None) -> None:
        if run.status == "finished":
            raise RegistryError(f"run {run.id} is already finished", "start a new run (emokit run …) instead")
        if fold is not None and not 0 <= fold < len(run.folds):
            raise RegistryError(
                f"run {run.id} has folds 0..{len(run.folds) - 1}, not {fold}", "fold numbers index the run's folds"
            )

    def _link_artifacts(self, conn: Connection, run_id: int, fold: int | None, stored: dict[str, tuple[str, int]], now) -> None:
        if not stored:
            return
        rows = [{"sha256": sha, "size": size, "created_at": now} for sha, size in {v[0]: v[1] for v in stored.values()}.items()]
        if self.dialect in ("sqlite", "postgresql"):
            if self.dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            conn.execute(dialect_insert(Artifact).on_conflict_do_nothing(index_elements=["sha256"]), rows)
        else:
            have = set(conn.execute(select(Artifact.sha256).where(Artifact.sha256.in_([r["sha256"] for r in rows]))).scalars())
            missing = [r for r in rows if r["sha256"] not in have]
            if missing:
                conn.execute(insert(Artifact), missing)
        conn.execute(
            insert(RunArtifact),
            [{"run_id": run_id, "fold": fold, "name": name, "sha256": sha} for name, (sha, _size) in sorted(stored.items())],
        )

    def finished_folds(self, run_id: int) -> set[int]:
        with self._tx() as conn:
            self._run_row(conn, run_id)
            return set(conn.execute(select(FoldResult.fold).where(FoldResult.run_id == int(run_id))).scalars())

    def finish_run(self, run_id: int, *, scores: Mapping[str, float], seconds: float) -> None:
        """Store the pooled scores (fold NULL) and mark the run finished. Every fold must be recorded."""
        run_id = int(run_id)

        def work(conn: Connection) -> None:
            run = self._run_row(conn, run_id)
            done = set(conn.execute(select(FoldResult.fold).where(FoldResult.run_id == run_id)).scalars())
            missing = sorted(set(range(len(run.folds))) - done)
            if missing:
                raise RegistryError(
                    f"run {run_id} cannot finish: folds {missing} are not recorded",
                    "record every fold with record_fold before finish_run",
                )
            conn.execute(delete(Score).where(Score.run_id == run_id, Score.fold.is_(None)))
            if scores:
                conn.execute(
                    insert(Score),
                    [{"run_id": run_id, "fold": None, "metric": str(k), "value": _num(v)} for k, v in scores.items()],
                )
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status="finished", finished_at=utcnow(), seconds=float(seconds), error=None)
            )

        self._write_retrying(work)

    def fail_run(self, run_id: int, error: str, status: str = "failed") -> None:
        """Mark an unfinished run failed (or ``interrupted``); a finished run is left as it is."""
        if status not in ("failed", "interrupted"):
            raise RegistryError(f"fail_run status must be 'failed' or 'interrupted', not {status!r}", None)
        with self._tx(write=True) as conn:
            self._run_row(conn, run_id)
            conn.execute(
                update(Run)
                .where(Run.id == int(run_id), Run.status != "finished")
                .values(status=status, error=str(error), finished_at=utcnow())
            )

    # ------------------------------------------------------------------ runs: reading

    def _pooled_scores(self, conn: Connection, run_ids: Sequence[int]) -> dict[int, dict[str, float | None]]:
        out: dict[int, dict[str, float | None]] = {rid: {} for rid in run_ids}
        if run_ids:
            for r in conn.execute(
                select(Score.run_id, Score.metric, Score.value).where(Score.run_id.in_(list(run_ids)), Score.fold.is_(None))
            ):
                out[r.run_id][r.metric] = r.value
        return out

    def _counts(self, conn: Connection, column, run_ids: Sequence[int]) -> dict[int, int]:
        if not run_ids:
            return {}
        table = column.class_
        return dict(
            conn.execute(
                select(table.run_id, func.count()).where(table.run_id.in_(list(run_ids))).group_by(table.run_id)
            ).all()
        )

    def _run_summary_select(self):
        return (
            select(
                Run.id.label("run_id"), Model.name.label("model"), Model.modality, ModelVersion.version,
                ModelVersion.config_hash, Corpus.name.label("corpus"), Corpus.id.label("corpus_id"),
                Run.profile, Run.seed, Run.status, Run.started_at, Run.finished_at, Run.seconds,
                Run.host, Run.pid, Run.error,
            )
            .join(ModelVersion, ModelVersion.id == Run.model_version_id)
            .join(Model, Model.id == ModelVersion.model_id)
            .join(Corpus, Corpus.id == Run.corpus_id)
        )

    def list_runs(
        self,
        *,
        corpus: str | None = None,
        model: str | None = None,
        status: str | Iterable[str] | None = None,
        limit: int | None = None,
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first: run_id, model, modality, version, corpus, status, timings,
        n_folds (recorded), pooled ``scores``, ``accuracy`` and ``tags``.

        ``tag``: only runs carrying the tag ``"key"`` (any value) or ``"key=value"``.
        """
        q = self._run_summary_select()
        if corpus is not None:
            q = q.where(Corpus.name == corpus)
        if model is not None:
            q = q.where(Model.name == model)
        if status is not None:
            q = q.where(Run.status.in_([status] if isinstance(status, str) else list(status)))
        if tag is not None:
            q = q.where(_tag_condition(tag))
        q = q.order_by(Run.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        with self._tx() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["run_id"] for r in rows]
            scores = self._pooled_scores(conn, ids)
            n_folds = self._counts(conn, FoldResult.run_id, ids)
            tags = self._tags(conn, ids)
        out = []
        for r in rows:
            d = dict(r)
            d["started_at"], d["finished_at"] = _utc(d["started_at"]), _utc(d["finished_at"])
            d["n_folds"] = n_folds.get(d["run_id"], 0)
            d["scores"] = scores[d["run_id"]]
            d["accuracy"] = d["scores"].get("accuracy")
            d["tags"] = tags[d["run_id"]]
            out.append(d)
        return out

    def _tags(self, conn: Connection, run_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {rid: {} for rid in run_ids}
        if run_ids:
            for r in conn.execute(
                select(RunTag.run_id, RunTag.key, RunTag.value).where(RunTag.run_id.in_(list(run_ids))).order_by(RunTag.key)
            ):
                out[r.run_id][r.key] = r.value
        return out

    def set_tags(self, run_id: int, tags: Mapping[str, str]) -> None:
        """Set ``key = value`` tags on a run (any status); an existing key gets the new value.

        Keys are non-empty strings of at most 200 characters without ``=``; values are stored as text
        (numbers are written with ``str``).
        """
        run_id = int(run_id)
        values: dict[str, str] = {}
        for key, value in tags.items():
            if not isinstance(key, str) or not key.strip() or "=" in key or len(key) > 200:
                raise RegistryError(
                    f"run {run_id}: bad tag key {key!r}",
                    "a tag key is a non-empty string of at most 200 characters without '='",
                )
            if value is None:
                raise RegistryError(f"run {run_id}: tag {key!r} has no value", "give every tag a text value")
            values[key.strip()] = str(value)
        if not values:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()]

        def work(conn: Connection) -> None:
            self._run_row(conn, run_id)
            conn.execute(delete(RunTag).where(RunTag.run_id == run_id, RunTag.key.in_([r["key"] for r in rows])))
            conn.execute(insert(RunTag), rows)

        self._write_retrying(work)

    def get_run(self, run_id: int) -> dict[str, Any]:
        """Everything about one run (see the module docs); unknown id → RegistryError."""
        run_id = int(run_id)
        with self._tx() as conn:
            row = conn.execute(
                select(
                    Run.__table__,
                    Model.name.label("model"), Model.modality, ModelVersion.version,
                    ModelVersion.config_hash, ModelVersion.params,
                    Corpus.name.label("corpus_name"), Corpus.fingerprint, Corpus.classes, Corpus.n_clips, Corpus.root,
                )
                .join(ModelVersion, ModelVersion.id == Run.model_version_id)
                .join(Model, Model.id == ModelVersion.model_id)
                .join(Corpus, Corpus.id == Run.corpus_id)
                .where(Run.id == run_id)
            ).mappings().first()
            if row is None:
                raise RegistryError(f"no run {run_id} in the registry {self.label}", "emokit runs lists the recorded runs")
            inputs = {
                r.modality: r.input_run_id
                for r in conn.execute(select(RunInput.modality, RunInput.input_run_id).where(RunInput.run_id == run_id))
            }
            folds = conn.execute(
                select(FoldResult).where(FoldResult.run_id == run_id).order_by(FoldResult.fold)
            ).mappings().all()
            fold_scores: dict[int | None, dict[str, float | None]] = {}
            for s in conn.execute(select(Score.fold, Score.metric, Score.value).where(Score.run_id == run_id)):
                fold_scores.setdefault(s.fold, {})[s.metric] = s.value
            arts = conn.execute(
                select(RunArtifact.fold, RunArtifact.name, RunArtifact.sha256, Artifact.size)
                .join(Artifact, Artifact.sha256 == RunArtifact.sha256)
                .where(RunArtifact.run_id == run_id)
                .order_by(RunArtifact.fold, RunArtifact.name)
            ).all()
            n_pred = conn.execute(select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id)).scalar()
            tags = self._tags(conn, [run_id])[run_id]
        held_out = row["folds"]
        return {
            "run_id": run_id,
            "model": row["model"],
            "modality": row["modality"],
            "version": row["version"],
            "ref": f"{row['model']}@{row['version']}",
            "model_version_id": row["model_version_id"],
            "config_hash": row["config_hash"],
            "params": row["params"],
            "profile": row["profile"],
            "seed": row["seed"],
            "corpus": {
                "id": row["corpus_id"], "name": row["corpus_name"], "fingerprint": row["fingerprint"],
                "classes": row["classes"], "n_clips": row["n_clips"], "root": row["root"],
            },
            "folds": held_out,
            "status": row["status"],
            "started_at": _utc(row["started_at"]),
            "finished_at": _utc(row["finished_at"]),
            "seconds": row["seconds"],
            "library_versions": row["library_versions"],
            "weights": row["weights"],
            "inputs": inputs,
            "host": row["host"],
            "pid": row["pid"],
            "command": row["command"],
            "error": row["error"],
            "tags": tags,
            "fold_results": [
                {
                    "fold": f["fold"],
                    "held_out": held_out[f["fold"]] if 0 <= f["fold"] < len(held_out) else None,
                    "n_train": f["n_train"],
                    "n_test": f["n_test"],
                    "seconds": f["seconds"],
                    "created_at": _utc(f["created_at"]),
                    "scores": fold_scores.get(f["fold"], {}),
                }
                for f in folds
            ],
            "scores": fold_scores.get(None, {}),
            "n_predictions": n_pred,
            "artifacts": [
                {"fold": a.fold, "name": a.name, "sha256": a.sha256, "size": a.size, "path": str(self.artifacts.path(a.sha256))}
                for a in arts
            ],
        }

    def predictions(self, run_id: int) -> list[dict[str, Any]]:
        """The run's out-of-fold predictions ordered by clip_id."""
        with self._tx() as conn:
            self._run_row(conn, run_id)
            rows = conn.execute(
                select(Prediction.clip_id, Prediction.actor, Prediction.fold, Prediction.label, Prediction.pred, Prediction.probs)
                .where(Prediction.run_id == int(run_id))
                .order_by(Prediction.clip_id)
            ).mappings().all()
        return [dict(r) for r in rows]

    def fold_artifact(self, run_id: int, fold: int | None, name: str) -> bytes:
        """The verified bytes of a named artifact of a run's fold (``fold=None``: run-level)."""
        run_id = int(run_id)
        cond = RunArtifact.fold.is_(None) if fold is None else RunArtifact.fold == int(fold)
        with self._tx() as conn:
            self._run_row(conn, run_id)
            sha = conn.execute(
                select(RunArtifact.sha256).where(RunArtifact.run_id == run_id, cond, RunArtifact.name == name)
            ).scalar()
            if sha is None:
                names = sorted(
                    conn.execute(select(RunArtifact.name).where(RunArtifact.run_id == run_id, cond)).scalars()
                )
        where = f"run {run_id}" + (f", fold {fold}" if fold is not None else "") + f", {name!r}"
        if sha is None:
            raise RegistryError(
                f"{where}: no such artifact (has: {', '.join(names) or 'none'})",
                f"emokit runs show {run_id} lists its artifacts; rerun it if the fold never finished",
            )
        return self.artifacts.get(sha, context=where)

    def leaderboard(
        self,
        *,
        corpus: str | None = None,
        modality: str | None = None,
        metric: str = "accuracy",
        higher_is_better: bool | None = None,
        all_versions: bool = False,
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """The best finished run per (corpus, model) by the pooled ``metric``; with
        ``all_versions`` every finished run that has the metric. ``tag``: only runs tagged
        ``"key"`` or ``"key=value"``.

        Sorted by corpus, then best first. Each row: corpus, corpus_fingerprint, modality, model,
        version, run_id, profile, metric, value, accuracy, ci95, macro_f1, uar, zeror_accuracy,
        fold_mean and fold_std (of the per-fold accuracy; sample standard deviation), n_folds,
        n_clips, finished_at, config_hash, params, tags, scores (all pooled scores), and
        ``differs``: the parameters (with this version's values) that are not the same in every
        finished version of that model on that corpus (that has the metric and passes the filters).
        """
        if higher_is_better is None:
            higher_is_better = not metric.lower().endswith(_LOWER_IS_BETTER_SUFFIXES)
        q = (
            select(
                Run.id.label("run_id"), Run.corpus_id, Model.id.label("model_id"), Corpus.name.label("corpus"),
                Corpus.fingerprint.label("corpus_fingerprint"), Model.modality, Model.name.label("model"),
                ModelVersion.version, ModelVersion.config_hash, ModelVersion.params, Run.profile, Run.finished_at,
                Score.value,
            )
            .join(ModelVersion, ModelVersion.id == Run.model_version_id)
            .join(Model, Model.id == ModelVersion.model_id)
            .join(Corpus, Corpus.id == Run.corpus_id)
            .join(Score, and_(Score.run_id == Run.id, Score.fold.is_(None), Score.metric == metric))
            .where(Run.status == "finished", Score.value.is_not(None))
        )
        if corpus is not None:
            q = q.where(Corpus.name == corpus)
        if modality is not None:
            q = q.where(Model.modality == modality)
        if tag is not None:
            q = q.where(_tag_condition(tag))
        with self._tx() as conn:
            chosen: dict[Any, dict[str, Any]] = {}
            candidates: dict[tuple[int, int], list[dict[str, Any]]] = {}  # params of every finished version
            for r in conn.execute(q).mappings():
                candidates.setdefault((r["corpus_id"], r["model_id"]), []).append(r["params"] or {})
                key = r["run_id"] if all_versions else (r["corpus_id"], r["model_id"])
                cur = chosen.get(key)
                v = r["value"] if higher_is_better else -r["value"]
                if cur is None or v > cur["_key"] or (v == cur["_key"] and r["run_id"] < cur["run_id"]):
                    chosen[key] = dict(r, _key=v)
            ids = [b["run_id"] for b in chosen.values()]
            scores = self._pooled_scores(conn, ids)
            n_folds = self._counts(conn, FoldResult.run_id, ids)
            n_clips = self._counts(conn, Prediction.run_id, ids)
            tags = self._tags(conn, ids)
            fold_acc: dict[int, list[float]] = {rid: [] for rid in ids}
            if ids:
                for r in conn.execute(
                    select(Score.run_id, Score.value).where(
                        Score.run_id.in_(ids), Score.fold.is_not(None), Score.metric == "accuracy",
                        Score.value.is_not(None))
                ):
                    fold_acc[r.run_id].append(r.value)
        rows = []
        for b in chosen.values():
            rid = b["run_id"]
            accs = fold_acc[rid]
            mean = sum(accs) / len(accs) if accs else None
            std = (math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1
                   else (0.0 if accs else None))
            rows.append(
                {
                    "corpus": b["corpus"], "corpus_fingerprint": b["corpus_fingerprint"], "modality": b["modality"],
                    "model": b["model"], "version": b["version"], "run_id": rid, "profile": b["profile"],
                    "metric": metric, "value": b["value"],
                    "accuracy": scores[rid].get("accuracy"), "ci95": scores[rid].get("ci95"),
                    "macro_f1": scores[rid].get("macro_f1"), "uar": scores[rid].get("uar"),
                    "zeror_accuracy": scores[rid].get("zeror_accuracy"), "fold_mean": mean, "fold_std": std,
                    "n_folds": n_folds.get(rid, 0), "n_clips": n_clips.get(rid, 0),
                    "finished_at": _utc(b["finished_at"]), "config_hash": b["config_hash"],
                    "params": b["params"] or {}, "tags": tags[rid], "scores": scores[rid], "_key": b["_key"],
                    "_group": (b["corpus_id"], b["model_id"]),
                }
            )
        varying: dict[tuple[int, int], list[str]] = {}
        for group, all_params in candidates.items():
            keys = sorted({k for p in all_params for k in p})
            varying[group] = [k for k in keys if len({_json_dumps(p.get(k)) for p in all_params}) > 1]
        for d in rows:
            d["differs"] = {k: d["params"].get(k) for k in varying[d["_group"]]}
        rows.sort(key=lambda d: (d["corpus"], d["corpus_fingerprint"], -d["_key"], d["model"], d["version"]))
        for d in rows:
            del d["_key"], d["_group"]
        return rows

    def latest_run(
        self,
        model: str,
        version: int | None = None,
        *,
        corpus: str | None = None,
        finished_only: bool = True,
    ) -> dict[str, Any]:
        """:meth:`get_run` of ``model@version`` (``"name@3"`` is accepted as ``model``);
        without a version, the highest finished version (optionally on ``corpus``)."""
        if version is None and "@" in model:
            model, _, v = model.rpartition("@")
            try:
                version = int(v)
            except ValueError:
                raise RegistryError(f"bad model reference {model}@{v}", "write NAME@VERSION, e.g. fuse.svm_linear@3") from None
        with self._tx() as conn:
            if conn.execute(select(Model.id).where(Model.name == model)).first() is None:
                raise RegistryError(f"no model {model!r} in the registry {self.label}", "emokit runs lists the recorded models")
            q = (
                select(Run.id, Run.status, ModelVersion.version)
                .join(ModelVersion, ModelVersion.id == Run.model_version_id)
                .join(Model, Model.id == ModelVersion.model_id)
                .join(Corpus, Corpus.id == Run.corpus_id)
                .where(Model.name == model)
            )
            if corpus is not None:
                q = q.where(Corpus.name == corpus)
            if version is not None:
                q = q.where(ModelVersion.version == int(version))
            elif finished_only:
                q = q.where(Run.status == "finished")
            row = conn.execute(q.order_by(ModelVersion.version.desc()).limit(1)).first()
        on = f" on corpus {corpus!r}" if corpus else ""
        if row is None:
            if version is not None:
                raise RegistryError(f"no version {version} of model {model}{on}", f"emokit runs --model {model} lists its versions")
            raise RegistryError(f"model {model} has no finished run{on}", f"train one with: emokit run {model}")
        if finished_only and row.status != "finished":
            raise RegistryError(
                f"{model}@{row.version} (run {row.id}) is {row.status}, not finished",
                f"rerun it with: emokit run {model} (it resumes), or pick a finished version",
            )
        return self.get_run(row.id)

    # -- pretrained weights ---------------------------------------------------------------------
    def add_weights(self, name: str, path: str | os.PathLike[str], *, kind: str | None = None,
                    replace: bool = False) -> dict[str, Any]:
        """Register a local checkpoint under ``name`` with its SHA-256 (the file stays where it is)."""
        from ..cache import file_sha256

        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise RegistryError(f"{file}: no such checkpoint file", "give the path of a local .pth/.pt file")
        row = {"name": name, "path": str(file), "sha256": file_sha256(file), "size": file.stat().st_size,
               "kind": kind, "created_at": utcnow()}

        def work(conn: Connection) -> None:
            old = conn.execute(select(Weights.id, Weights.path).where(Weights.name == name)).first()
            if old is not None and not replace:
                raise RegistryError(f"weights {name!r} are already registered ({old.path})",
                                    "choose another name, or pass --replace")
            if old is not None:
                conn.execute(update(Weights).where(Weights.id == old.id).values(**row))
            else:
                conn.execute(insert(Weights).values(**row))

        self._write_retrying(work)
        return {k: v for k, v in row.items() if k != "created_at"}

    def list_weights(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(select(Weights.name, Weights.path, Weights.sha256, Weights.size, Weights.kind,
                                       Weights.created_at).order_by(Weights.name)).mappings().all()
        return [{**dict(r), "created_at": _utc(r["created_at"])} for r in rows]

    def resolve_weights(self, ref: str) -> dict[str, Any]:
        """``NAME`` (registered) or ``PATH`` -> ``{"name", "path", "sha256"}``, the file's
        SHA-256 checked against the registered one."""
        from ..cache import file_sha256
        from ..naming import closest

        with self._tx() as conn:
            row = conn.execute(select(Weights.name, Weights.path, Weights.sha256).where(Weights.name == ref)).first()
            names = [] if row else [n for n, in conn.execute(select(Weights.name))]
        if row is None:
            file = Path(ref).expanduser()
            if file.is_file():
                return {"name": None, "path": str(file.resolve()), "sha256": file_sha256(file)}
            suggestion = closest(ref, names)
            raise RegistryError(f"no weights named {ref!r} in {self.label}, and no such file",
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
        return {"name": row.name, "path": str(file), "sha256": row.sha256}
