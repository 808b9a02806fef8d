"""One (pipeline, fold) of cross-validation as a plain function of its inputs.

:func:`run_fold` fits a fresh clone of a pipeline's model on the training actors, predicts the
held-out actors and returns everything the registry records about the fold as a
:class:`FoldResult`.  It reads its inputs from the task alone (features from the cache folder
named in it, posteriors or clips carried in it) and writes nothing, so an executor may run it in
this process, in a worker process or on another machine; the runner commits the result.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .contracts import AttendsToFrames, Clip
from .errors import EmokitError
from .metrics import scores, zeror_predictions
from .registry.artifacts import MODEL_ARTIFACT, dump_model


# -- what a model sees ------------------------------------------------------------------------
@dataclass(frozen=True)
class CachedFeatures:
    """Per-clip features in the feature cache at ``root``, memory-mapped when taken."""

    root: str
    keys: tuple[str, ...]

    def take(self, idx: np.ndarray) -> list[np.ndarray]:
        from .cache import FeatureCache

        cache = FeatureCache(self.root)
        return [cache.load(self.keys[i], mmap=True) for i in idx]


@dataclass(frozen=True)
class ClipInputs:
    """The clips themselves, for a model without an extractor (ZeroR)."""

    clips: tuple[Clip, ...]

    def take(self, idx: np.ndarray) -> list[Clip]:
        return [self.clips[i] for i in idx]


@dataclass(frozen=True)
class PosteriorInputs:
    """Out-of-fold posteriors of the fused pipelines, ``{pipeline: [clips, classes]}``."""

    posteriors: Mapping[str, np.ndarray]

    def take(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {name: p[idx] for name, p in self.posteriors.items()}


# -- the task and its result ------------------------------------------------------------------
@dataclass
class FoldTask:
    """Everything one fold needs.  ``device`` is where the model trains (``cpu``, ``cuda:0``)
    for a torch model and ``None`` for one that trains without torch: executors place tasks by it."""

    pipeline: str
    fold: int
    model: Any  # the unfitted template; the fold fits a clone
    inputs: CachedFeatures | ClipInputs | PosteriorInputs
    labels: np.ndarray  # class index per clip
    actors: np.ndarray
    clip_ids: Sequence[str]
    train: np.ndarray  # clip indices
    test: np.ndarray
    n_classes: int
    seed: int
    owner: str = "its plugin"  # who to name when the model breaks the posterior contract
    device: str | None = None

    @property
    def label(self) -> str:
        return f"{self.pipeline} fold {self.fold}"


@dataclass
class FoldResult:
    pipeline: str
    fold: int
    n_train: int
    n_test: int
    seconds: float
    scores: dict[str, float]
    predictions: list[tuple[str, str, int, int, list[float]]]  # clip id, actor, label, prediction, posteriors
    artifacts: dict[str, bytes] = field(default_factory=dict)


# -- the posterior contract -------------------------------------------------------------------
def posterior_problem(proba: Any, n: int, n_columns: int | None, what: str = "predict_proba") -> str | None:
    """What is wrong with ``proba`` as posteriors of ``n`` clips over ``n_columns`` classes
    (``None``: any number), or ``None`` when nothing is.  The runner and the plugin conformance
    checks hold every model to this one rule."""
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[0] != n or (n_columns is not None and proba.shape[1] != n_columns):
        return f"{what} returned shape {proba.shape}, expected ({n}, {n_columns if n_columns is not None else 'n_classes'})"
    if not np.issubdtype(proba.dtype, np.number) or not np.isfinite(proba).all():
        return f"{what} returned values that are not finite numbers"
    if (proba < -1e-9).any() or not np.allclose(proba.sum(axis=1), 1.0, atol=1e-4):
        return (f"{what} rows are not probabilities (min {proba.min():.3g}, row sums "
                f"{proba.sum(axis=1).min():.4g}..{proba.sum(axis=1).max():.4g})")
    return None


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


def training_device(model: Any) -> str | None:
    """Where a model trains here: the device of its ``device`` parameter, or of a nested one
    (``recognizer__device``), a GPU if any part trains on one; ``None`` for a model without one."""
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    wanted = [str(v) for k, v in params.items() if k.rsplit("__", 1)[-1] == "device"]
    if not wanted:
        return None
    from .training import pick_device

    devices = [pick_device(d) for d in wanted]
    return next((d for d in devices if d.startswith("cuda")), devices[0])


# -- one fold ---------------------------------------------------------------------------------
def run_fold(task: FoldTask) -> FoldResult:
    """Fit, predict, check and score one fold; the fitted model comes back pickled.

    A fold that trains without torch runs its BLAS on one thread: sums in another order flip
    borderline predictions, and a fold must give the same posteriors whichever executor, worker
    or machine runs it (these models take seconds either way)."""
    from threadpoolctl import threadpool_limits

    if task.device is None:
        with threadpool_limits(1):
            return _run_fold(task)
    return _run_fold(task)


def _run_fold(task: FoldTask) -> FoldResult:
    from sklearn.base import clone

    from .estimators import fit_grouped

    started = time.perf_counter()
    train, test = np.asarray(task.train), np.asarray(task.test)
    y = np.asarray(task.labels)
    model = clone(task.model)
    seed_everything(model, task.seed)
    fit_grouped(model, task.inputs.take(train), y[train], task.actors[train])
    X_test = task.inputs.take(test)
    proba, pred = predict(model, X_test)
    _check_outputs(task, model, proba, pred, len(test))
    proba = aligned_proba(model, proba, task.n_classes)
    fold_scores = scores(y[test], pred, task.n_classes)
    fold_scores["zeror_accuracy"] = float((zeror_predictions(y[train], len(test)) == y[test]).mean())
    artifacts = {MODEL_ARTIFACT: dump_model(model), **_explain(task, model, X_test)}
    predictions = [(task.clip_ids[i], str(task.actors[i]), int(y[i]), int(p), [float(v) for v in row])
                   for i, p, row in zip(test, pred, proba)]
    return FoldResult(task.pipeline, task.fold, n_train=len(train), n_test=len(test),
                      seconds=time.perf_counter() - started, scores=fold_scores, predictions=predictions,
                      artifacts=artifacts)


def _check_outputs(task: FoldTask, model: Any, proba: np.ndarray, pred: np.ndarray, n: int) -> None:
    """A model that breaks the predict_proba contract stops its run with the plugin named, before
    malformed posteriors reach the registry (and the fusers that read them)."""
    classes = getattr(model, "classes_", None)
    problem = posterior_problem(proba, n, len(classes) if classes is not None else None)
    if problem is None and pred.shape != (n,):
        problem = f"predict returned shape {pred.shape} for {n} clips"
    if problem:
        raise EmokitError(f"{task.pipeline}: {problem}; {task.owner} breaks emokit's predict_proba contract",
                          "report it to the plugin's authors (emokit_core.testing.check_recognizer shows the "
                          "rule); the other pipelines are unaffected")


def _explain(task: FoldTask, model: Any, X_test: Any) -> dict[str, bytes]:
    """Extra artifacts of a fold: each held-out clip's attention over its frames, where the model has it."""
    if not isinstance(model, AttendsToFrames):
        return {}
    weights = model.frame_attention(X_test)
    if weights is None:
        return {}
    from .explain import ATTENTION_ARTIFACT, pack_attention

    return {ATTENTION_ARTIFACT: pack_attention({task.clip_ids[i]: w for i, w in zip(task.test, weights)})}


def check_fold(task: FoldTask) -> None:
    """A fold that cannot be trained or scored stops before any work is sent out."""
    if len(task.test) == 0 or len(set(np.asarray(task.labels)[task.train].tolist())) < 2:
        raise EmokitError(f"{task.pipeline}: fold {task.fold} has no usable held-out clips or fewer than two "
                          f"training classes", "see the skipped clips above; check the corpus")
