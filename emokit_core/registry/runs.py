"""The run lifecycle: register a model version and its run (or resume an unfinished one),
record each fold in one transaction, finish or fail the run, tag it.

Resume is idempotent on (run, fold): a resumed run skips the folds already recorded, and a
fold recorded twice is refused. A ``running`` run whose process is alive on this host (or
that runs on another host, where its liveness cannot be seen) is never claimed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import RegistryError
from .artifacts import ArtifactStore
from .engine import Database
from .records import RunInfo, number, plain
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
    utcnow,
)


def _norm_folds(folds: Any) -> list[list[str]]:
    return [[str(a) for a in fold] for fold in (folds or [])]


def _norm_inputs(inputs: Mapping[str, int] | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in (inputs or {}).items()}


def pid_alive(pid: int | None) -> bool:
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


def run_row(db: Database, conn: Connection, run_id: int):
    """(id, status, folds) of a run; an unknown id is a RegistryError."""
    row = conn.execute(select(Run.id, Run.status, Run.folds).where(Run.id == int(run_id))).first()
    if row is None:
        raise RegistryError(f"no run {run_id} in the registry {db.label}", "emokit runs lists the recorded runs")
    return row


class RunLifecycle:
    db: Database
    artifacts: ArtifactStore
    hostname: str

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
        folds_plain = plain([list(f) for f in folds])
        folds_norm = _norm_folds(folds)
        inputs_norm = _norm_inputs(inputs)
        weights_plain = plain(weights) if weights is not None else None
        params_plain = plain(dict(params))
        libs_plain = plain(dict(library_versions))
        pid = os.getpid()
        now = utcnow()

        def register(conn: Connection) -> RunInfo:
            if conn.execute(select(Corpus.id).where(Corpus.id == corpus_id)).first() is None:
                raise RegistryError(f"no corpus with id {corpus_id} in {self.db.label}", "register it with upsert_corpus first")
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
                    host=self.hostname,
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

        return self.db.write(register)

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
            if row.status == "running" and (row.host != self.hostname or pid_alive(row.pid)):
                continue  # someone's live run (or one on another machine we cannot check)
            claimed = conn.execute(
                update(Run)
                .where(Run.id == row.id, Run.status == row.status, Run.pid == row.pid, Run.host == row.host)
                .values(status="running", pid=pid, host=self.hostname, command=command or "", error=None, finished_at=None)
            ).rowcount
            if claimed != 1:
                continue  # another process got there first
            done = frozenset(
                conn.execute(select(FoldResult.fold).where(FoldResult.run_id == row.id)).scalars().all()
            )
            return RunInfo(row.id, pipeline, row.version, True, done, row.mv_id, row.corpus_id)
        return None

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
        with self.db.tx() as conn:
            run = run_row(self.db, conn, run_id)
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
                    "probs": [number(v) for v in plain(probs)],
                }
            )
        score_rows = [{"run_id": run_id, "fold": fold, "metric": str(k), "value": number(v)} for k, v in scores.items()]
        # 1) bytes into the content-addressed store (a failure here leaves the DB untouched)
        stored = {str(name): (self.artifacts.put(data), len(data)) for name, data in (artifacts or {}).items()}
        now = utcnow()

        def record(conn: Connection) -> None:
            self._check_writable(run_row(self.db, conn, run_id), fold)
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

        self.db.write(record)

    def record_artifacts(self, run_id: int, artifacts: Mapping[str, bytes], *, fold: int | None = None) -> dict[str, str]:
        """Attach named artifacts to a run (``fold=None``: run-level, e.g. a model refit on all clips)."""
        run_id = int(run_id)
        with self.db.tx() as conn:
            run_row(self.db, conn, run_id)
        stored = {str(name): (self.artifacts.put(data), len(data)) for name, data in artifacts.items()}

        def attach(conn: Connection) -> None:
            run_row(self.db, conn, run_id)
            cond = RunArtifact.fold.is_(None) if fold is None else RunArtifact.fold == int(fold)
            conn.execute(delete(RunArtifact).where(RunArtifact.run_id == run_id, cond, RunArtifact.name.in_(list(stored))))
            self._link_artifacts(conn, run_id, fold, stored, utcnow())

        self.db.write(attach)
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
        if self.db.dialect in ("sqlite", "postgresql"):
            if self.db.dialect == "sqlite":
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
        with self.db.tx() as conn:
            run_row(self.db, conn, run_id)
            return set(conn.execute(select(FoldResult.fold).where(FoldResult.run_id == int(run_id))).scalars())

    def finish_run(self, run_id: int, *, scores: Mapping[str, float], seconds: float) -> None:
        """Store the pooled scores (fold NULL) and mark the run finished. Every fold must be recorded."""
        run_id = int(run_id)

        def finish(conn: Connection) -> None:
            run = run_row(self.db, conn, run_id)
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
                    [{"run_id": run_id, "fold": None, "metric": str(k), "value": number(v)} for k, v in scores.items()],
                )
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status="finished", finished_at=utcnow(), seconds=float(seconds), error=None)
            )

        self.db.write(finish)

    def fail_run(self, run_id: int, error: str, status: str = "failed") -> None:
        """Mark an unfinished run failed (or ``interrupted``); a finished run is left as it is."""
        if status not in ("failed", "interrupted"):
            raise RegistryError(f"fail_run status must be 'failed' or 'interrupted', not {status!r}", None)
        with self.db.tx(write=True) as conn:
            run_row(self.db, conn, run_id)
            conn.execute(
                update(Run)
                .where(Run.id == int(run_id), Run.status != "finished")
                .values(status=status, error=str(error), finished_at=utcnow())
            )

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

        def tag(conn: Connection) -> None:
            run_row(self.db, conn, run_id)
            conn.execute(delete(RunTag).where(RunTag.run_id == run_id, RunTag.key.in_([r["key"] for r in rows])))
            conn.execute(insert(RunTag), rows)

        self.db.write(tag)

