"""The subject-wise cross-validation loop.

Features are extracted once per clip (one decode for all pipelines) into the feature cache
(:mod:`emokit_core.extraction`).  Every (modality pipeline, fold) not yet recorded becomes a
:class:`~emokit_core.folds.FoldTask`; an executor runs them (:mod:`emokit_core.executors`) and
each fold is committed to the registry as it finishes: scores, per-clip posteriors, the fitted
model.  Fusers are then trained and tested on those out-of-fold posteriors with the same folds,
read back from the registry so that a resumed run fuses exactly what was recorded.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Mapping, Sequence

import numpy as np

from . import __version__
from .cache import FeatureCache
from .contracts import FUSION, Clip, Corpus
from .errors import EmokitError
from .executors import FoldError, LocalExecutor
from .extraction import extract_corpus
from .folds import CachedFeatures, ClipInputs, FoldResult, FoldTask, PosteriorInputs, check_fold, training_device
from .metrics import scores
from .plugins import PluginHost
from .progress import Reporter, reporting
from .specs import PipelineSpec, Recipe, WeightsRef, is_random_init

LIBRARIES = ("numpy", "scikit-learn", "scipy", "torch", "torchaudio", "torchvision", "av", "soundfile",
             "opencv-contrib-python-headless", "SQLAlchemy")


@dataclass
class PipelineRun:
    pipeline: str
    modality: str
    run_id: int
    version: int
    profile: str
    params: dict[str, Any]
    resumed: bool
    folds_done_before: list[int]
    fold_scores: list[dict[str, float]] = field(default_factory=list)
    pooled: dict[str, float] = field(default_factory=dict)
    zeror: float = float("nan")
    seconds: float = 0.0


@dataclass
class RunOutcome:
    corpus: Corpus
    runs: list[PipelineRun]
    skipped_clips: dict[str, str]
    cache_hits: int
    cache_misses: int
    extraction_seconds: float = 0.0
    cv_seconds: float = 0.0  # the modality pipelines' folds, which may run side by side


@dataclass
class _Job:
    """One pipeline's run while its folds are out: the registry's run and the folds to do."""

    spec: PipelineSpec
    info: Any
    profile_name: str
    params: dict[str, Any]
    tasks: list[FoldTask]
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None


def library_versions() -> dict[str, str]:
    versions = {"emokit": __version__, "python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Runner:
    """``workers``: processes for decoding and, through the default :class:`LocalExecutor`, for
    folds that train a network on the CPU.  ``executor`` runs the fold tasks."""

    def __init__(self, host: PluginHost, registry: Any, cache: FeatureCache, reporter: Reporter | None = None,
                 workers: int = 1, executor: Any = None):
        self.host = host
        self.registry = registry
        self.cache = cache
        self.reporter = reporter or Reporter()
        self.workers = max(1, workers)
        self.executor = executor or LocalExecutor(self.workers)

    # -- planning --------------------------------------------------------------------------
    @staticmethod
    def trains_on_gpu(device: str) -> bool:
        """Whether a pipeline's ``device`` parameter (auto, cpu, cuda, ...) lands on a GPU here."""
        from .training import pick_device

        return pick_device(device).startswith("cuda")

    def plan(self, names: Sequence[str], corpus: Corpus, profile: str | None,
             overrides: Mapping[str, Mapping[str, Any]]) -> list[tuple[PipelineSpec, str, dict[str, Any]]]:
        if not names:
            raise EmokitError("no pipeline given", "e.g. emokit run speech.mfcc_svm face.pixels_vote fuse.svm_linear")
        if len(set(names)) != len(names):
            raise EmokitError("a pipeline is named twice", "name each pipeline once")
        planned = []
        for name in names:
            spec = self.host.pipeline(name)
            profile_name, why = spec.choose_profile(profile, overrides.get(name, {}), on_gpu=self.trains_on_gpu)
            if why:
                self.reporter.info(why)
            profile_name, params = spec.resolve(profile_name, overrides.get(name, {}))
            caveat = spec.caveat(profile_name, params)
            if caveat:
                self.reporter.warn(caveat)
            if "device" in params:
                from .training import check_device

                check_device(str(params["device"]))
            planned.append((spec, profile_name, params))
        for name in overrides:
            if name not in names:
                raise EmokitError(f"parameters given for {name}, which is not in this run",
                                  f"pipelines in this run: {', '.join(names)}")
        modal = [p for p in planned if p[0].modality != FUSION]
        fusers = [p for p in planned if p[0].modality == FUSION]
        if not modal:
            raise EmokitError("a fuser needs modality pipelines to fuse", "add e.g. speech.mfcc_svm face.pixels_vote")
        if fusers and len(modal) < 2:
            raise EmokitError(f"{fusers[0][0].name} fuses two or more modality pipelines; this run has one",
                              "add a face (or speech) pipeline, or drop the fuser")
        missing = {p[0].modality for p in modal} - corpus.modalities
        if missing:
            offenders = [p[0].name for p in modal if p[0].modality in missing]
            raise EmokitError(f"corpus {corpus.name} at {corpus.root} has no {'/'.join(sorted(missing))} media, "
                              f"so {', '.join(offenders)} cannot run on it",
                              "drop those pipelines, or use a corpus with audio-visual files")
        return modal + fusers

    # -- the run ------------------------------------------------------------------------------
    def run(self, names: Sequence[str], corpus: Corpus, *, profile: str | None = None,
            overrides: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
            resume: bool = True, command: str = "") -> RunOutcome:
        planned = self.plan(names, corpus, profile, overrides or {})
        weights = {spec.name: self.resolve_weights(spec, params) for spec, _, params in planned}
        recipes = {spec.name: spec.create({**params, **weights[spec.name]})
                   for spec, _, params in planned if spec.modality != FUSION}
        for name, recipe in recipes.items():
            if not isinstance(recipe, Recipe):
                raise EmokitError(f"pipeline {name} built {type(recipe).__name__}, not a Recipe",
                                  "its plugin breaks the pipeline contract; report it to its authors")
        extraction_started = time.perf_counter()
        features, skipped = self.extract(corpus, recipes)
        extraction_seconds = time.perf_counter() - extraction_started
        for clip_id, why in skipped.items():
            self.reporter.warn(f"skipped clip {clip_id}: {why}")
        clips = [c for c in corpus.clips if c.id not in skipped]
        if not clips:
            raise EmokitError(f"no clip of {corpus.root} could be used", "see the warnings above")
        corpus_id = self.registry.upsert_corpus(name=corpus.name, fingerprint=corpus.fingerprint(),
                                                classes=list(corpus.classes), n_clips=len(corpus.clips),
                                                root=str(corpus.root), reader=corpus.reader,
                                                reader_options=corpus.reader_options)
        jobs = [self._modality_job(spec, profile_name, params, weights[spec.name], recipes[spec.name],
                                   features.get(spec.name), clips, corpus, corpus_id, seed, resume, command)
                for spec, profile_name, params in planned if spec.modality != FUSION]
        cv_started = time.perf_counter()
        runs = self._cross_validate(jobs, corpus)
        cv_seconds = time.perf_counter() - cv_started
        inputs = {r.pipeline: r.run_id for r in runs}
        for spec, profile_name, params in planned:
            if spec.modality == FUSION:
                runs += self._cross_validate(
                    [self._fuser_job(spec, profile_name, params, inputs, corpus, corpus_id, seed, resume, command)], corpus)
        return RunOutcome(corpus, runs, skipped, self.cache.hits, self.cache.misses, extraction_seconds, cv_seconds)

    def resolve_weights(self, spec: PipelineSpec, params: Mapping[str, Any]) -> dict[str, WeightsRef | None]:
        """Weights parameters -> checked :class:`WeightsRef` (or ``None``: random initialisation)."""
        resolved: dict[str, WeightsRef | None] = {}
        for key, param in spec.params.items():
            if not param.weights:
                continue
            ref = params.get(key)
            if is_random_init(ref):
                resolved[key] = None
                self.reporter.warn(f"{spec.name}: no pretrained weights ({key}=none), so training starts from "
                                   f"random initialisation; pass -p {spec.name}.{key}=NAME|PATH to start from a "
                                   f"checkpoint")
            else:
                found = self.registry.resolve_weights(str(ref), self.host.weights)
                if (found.provenance or {}).get("packaged"):
                    self.reporter.info(f"{spec.name}: {key}={found.name}, {found.provenance['source']}")
                resolved[key] = WeightsRef(path=found.path, sha256=found.sha256, name=found.name)
        return resolved

    def extract(self, corpus: Corpus, recipes: Mapping[str, Recipe]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """Fill the cache for every (clip, pipeline); return cache keys per pipeline and skipped clips."""
        return extract_corpus(corpus, recipes, self.cache, self.reporter, self.workers)

    def _start(self, spec: PipelineSpec, profile_name: str, params: dict[str, Any], corpus: Corpus, corpus_id: int,
               seed: int, resume: bool, command: str, inputs: dict[str, int] | None = None,
               weights: Mapping[str, WeightsRef | None] | None = None):
        # The config hash follows the weights' content, not the name they were given.
        hashed = {**params, **{k: (w.sha256 if w else None) for k, w in (weights or {}).items()}}
        recorded = ({k: (w.info() if w else {"init": "random"}) for k, w in weights.items()} if weights else None)
        info = self.registry.start_run(
            pipeline=spec.name, modality=spec.modality, params=params, config_hash=spec.config_hash(hashed),
            profile=profile_name, seed=seed, corpus_id=corpus_id, folds=corpus.folds,
            library_versions=library_versions(), weights=recorded, inputs=inputs, command=command, resume=resume)
        if info.resumed:
            self.reporter.info(f"resuming {spec.name} run {info.run_id} (version {info.version}); "
                               f"folds already done: {sorted(info.finished_folds) or 'none'}")
        return info

    def _tasks(self, spec: PipelineSpec, info: Any, corpus: Corpus, clips: Sequence[Clip], y: np.ndarray,
               model: Any, inputs: Any, seed: int) -> list[FoldTask]:
        """The folds of a run not yet recorded, one task each."""
        actors = np.array([c.actor for c in clips])
        owner = self.host.owner("pipeline", spec.name)
        device = training_device(model)
        return [FoldTask(pipeline=spec.name, fold=k, model=model, inputs=inputs, labels=y, actors=actors,
                         clip_ids=[c.id for c in clips], train=np.flatnonzero(~held_out),
                         test=np.flatnonzero(held_out), n_classes=len(corpus.classes), seed=seed,
                         owner=owner.source if owner else "its plugin", device=device)
                for k in range(len(corpus.folds)) if k not in info.finished_folds
                for held_out in [np.isin(actors, corpus.folds[k])]]

    def _modality_job(self, spec, profile_name, params, weights, recipe: Recipe, keys: Mapping[str, str] | None, clips,
                      corpus, corpus_id, seed, resume, command) -> _Job:
        started = time.perf_counter()
        info = self._start(spec, profile_name, params, corpus, corpus_id, seed, resume, command, weights=weights)
        class_index = {c: i for i, c in enumerate(corpus.classes)}
        y = np.array([class_index[c.label] for c in clips])
        # A model without an extractor sees the clips themselves.
        inputs = (ClipInputs(tuple(clips)) if keys is None
                  else CachedFeatures(str(self.cache.root), tuple(keys[c.id] for c in clips)))
        tasks = self._tasks(spec, info, corpus, clips, y, recipe.model, inputs, seed)
        return _Job(spec, info, profile_name, params, tasks, started)

    def fuse(self, name: str, inputs: Mapping[str, int], corpus: Corpus, corpus_id: int, *,
             profile: str | None = None, overrides: Mapping[str, Any] | None = None, seed: int = 0,
             resume: bool = True, command: str = "") -> PipelineRun:
        """Cross-validate the fuser ``name`` on the recorded out-of-fold posteriors of ``inputs``
        ({pipeline: finished run id}) over ``corpus``'s folds, reading no media: the code path of a
        fuser in :meth:`run`, for fusing stored runs (``emokit fuse-grid``).  ``corpus`` needs the
        input runs' clips (ids, actors), classes and folds; ``corpus_id`` is their registry corpus."""
        spec = self.host.pipeline(name)
        if spec.modality != FUSION:
            raise EmokitError(f"{name} is a {spec.modality} pipeline, not a fuser", "name a fuse.* pipeline")
        profile_name, params = spec.resolve(profile, overrides or {})
        job = self._fuser_job(spec, profile_name, params, inputs, corpus, corpus_id, seed, resume, command)
        return self._cross_validate([job], corpus)[0]

    def _fuser_job(self, spec, profile_name, params, inputs: Mapping[str, int], corpus, corpus_id, seed, resume,
                   command) -> _Job:
        started = time.perf_counter()
        info = self._start(spec, profile_name, params, corpus, corpus_id, seed, resume, command, inputs=inputs)
        by_run = {name: {p.clip_id: p for p in self.registry.predictions(run_id)} for name, run_id in inputs.items()}
        common = sorted(set.intersection(*(set(p) for p in by_run.values())))
        clip_of = {c.id: c for c in corpus.clips}
        clips = [clip_of[c] for c in common]
        y = np.array([by_run[next(iter(by_run))][c].label for c in common])
        posteriors = {name: np.array([preds[c].probs for c in common]) for name, preds in by_run.items()}
        tasks = self._tasks(spec, info, corpus, clips, y, spec.create(params), PosteriorInputs(posteriors), seed)
        return _Job(spec, info, profile_name, params, tasks, started)

    # -- the folds ------------------------------------------------------------------------------
    def _cross_validate(self, jobs: Sequence[_Job], corpus: Corpus) -> list[PipelineRun]:
        """Run every job's remaining folds through the executor, committing each as it finishes;
        a failure marks its run failed and the others of this call interrupted (both resumable)."""
        by_name = {job.spec.name: job for job in jobs}
        left = {job.spec.name: len(job.tasks) for job in jobs}
        n_folds = len(corpus.folds)
        try:
            for job in jobs:
                for task in job.tasks:
                    try:
                        check_fold(task)
                    except EmokitError:
                        raise FoldError(task)
            with ExitStack() as bars, reporting(self.reporter):  # training loops report inside the folds
                advance = {job.spec.name: bars.enter_context(
                    self.reporter.task(f"{job.spec.name} (run {job.info.run_id})", n_folds)) for job in jobs}
                for job in jobs:
                    advance[job.spec.name](n_folds - len(job.tasks))

                def commit(task: FoldTask, result: FoldResult) -> None:
                    job = by_name[task.pipeline]
                    self.registry.record_fold(
                        job.info.run_id, result.fold, n_train=result.n_train, n_test=result.n_test,
                        seconds=result.seconds, scores=result.scores, predictions=result.predictions,
                        artifacts=result.artifacts)
                    left[task.pipeline] -= 1
                    if not left[task.pipeline]:
                        job.ended = time.perf_counter()
                    advance[task.pipeline]()

                self.executor.run([t for job in jobs for t in job.tasks], commit)
        except FoldError as exc:
            cause = exc.__cause__ or exc
            failed = by_name[exc.task.pipeline]
            self.registry.fail_run(failed.info.run_id, f"{type(cause).__name__}: {cause}")
            self._stop([j for j in jobs if j is not failed], left, corpus, f"stopped because {failed.spec.name} failed",
                       "interrupted")
            raise cause from None
        except KeyboardInterrupt:
            self._stop(jobs, left, corpus, "interrupted by the user", "interrupted")
            raise
        except BaseException as exc:
            self._stop(jobs, left, corpus, f"{type(exc).__name__}: {exc}", "failed")
            raise
        return [self._finish(job, corpus) for job in jobs]

    def _stop(self, jobs: Sequence[_Job], left: Mapping[str, int], corpus: Corpus, why: str, status: str) -> None:
        """After a failure: runs with every fold recorded are finished, the others marked ``status``."""
        for job in jobs:
            if left[job.spec.name]:
                self.registry.fail_run(job.info.run_id, why, status=status)
            else:
                self._finish(job, corpus)

    def _finish(self, job: _Job, corpus: Corpus) -> PipelineRun:
        spec, info = job.spec, job.info
        preds = self.registry.predictions(info.run_id)
        y = np.array([p.label for p in preds])
        pred = np.array([p.pred for p in preds])
        pooled = scores(y, pred, len(corpus.classes))
        run = self.registry.get_run(info.run_id)
        fold_rows = run.fold_results
        zeror_correct = sum(f.scores.get("zeror_accuracy", 0.0) * f.n_test for f in fold_rows)
        pooled["zeror_accuracy"] = zeror_correct / max(1, len(y))
        # Wall time until its last fold was committed, plus what earlier attempts of a resumed run took.
        seconds = (job.ended or time.perf_counter()) - job.started + (run.seconds or 0.0)
        self.registry.finish_run(info.run_id, scores=pooled, seconds=seconds)
        return PipelineRun(pipeline=spec.name, modality=spec.modality, run_id=info.run_id, version=info.version,
                           profile=job.profile_name, params=job.params, resumed=info.resumed,
                           folds_done_before=sorted(info.finished_folds),
                           fold_scores=[f.scores for f in fold_rows], pooled=pooled,
                           zeror=pooled["zeror_accuracy"], seconds=seconds)
