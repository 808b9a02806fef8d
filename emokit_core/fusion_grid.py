"""The late-fusion grid on recorded out-of-fold posteriors.

The grid is what the fusion pipelines declare (``PipelineSpec.grid``; emokit's own give the
paper's Table A3), so a plugin's fuser joins it by declaring one.  Every grid point is a fuser cross-validated by :meth:`Runner.fuse`, the code path of a fuser in
``emokit run ... fuse.X``: a registry run on the input runs' folds and clips, its inputs in
``run_inputs``.  No modality is retrained and no media is read.  Each run of a grid is tagged
``fuse_grid=<grid id>``, and the best one also ``fuse_grid_best=true``.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .contracts import FACE, FUSION, SPEECH, Clip, Corpus
from .errors import EmokitError
from .progress import Reporter
from .runner import PipelineRun, Runner
from .stats import check_same_protocol


@dataclass(frozen=True)
class GridPoint:
    """One fuser with the parameters the grid sets (the others keep their defaults)."""

    pipeline: str
    params: Mapping[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())


def _short(value: Any) -> str:
    """Powers of ten as the paper writes them (1e-4, 1e6); other values as they are."""
    import math

    if isinstance(value, float) and value > 0 and math.log10(value).is_integer() and not 1e-2 <= value < 1e4:
        return f"1e{int(math.log10(value))}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def declared_grid(host: Any) -> list[GridPoint]:
    """Every combination of the values each fusion pipeline of ``host`` declares in its ``grid``,
    the pipelines in the order they were registered."""
    points = []
    for name, spec in host.pipelines.items():
        if spec.modality == FUSION and spec.grid:
            keys = list(spec.grid)
            points += [GridPoint(name, dict(zip(keys, values)))
                       for values in itertools.product(*(spec.grid[k] for k in keys))]
    return points


def _cannot_fit(fuser: Any, modalities: Sequence[str], n_train: int, n_classes: int) -> str | None:
    """Why ``fuser`` cannot be fitted on ``n_train`` clips (k-NN asked for more neighbours than
    there are clips, say), found by fitting it on as many random posteriors and predicting them;
    None if it can."""
    import numpy as np

    rng = np.random.default_rng(0)
    posteriors = {m: rng.dirichlet(np.ones(n_classes), n_train) for m in modalities}
    try:
        fuser.fit(posteriors, np.arange(n_train) % n_classes).predict_proba(posteriors)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass
class GridEntry:
    point: GridPoint
    run: PipelineRun | None = None
    skipped: str | None = None  # why the point does not apply to these runs
    best: bool = False

    def to_dict(self) -> dict[str, Any]:
        pooled = self.run.pooled if self.run else {}
        return {"pipeline": self.point.pipeline, "params": dict(self.point.params),
                "run_id": self.run.run_id if self.run else None, "version": self.run.version if self.run else None,
                "accuracy": pooled.get("accuracy"), "ci95": pooled.get("ci95"), "macro_f1": pooled.get("macro_f1"),
                "n": pooled.get("n"), "skipped": self.skipped, "best": self.best}


@dataclass
class GridOutcome:
    grid_id: str
    inputs: list[dict[str, Any]]  # the input runs: run_id, model, version, ref, modality, accuracy
    corpus: str
    n_clips: int
    n_folds: int
    entries: list[GridEntry] = field(default_factory=list)

    @property
    def best(self) -> GridEntry | None:
        return next((e for e in self.entries if e.best), None)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"grid_id": self.grid_id, "corpus": self.corpus, "n_clips": self.n_clips, "n_folds": self.n_folds,
                "inputs": self.inputs, "points": [e.to_dict() for e in self.entries],
                "best": best.to_dict() if best else None}


def fusable_inputs(registry: Any, refs: Sequence[str | int]) -> tuple[dict[str, int], Corpus, int, list[dict]]:
    """Check that ``refs`` are finished modality runs of distinct pipelines on the same corpus,
    folds and clips; return ({pipeline: run id}, the corpus as recorded, its registry id, the runs)."""
    if len(refs) < 2:
        raise EmokitError("fusion needs two or more modality runs", "e.g. emokit fuse-grid 3 4 "
                          "(a speech and a face run; see emokit runs)")
    runs = [registry.find_run(ref) for ref in refs]
    for run in runs:
        name = f"run {run.run_id} ({run.ref})"
        if run.modality not in (SPEECH, FACE):
            raise EmokitError(f"{name} is a {run.modality} run; fusion takes modality runs (speech.*, face.*)",
                              f"give its input runs instead: {', '.join(map(str, run.inputs.values())) or '-'}")
        if run.status != "finished":
            raise EmokitError(f"{name} is {run.status}, not finished",
                              f"finish it first (emokit run {run.model} resumes it), or pick a finished run")
    first = runs[0]
    seen: dict[str, int] = {}
    for run in runs:
        if run.model in seen:
            raise EmokitError(f"runs {seen[run.model]} and {run.run_id} are both {run.model}",
                              "fuse runs of different pipelines (e.g. one speech and one face run)")
        seen[run.model] = run.run_id
    clip_sets = {run.run_id: {p.clip_id: p for p in registry.predictions(run.run_id)} for run in runs}
    for run in runs[1:]:
        pair = f"runs {first.run_id} and {run.run_id}"
        a, b = first.corpus, run.corpus
        if a.id != b.id:
            raise EmokitError(f"{pair} are on different corpora ({a.name} {a.fingerprint[:12]}, "
                              f"{b.name} {b.fingerprint[:12]})", "fuse runs made on the same corpus")
        # the clips, labels and held-out actors of each clip, by the rule paired tests use
        check_same_protocol(first, clip_sets[first.run_id], run, clip_sets[run.run_id], error=EmokitError,
                            hint="run both pipelines in one `emokit run` (same --folds), so that they hold out "
                                 "and skip the same clips")
    classes = tuple(first.corpus.classes)
    clips = [Clip(id=p.clip_id, actor=str(p.actor), label=classes[p.label])
             for p in clip_sets[first.run_id].values()]
    corpus = Corpus(name=first.corpus.name, root=Path(first.corpus.root or "."), clips=clips,
                    classes=classes, folds=[[str(a) for a in f] for f in first.folds])
    return {run.model: run.run_id for run in runs}, corpus, first.corpus.id, runs


class _PointReporter(Reporter):
    """Passes the runner's messages on; the grid draws one progress bar for all its points."""

    def __init__(self, outer: Reporter):
        self.outer = outer

    def warn(self, message: str) -> None:
        self.outer.warn(message)

    def info(self, message: str) -> None:
        self.outer.info(message)


def _rank_key(entry: GridEntry, index: int) -> tuple[float, float, int]:
    # Highest pooled accuracy, then macro-F1; on a full tie the point listed first wins.
    pooled = entry.run.pooled if entry.run else {}
    return (pooled.get("accuracy", float("-inf")), pooled.get("macro_f1", float("-inf")), -index)


def run_grid(host: Any, registry: Any, refs: Sequence[str | int], *, points: Sequence[GridPoint] | None = None,
             seed: int = 0, reporter: Reporter | None = None, command: str = "",
             executor: Any = None) -> GridOutcome:
    """Cross-validate every grid point on the recorded posteriors of ``refs``, register and tag the
    runs; ``executor`` runs each point's folds (default: this process)."""
    from .cache import FeatureCache

    reporter = reporter or Reporter()
    points = list(points if points is not None else declared_grid(host))
    if not points:
        raise EmokitError("no fusion pipeline declares a grid", "pass points=[GridPoint(...)], or install a fuser "
                                                                "plugin that declares one")
    for point in points:  # unknown fusers or parameters fail before any run starts
        host.pipeline(point.pipeline).resolve(None, point.params)
    inputs, corpus, corpus_id, runs = fusable_inputs(registry, refs)
    runner = Runner(host, registry, FeatureCache(), _PointReporter(reporter), executor=executor)
    outcome = GridOutcome(
        grid_id=f"{'+'.join(str(r.run_id) for r in runs)}-{uuid.uuid4().hex[:8]}",
        inputs=[{"run_id": r.run_id, "model": r.model, "version": r.version, "ref": r.ref,
                 "modality": r.modality, "accuracy": r.scores.get("accuracy")} for r in runs],
        corpus=corpus.name, n_clips=len(corpus.clips), n_folds=len(corpus.folds))
    smallest_training = min(sum(c.actor not in set(fold) for c in corpus.clips) for fold in corpus.folds)
    with reporter.task(f"fusion grid {outcome.grid_id}", len(points)) as advance:
        for point in points:
            entry = GridEntry(point)
            outcome.entries.append(entry)
            spec = host.pipeline(point.pipeline)
            why = _cannot_fit(spec.create(spec.resolve(None, point.params)[1]), list(inputs), smallest_training,
                              len(corpus.classes))
            if why:
                entry.skipped = f"cannot be fitted on the {smallest_training} training clips of the smallest fold ({why})"
                reporter.warn(f"{point.pipeline} {point.label} skipped: {entry.skipped}")
            else:
                entry.run = runner.fuse(point.pipeline, inputs, corpus, corpus_id, overrides=point.params, seed=seed,
                                        command=command)
                # Tagged as it finishes, so an interrupted grid still shows which runs belong to it.
                registry.set_tags(entry.run.run_id, {"fuse_grid": outcome.grid_id})
            advance()
    finished = [(i, e) for i, e in enumerate(outcome.entries) if e.run is not None]
    if not finished:
        raise EmokitError(f"no point of fusion grid {outcome.grid_id} applies to {len(corpus.clips)} clips",
                          "see the warnings above")
    best = max(finished, key=lambda ie: _rank_key(ie[1], ie[0]))[1]
    best.best = True
    registry.set_tags(best.run.run_id, {"fuse_grid_best": "true"})
    return outcome
