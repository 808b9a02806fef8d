"""The subject-wise cross-validation runner.

For each modality pipeline and fold: fit on the training actors, predict the held-out
actors, commit the fold (scores, per-clip posteriors, the fitted model) to the registry.
Fusers are then trained and tested on those out-of-fold posteriors with the same folds,
read back from the registry so that a resumed run fuses exactly what was recorded.
Features are extracted once per clip (one decode for all pipelines) into the feature cache.
"""

from __future__ import annotations

import inspect
import pickle
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Mapping, Sequence

import numpy as np

from . import __version__
from .cache import FeatureCache, extractor_key
from .contracts import FUSION, Clip, Corpus
from .errors import EmokitError, MediaError
from .metrics import scores, zeror_predictions
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


def library_versions() -> dict[str, str]:
    versions = {"emokit": __version__, "python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def seed_everything(estimator: Any, seed: int) -> None:
    """Set every ``random_state``/``seed`` parameter of a (nested) estimator and the global RNGs."""
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if hasattr(estimator, "get_params") and hasattr(estimator, "set_params"):
        wanted = {k: seed for k in estimator.get_params(deep=True)
                  if k.rsplit("__", 1)[-1] in ("random_state", "seed")}
        if wanted:
            estimator.set_params(**wanted)


def aligned_proba(model: Any, proba: np.ndarray, n_classes: int) -> np.ndarray:
    """Columns in the corpus's class order even if a class was absent from training."""
    classes = getattr(model, "classes_", None)
    if classes is None or (len(classes) == n_classes and list(classes) == list(range(n_classes))):
        return np.asarray(proba, dtype=np.float64)
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(classes, dtype=int)] = proba
    return out


def predict(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors and labels, scikit-learn style: the label is the model's own ``predict``
    where it has one (an SVC votes one-vs-one) and the posteriors' argmax otherwise."""
    proba = np.asarray(model.predict_proba(X))
    if hasattr(model, "predict"):
        return proba, np.asarray(model.predict(X), dtype=int)
    classes = getattr(model, "classes_", None)
    best = proba.argmax(axis=1)
    return proba, (np.asarray(classes)[best] if classes is not None else best).astype(int)


# -- feature extraction -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    clip: Clip
    extractors: tuple[tuple[str, str, Any], ...]  # (cache key, modality, extractor)


def _extract_clip(job: _Job, cache_root: str) -> tuple[str, str | None, dict[str, np.ndarray]]:
    """Decode a clip once and run every pending extractor on it.

    Per-clip extractors store their features in the cache here; batched extractors only
    ``prepare_audio`` here (in the worker) and hand the result back for one batched model call
    in the parent.  Returns (clip id, error or None, {cache key: prepared input}).
    """
    from .extraction import extract_clip

    cache = FeatureCache(cache_root)
    try:
        extracted = extract_clip(job.clip, [(key, ext) for key, _, ext in job.extractors])
    except MediaError as exc:
        return job.clip.id, f"{exc.message} ({exc.hint})" if exc.hint else exc.message, {}
    for key, features in extracted.features.items():
        cache.store(key, features)
    return job.clip.id, None, extracted.prepared


class _Batcher:
    """Collects prepared inputs per batched extractor and runs its model a batch at a time."""

    def __init__(self, cache: FeatureCache, extractors: Mapping[str, Any]):
        self.cache = cache
        self.extractor_of: dict[str, Any] = {}  # cache key -> extractor
        self.pending: dict[int, list[tuple[str, np.ndarray]]] = {}
        self.extractors = {id(e): e for e in extractors.values() if hasattr(e, "extract_batch")}

    def add(self, key: str, extractor: Any, prepared: np.ndarray) -> None:
        queue = self.pending.setdefault(id(extractor), [])
        queue.append((key, prepared))
        if len(queue) >= getattr(extractor, "batch_size", 32):
            self._run(extractor, queue)

    def flush(self) -> None:
        for ident, queue in self.pending.items():
            if queue:
                self._run(self.extractors[ident], queue)

    def _run(self, extractor: Any, queue: list[tuple[str, np.ndarray]]) -> None:
        features = extractor.extract_batch([p for _, p in queue])
        for (key, _), feature in zip(queue, features):
            self.cache.store(key, np.asarray(feature))
        queue.clear()


def _one_blas_thread() -> None:
    """Worker processes already run in parallel: nested BLAS threads would only contend."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class Runner:
    def __init__(self, host: PluginHost, registry: Any, cache: FeatureCache, reporter: Reporter | None = None,
                 workers: int = 1):
        self.host = host
        self.registry = registry
        self.cache = cache
        self.reporter = reporter or Reporter()
        self.workers = max(1, workers)

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
            chosen, why = spec.choose_profile(profile, overrides.get(name, {}), on_gpu=self.trains_on_gpu)
            if why:
                self.reporter.info(why)
            chosen, params = spec.resolve(chosen, overrides.get(name, {}))
            if "device" in params:
                from .training import check_device

                check_device(str(params["device"]))
            planned.append((spec, chosen, params))
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
        recipes = {spec.name: spec.build(**{**params, **weights[spec.name]})
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
                                                root=str(corpus.root))
        runs: list[PipelineRun] = []
        for spec, chosen, params in planned:
            if spec.modality == FUSION:
                continue
            runs.append(self._run_modality(spec, chosen, params, weights[spec.name], recipes[spec.name],
                                           features.get(spec.name), clips, corpus, corpus_id, seed, resume, command))
        inputs = {r.pipeline: r.run_id for r in runs}
        for spec, chosen, params in planned:
            if spec.modality == FUSION:
                runs.append(self._run_fuser(spec, chosen, params, inputs, corpus, corpus_id, seed, resume, command))
        return RunOutcome(corpus, runs, skipped, self.cache.hits, self.cache.misses, extraction_seconds)

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
                resolved[key] = WeightsRef(**{k: v for k, v in self.registry.resolve_weights(str(ref)).items()})
        return resolved

    def extract(self, corpus: Corpus, recipes: Mapping[str, Recipe]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """Fill the cache for every (clip, pipeline); return cache keys per pipeline and skipped clips."""
        # Pipelines without an extractor (ZeroR) read no media.
        recipes = {name: r for name, r in recipes.items() if r.extractor is not None}
        ext_keys = {name: extractor_key(f"{type(r.extractor).__module__}.{type(r.extractor).__qualname__}",
                                        r.extractor) for name, r in recipes.items()}
        keys: dict[str, dict[str, str]] = {name: {} for name in recipes}
        jobs: list[_Job] = []
        skipped: dict[str, str] = {}
        with self.reporter.task("fingerprinting clips", len(corpus.clips)) as advance:
            for clip in corpus.clips:
                pending = []
                for name, recipe in recipes.items():
                    modality = recipe.extractor.modality
                    path = clip.media_path(modality)
                    if path is None:
                        skipped[clip.id] = f"has no {modality} media"
                        break
                    try:
                        fp = self.cache.clip_fingerprint(clip, modality)
                    except OSError as exc:
                        skipped[clip.id] = f"{path}: cannot be read ({exc.strerror})"
                        break
                    key = self.cache.key(fp, ext_keys[name])
                    keys[name][clip.id] = key
                    if self.cache.has(key):
                        self.cache.hits += 1
                    else:
                        pending.append((key, modality, recipe.extractor))
                if pending and clip.id not in skipped:
                    jobs.append(_Job(clip, tuple(pending)))
                advance()
        self.cache.misses += sum(len(j.extractors) for j in jobs)
        batcher = _Batcher(self.cache, {name: r.extractor for name, r in recipes.items()})
        owner = {key: ext for job in jobs for key, _, ext in job.extractors}
        with self.reporter.task("extracting features", len(jobs)) as advance:
            if self.workers > 1 and len(jobs) > 1:
                # Workers decode (and prepare) while this process runs the batched models.
                with ProcessPoolExecutor(self.workers, initializer=_one_blas_thread) as pool:
                    # A bounded window of clips in flight keeps memory flat however large the corpus.
                    window: deque = deque()
                    for job in jobs:
                        window.append(pool.submit(_extract_clip, job, str(self.cache.root)))
                        if len(window) >= 8 * self.workers:
                            self._collect(*window.popleft().result(), skipped, batcher, owner)
                            advance()
                    while window:
                        self._collect(*window.popleft().result(), skipped, batcher, owner)
                        advance()
            else:
                for job in jobs:
                    self._collect(*_extract_clip(job, str(self.cache.root)), skipped, batcher, owner)
                    advance()
            batcher.flush()
        return keys, skipped

    @staticmethod
    def _collect(clip_id: str, error: str | None, prepared: Mapping[str, np.ndarray], skipped: dict[str, str],
                 batcher: _Batcher, owner: Mapping[str, Any]) -> None:
        if error:
            skipped[clip_id] = error
            return
        for key, item in prepared.items():
            batcher.add(key, owner[key], item)

    def _start(self, spec: PipelineSpec, chosen: str, params: dict[str, Any], corpus: Corpus, corpus_id: int,
               seed: int, resume: bool, command: str, inputs: dict[str, int] | None = None,
               weights: Mapping[str, WeightsRef | None] | None = None):
        # The config hash follows the weights' content, not the name they were given.
        hashed = {**params, **{k: (w.sha256 if w else None) for k, w in (weights or {}).items()}}
        recorded = ({k: (w.info() if w else {"init": "random"}) for k, w in weights.items()} if weights else None)
        info = self.registry.start_run(
            pipeline=spec.name, modality=spec.modality, params=params, config_hash=spec.config_hash(hashed),
            profile=chosen, seed=seed, corpus_id=corpus_id, folds=corpus.folds,
            library_versions=library_versions(), weights=recorded, inputs=inputs, command=command, resume=resume)
        if info.resumed:
            self.reporter.info(f"resuming {spec.name} run {info.run_id} (version {info.version}); "
                               f"folds already done: {sorted(info.finished_folds) or 'none'}")
        return info

    def _cv(self, spec: PipelineSpec, info: Any, corpus: Corpus, clips: Sequence[Clip], y: np.ndarray,
            fit_predict, describe: str, explain=None) -> None:
        """Run the folds not yet recorded; each fold is committed as it finishes.  ``explain(model,
        test_idx)`` gives extra artifacts of a fold (e.g. its clips' attention weights)."""
        n_classes = len(corpus.classes)
        actors = np.array([c.actor for c in clips])
        todo = [k for k in range(len(corpus.folds)) if k not in info.finished_folds]
        try:
            with self.reporter.task(f"{describe}", len(corpus.folds)) as advance:
                advance(len(corpus.folds) - len(todo))
                for k in todo:
                    start = time.perf_counter()
                    test = np.isin(actors, corpus.folds[k])
                    train = ~test
                    if not test.any() or len(set(y[train].tolist())) < 2:
                        raise EmokitError(f"{spec.name}: fold {k} has no usable held-out clips or fewer than two "
                                          f"training classes", "see the skipped clips above; check the corpus")
                    with reporting(self.reporter):  # training loops report their epochs inside the fold
                        model, proba, pred = fit_predict(np.flatnonzero(train), np.flatnonzero(test))
                    self._check_outputs(spec, model, proba, pred, int(test.sum()))
                    proba = aligned_proba(model, proba, n_classes)
                    test_idx = np.flatnonzero(test)
                    fold_scores = scores(y[test], pred, n_classes)
                    fold_scores["zeror_accuracy"] = float(
                        (zeror_predictions(y[train], int(test.sum())) == y[test]).mean())
                    self.registry.record_fold(
                        info.run_id, k, n_train=int(train.sum()), n_test=int(test.sum()),
                        seconds=time.perf_counter() - start, scores=fold_scores,
                        predictions=[(clips[i].id, clips[i].actor, int(y[i]), int(p), [float(v) for v in row])
                                     for i, p, row in zip(test_idx, pred, proba)],
                        artifacts={"model": pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
                                   **(explain(model, test_idx) if explain else {})})
                    advance()
        except KeyboardInterrupt:
            self.registry.fail_run(info.run_id, "interrupted by the user", status="interrupted")
            raise
        except BaseException as exc:
            self.registry.fail_run(info.run_id, f"{type(exc).__name__}: {exc}")
            raise

    def _check_outputs(self, spec: PipelineSpec, model: Any, proba: np.ndarray, pred: np.ndarray, n: int) -> None:
        """A model that breaks the predict_proba contract stops its run with the plugin named, before
        malformed posteriors reach the registry (and the fusers that read them)."""
        classes = getattr(model, "classes_", None)
        columns = len(classes) if classes is not None else None
        problem = None
        if proba.ndim != 2 or proba.shape[0] != n or (columns is not None and proba.shape[1] != columns):
            problem = f"predict_proba returned shape {proba.shape} for {n} clips and {columns or '?'} classes_"
        elif not np.isfinite(proba).all() or (proba < -1e-9).any() or not np.allclose(proba.sum(axis=1), 1, atol=1e-4):
            problem = "predict_proba returned rows that are not probabilities (finite, non-negative, summing to 1)"
        elif pred.shape != (n,):
            problem = f"predict returned shape {pred.shape} for {n} clips"
        if problem:
            owner = self.host.owner("pipeline", spec.name)
            raise EmokitError(f"{spec.name}: {problem}; {owner.source if owner else 'its plugin'} breaks "
                              f"emokit's predict_proba contract",
                              "report it to the plugin's authors (emokit_core.testing.check_recognizer shows the "
                              "rule); the other pipelines are unaffected")

    def _finish(self, spec: PipelineSpec, info: Any, chosen: str, params: dict[str, Any], corpus: Corpus,
                started: float) -> PipelineRun:
        preds = self.registry.predictions(info.run_id)
        y = np.array([p["label"] for p in preds])
        pred = np.array([p["pred"] for p in preds])
        pooled = scores(y, pred, len(corpus.classes))
        run = self.registry.get_run(info.run_id)
        fold_rows = run["fold_results"]
        zeror_correct = sum(f["scores"].get("zeror_accuracy", 0.0) * f["n_test"] for f in fold_rows)
        pooled["zeror_accuracy"] = zeror_correct / max(1, len(y))
        seconds = time.perf_counter() - started + (run.get("seconds") or 0.0)
        self.registry.finish_run(info.run_id, scores=pooled, seconds=seconds)
        return PipelineRun(pipeline=spec.name, modality=spec.modality, run_id=info.run_id, version=info.version,
                           profile=chosen, params=params, resumed=info.resumed,
                           folds_done_before=sorted(info.finished_folds),
                           fold_scores=[f["scores"] for f in fold_rows], pooled=pooled,
                           zeror=pooled["zeror_accuracy"], seconds=seconds)

    def _run_modality(self, spec, chosen, params, weights, recipe: Recipe, keys: Mapping[str, str] | None, clips,
                      corpus, corpus_id, seed, resume, command) -> PipelineRun:
        from sklearn.base import clone

        started = time.perf_counter()
        info = self._start(spec, chosen, params, corpus, corpus_id, seed, resume, command, weights=weights)
        class_index = {c: i for i, c in enumerate(corpus.classes)}
        y = np.array([class_index[c.label] for c in clips])

        def inputs(idx: np.ndarray) -> list[Any]:
            if keys is None:  # a model without an extractor sees the clips themselves
                return [clips[i] for i in idx]
            return [self.cache.load(keys[clips[i].id], mmap=True) for i in idx]

        actors = np.array([c.actor for c in clips])
        held_out: dict[str, list[Any]] = {}  # the fold's test inputs, for predict and explain alike

        def fit_predict(train: np.ndarray, test: np.ndarray):
            model = clone(recipe.model)
            seed_everything(model, seed)
            # Models that hold out validation data take the actors, so it is whole actors.
            extra = {"groups": actors[train]} if "groups" in inspect.signature(model.fit).parameters else {}
            model.fit(inputs(train), y[train], **extra)
            held_out["X"] = inputs(test)
            return model, *predict(model, held_out["X"])

        def explain(model: Any, test: np.ndarray) -> dict[str, bytes]:
            X_test = held_out.pop("X")
            if not hasattr(model, "frame_attention"):
                return {}
            weights = model.frame_attention(X_test)
            if weights is None:
                return {}
            from .explain import pack_attention

            return {"attention": pack_attention({clips[i].id: w for i, w in zip(test, weights)})}

        self._cv(spec, info, corpus, clips, y, fit_predict, f"{spec.name} (run {info.run_id})", explain)
        return self._finish(spec, info, chosen, params, corpus, started)

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
        chosen, params = spec.resolve(profile, overrides or {})
        return self._run_fuser(spec, chosen, params, inputs, corpus, corpus_id, seed, resume, command)

    def _run_fuser(self, spec, chosen, params, inputs: Mapping[str, int], corpus, corpus_id, seed, resume,
                   command) -> PipelineRun:
        from sklearn.base import clone

        started = time.perf_counter()
        info = self._start(spec, chosen, params, corpus, corpus_id, seed, resume, command, inputs=inputs)
        by_run = {name: {p["clip_id"]: p for p in self.registry.predictions(run_id)} for name, run_id in inputs.items()}
        common = sorted(set.intersection(*(set(p) for p in by_run.values())))
        clip_of = {c.id: c for c in corpus.clips}
        clips = [clip_of[c] for c in common]
        y = np.array([by_run[next(iter(by_run))][c]["label"] for c in common])
        posteriors = {name: np.array([preds[c]["probs"] for c in common]) for name, preds in by_run.items()}
        template = spec.build(**params)

        def fit_predict(train: np.ndarray, test: np.ndarray):
            fuser = clone(template)
            seed_everything(fuser, seed)
            fuser.fit({m: p[train] for m, p in posteriors.items()}, y[train])
            return fuser, *predict(fuser, {m: p[test] for m, p in posteriors.items()})

        self._cv(spec, info, corpus, clips, y, fit_predict, f"{spec.name} (run {info.run_id})")
        return self._finish(spec, info, chosen, params, corpus, started)
