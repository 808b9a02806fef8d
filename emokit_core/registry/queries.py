"""Reading the registry: runs, their predictions and artifacts, the leaderboard.

Every query returns the records of :mod:`~emokit_core.registry.records`. The leaderboard is
one ``select`` over the ``finished_runs`` view of the migrations, ranked in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.orm import aliased

from ..errors import RegistryError
from .artifacts import ArtifactStore
from .engine import Database
from .records import (
    ArtifactRecord,
    CorpusRecord,
    FoldRecord,
    LeaderboardRow,
    PredictionRecord,
    RunRecord,
    RunSummary,
    json_dumps,
    utc,
)
from .runs import run_row
from .schema import (
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
    finished_runs,
)

# metrics for which a smaller value is better (leaderboard ordering)
_LOWER_IS_BETTER_SUFFIXES = ("loss", "error", "ece", "brier")
# pooled metrics that the finished_runs view has as columns
_VIEW_METRICS = ("accuracy", "ci95", "macro_f1", "uar", "zeror_accuracy")

_SUMMARY_COLUMNS = (
    Run.id.label("run_id"), Model.name.label("model"), Model.modality, ModelVersion.version,
    ModelVersion.config_hash, Run.profile, Run.seed, Run.status, Run.started_at, Run.finished_at, Run.seconds,
    Run.host, Run.pid, Run.error,
    Corpus.id.label("corpus_id"), Corpus.name.label("corpus_name"), Corpus.fingerprint, Corpus.classes,
    Corpus.n_clips, Corpus.root, Corpus.reader, Corpus.reader_options,
)


def tag_condition(tag: str, run_id_column=Run.id):
    """WHERE clause for runs carrying the tag ``"key"`` (any value) or ``"key=value"``."""
    key, has_value, value = tag.partition("=")
    key = key.strip()
    if not key:
        raise RegistryError(f"bad tag filter {tag!r}", "write KEY or KEY=VALUE, e.g. --tag grid=fusion")
    cond = and_(RunTag.run_id == run_id_column, RunTag.key == key)
    if has_value:
        cond = and_(cond, RunTag.value == value)
    return select(RunTag.run_id).where(cond).exists()


def _corpus(row) -> CorpusRecord:
    return CorpusRecord(id=row["corpus_id"], name=row["corpus_name"], fingerprint=row["fingerprint"],
                        classes=list(row["classes"]), n_clips=row["n_clips"], root=row["root"], reader=row["reader"],
                        reader_options=row["reader_options"])


def _summary_fields(row, n_folds: int, scores: dict, tags: dict) -> dict[str, Any]:
    return dict(
        run_id=row["run_id"], model=row["model"], modality=row["modality"], version=row["version"],
        config_hash=row["config_hash"], profile=row["profile"], seed=row["seed"], corpus=_corpus(row),
        status=row["status"], started_at=utc(row["started_at"]), finished_at=utc(row["finished_at"]),
        seconds=row["seconds"], host=row["host"], pid=row["pid"], error=row["error"], n_folds=n_folds,
        scores=scores, tags=tags,
    )


def _summary_select():
    return (
        select(*_SUMMARY_COLUMNS)
        .join(ModelVersion, ModelVersion.id == Run.model_version_id)
        .join(Model, Model.id == ModelVersion.model_id)
        .join(Corpus, Corpus.id == Run.corpus_id)
    )


def _pooled_scores(conn: Connection, run_ids: Sequence[int]) -> dict[int, dict[str, float | None]]:
    out: dict[int, dict[str, float | None]] = {rid: {} for rid in run_ids}
    if run_ids:
        for r in conn.execute(
            select(Score.run_id, Score.metric, Score.value).where(Score.run_id.in_(list(run_ids)), Score.fold.is_(None))
        ):
            out[r.run_id][r.metric] = r.value
    return out


def _fold_counts(conn: Connection, run_ids: Sequence[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    return dict(conn.execute(
        select(FoldResult.run_id, func.count()).where(FoldResult.run_id.in_(list(run_ids))).group_by(FoldResult.run_id)
    ).all())


def _tags(conn: Connection, run_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {rid: {} for rid in run_ids}
    if run_ids:
        for r in conn.execute(
            select(RunTag.run_id, RunTag.key, RunTag.value).where(RunTag.run_id.in_(list(run_ids))).order_by(RunTag.key)
        ):
            out[r.run_id][r.key] = r.value
    return out


def _fold_std(count: int | None, sum_sq: float | None) -> float | None:
    """Sample standard deviation from the view's count and sum of squared deviations."""
    if not count:
        return None
    return math.sqrt(max(sum_sq or 0.0, 0.0) / (count - 1)) if count > 1 else 0.0


class RunQueries:
    db: Database
    artifacts: ArtifactStore

    def list_runs(
        self,
        *,
        corpus: str | None = None,
        model: str | None = None,
        status: str | Iterable[str] | None = None,
        limit: int | None = None,
        tag: str | None = None,
    ) -> list[RunSummary]:
        """Runs, newest first. ``tag``: only runs carrying the tag ``"key"`` (any value) or ``"key=value"``."""
        q = _summary_select()
        if corpus is not None:
            q = q.where(Corpus.name == corpus)
        if model is not None:
            q = q.where(Model.name == model)
        if status is not None:
            q = q.where(Run.status.in_([status] if isinstance(status, str) else list(status)))
        if tag is not None:
            q = q.where(tag_condition(tag))
        q = q.order_by(Run.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        with self.db.tx() as conn:
            rows = conn.execute(q).mappings().all()
            ids = [r["run_id"] for r in rows]
            scores = _pooled_scores(conn, ids)
            n_folds = _fold_counts(conn, ids)
            tags = _tags(conn, ids)
        return [RunSummary(**_summary_fields(r, n_folds.get(r["run_id"], 0), scores[r["run_id"]], tags[r["run_id"]]))
                for r in rows]

    def get_run(self, run_id: int) -> RunRecord:
        """Everything about one run; an unknown id is a RegistryError."""
        run_id = int(run_id)
        with self.db.tx() as conn:
            row = conn.execute(
                _summary_select().add_columns(
                    Run.model_version_id, ModelVersion.params, Run.folds, Run.library_versions, Run.weights, Run.command,
                ).where(Run.id == run_id)
            ).mappings().first()
            if row is None:
                raise RegistryError(f"no run {run_id} in the registry {self.db.label}", "emokit runs lists the recorded runs")
            inputs = dict(conn.execute(
                select(RunInput.modality, RunInput.input_run_id).where(RunInput.run_id == run_id)).all())
            folds = conn.execute(
                select(FoldResult).where(FoldResult.run_id == run_id).order_by(FoldResult.fold)
            ).mappings().all()
            fold_scores: dict[int | None, dict[str, float | None]] = {}
            for s in conn.execute(select(Score.fold, Score.metric, Score.value).where(Score.run_id == run_id)):
                fold_scores.setdefault(s.fold, {})[s.metric] = s.value
            artifacts = conn.execute(
                select(RunArtifact.fold, RunArtifact.name, RunArtifact.sha256, Artifact.size)
                .join(Artifact, Artifact.sha256 == RunArtifact.sha256)
                .where(RunArtifact.run_id == run_id)
                .order_by(RunArtifact.fold, RunArtifact.name)
            ).all()
            n_predictions = conn.execute(
                select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id)).scalar()
            tags = _tags(conn, [run_id])[run_id]
        held_out = row["folds"]
        return RunRecord(
            **_summary_fields(row, len(folds), fold_scores.get(None, {}), tags),
            model_version_id=row["model_version_id"], params=row["params"], folds=held_out,
            library_versions=row["library_versions"], weights=row["weights"], inputs=inputs,
            command=row["command"],
            fold_results=[
                FoldRecord(fold=f["fold"], held_out=held_out[f["fold"]] if 0 <= f["fold"] < len(held_out) else None,
                           n_train=f["n_train"], n_test=f["n_test"], seconds=f["seconds"],
                           created_at=utc(f["created_at"]), scores=fold_scores.get(f["fold"], {}))
                for f in folds
            ],
            n_predictions=n_predictions,
            artifacts=[ArtifactRecord(fold=a.fold, name=a.name, sha256=a.sha256, size=a.size,
                                      path=str(self.artifacts.path(a.sha256))) for a in artifacts],
        )

    def find_run(self, ref: int | str) -> RunRecord:
        """A run by id (``12``), or by model reference: ``speech.mfcc_svm@3``, or a model name
        (its newest finished version)."""
        text = str(ref).strip()
        return self.get_run(int(text)) if text.isdigit() else self.latest_run(text)

    def predictions(self, run_id: int) -> list[PredictionRecord]:
        """The run's out-of-fold predictions ordered by clip id."""
        with self.db.tx() as conn:
            run_row(self.db, conn, run_id)
            rows = conn.execute(
                select(Prediction.clip_id, Prediction.actor, Prediction.fold, Prediction.label, Prediction.pred,
                       Prediction.probs)
                .where(Prediction.run_id == int(run_id))
                .order_by(Prediction.clip_id)
            ).all()
        return [PredictionRecord(*r) for r in rows]

    def fold_artifact(self, run_id: int, fold: int | None, name: str) -> bytes:
        """The verified bytes of a named artifact of a run's fold (``fold=None``: run-level)."""
        run_id = int(run_id)
        cond = RunArtifact.fold.is_(None) if fold is None else RunArtifact.fold == int(fold)
        with self.db.tx() as conn:
            run_row(self.db, conn, run_id)
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
    ) -> list[LeaderboardRow]:
        """The best finished run per (corpus, model) by the pooled ``metric`` (ties: the earlier
        run), as the ``leaderboard`` view ranks by accuracy; with ``all_versions`` every finished
        run that has the metric. ``tag``: only runs tagged ``"key"`` or ``"key=value"``.
        Sorted by corpus, then best first."""
        if higher_is_better is None:
            higher_is_better = not metric.lower().endswith(_LOWER_IS_BETTER_SUFFIXES)
        f = finished_runs.c
        q = select(finished_runs)
        if metric in _VIEW_METRICS:
            value = f[metric]
        else:
            score = aliased(Score)
            q = q.join(score, and_(score.run_id == f.run_id, score.fold.is_(None), score.metric == metric))
            value = score.value
        best_first = value.desc() if higher_is_better else value.asc()
        rank = func.row_number().over(partition_by=(f.corpus_id, f.model_id), order_by=(best_first, f.run_id.asc()))
        q = q.add_columns(value.label("value"), rank.label("rank")).where(value.is_not(None))
        if corpus is not None:
            q = q.where(f.corpus == corpus)
        if modality is not None:
            q = q.where(f.modality == modality)
        if tag is not None:
            q = q.where(tag_condition(tag, f.run_id))
        q = q.order_by(f.corpus, f.corpus_fingerprint, best_first, f.model, f.version)
        with self.db.tx() as conn:
            candidates = conn.execute(q).mappings().all()
            shown = [r for r in candidates if all_versions or r["rank"] == 1]
            ids = [r["run_id"] for r in shown]
            scores = _pooled_scores(conn, ids)
            tags = _tags(conn, ids)
        differing: dict[tuple[int, int], list[str]] = {}
        by_group: dict[tuple[int, int], list[dict]] = {}
        for r in candidates:  # the parameters of every finished version that passes the filters
            by_group.setdefault((r["corpus_id"], r["model_id"]), []).append(r["params"] or {})
        for group, all_params in by_group.items():
            keys = sorted({k for p in all_params for k in p})
            differing[group] = [k for k in keys if len({json_dumps(p.get(k)) for p in all_params}) > 1]
        return [
            LeaderboardRow(
                corpus=r["corpus"], corpus_fingerprint=r["corpus_fingerprint"], modality=r["modality"],
                model=r["model"], version=r["version"], run_id=r["run_id"], profile=r["profile"], metric=metric,
                value=r["value"], accuracy=r["accuracy"], ci95=r["ci95"], macro_f1=r["macro_f1"], uar=r["uar"],
                zeror_accuracy=r["zeror_accuracy"], fold_mean=r["fold_mean"],
                fold_std=_fold_std(r["fold_count"], r["fold_sum_sq"]), n_folds=r["n_folds"], n_clips=r["n_clips"],
                finished_at=utc(r["finished_at"]), config_hash=r["config_hash"], params=r["params"] or {},
                tags=tags[r["run_id"]], scores=scores[r["run_id"]],
                differs={k: (r["params"] or {}).get(k) for k in differing[(r["corpus_id"], r["model_id"])]},
            )
            for r in shown
        ]

    def latest_run(
        self,
        model: str,
        version: int | None = None,
        *,
        corpus: str | None = None,
        finished_only: bool = True,
    ) -> RunRecord:
        """:meth:`get_run` of ``model@version`` (``"name@3"`` is accepted as ``model``);
        without a version, the highest finished version (optionally on ``corpus``)."""
        if version is None and "@" in model:
            model, _, v = model.rpartition("@")
            try:
                version = int(v)
            except ValueError:
                raise RegistryError(f"bad model reference {model}@{v}", "write NAME@VERSION, e.g. fuse.svm_linear@3") from None
        with self.db.tx() as conn:
            if conn.execute(select(Model.id).where(Model.name == model)).first() is None:
                raise RegistryError(f"no model {model!r} in the registry {self.db.label}",
                                    "emokit runs lists the recorded models")
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
