"""Conformance checks of components: scikit-learn's rules, the posterior contract, determinism
and the round trip through the artifact store for recognizers, aggregators and fusers; shapes,
determinism and a stable cache key for extractors."""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..contracts import (FACE, SPEECH, Aggregator, BatchedSpeechExtractor, Clip, FaceExtractor,
                         Fuser, Recognizer, SpeechExtractor, VideoInfo)
from ..media import SAMPLE_RATE
from ..registry.artifacts import SAFE_MODULES, RestrictedUnpickler, dump_model
from .data import synthetic_audio, synthetic_features, synthetic_frames, synthetic_posteriors


class ContractError(AssertionError):
    """A component that breaks emokit's plugin contract; the message says which rule and what to do."""


def fail(who: str, rule: str, fix: str = "") -> None:
    raise ContractError(f"{who}: {rule}" + (f"\n  fix: {fix}" if fix else ""))


# -- synthetic inputs ----------------------------------------------------------------------------


def _name(component: Any, name: str | None) -> str:
    return name or f"{type(component).__module__}.{type(component).__qualname__}"


def check_estimator_params(component: Any, who: str) -> None:
    """scikit-learn conventions: parameters set in ``__init__`` only, cloneable, no fitted state yet."""
    from sklearn.base import clone

    if not (hasattr(component, "get_params") and hasattr(component, "set_params")):
        fail(who, "has no get_params/set_params",
              "derive it from sklearn.base.BaseEstimator and take every parameter in __init__")
    fitted = [k for k in vars(component) if k.endswith("_") and not k.startswith("_")]
    if fitted:
        fail(who, f"has fitted attributes before fit: {fitted}",
              "attributes ending in _ hold what fit learns; __init__ stores its parameters only")
    try:
        twin = clone(component)
    except Exception as exc:  # noqa: BLE001 - any failure to clone breaks the runner's fold loop
        fail(who, f"cannot be cloned ({type(exc).__name__}: {exc})",
              "__init__ must store each parameter unchanged under its own name (scikit-learn rule)")
    if repr(twin.get_params(deep=False)) != repr(component.get_params(deep=False)):
        fail(who, "a clone has other parameters than the original",
              "__init__ must store each parameter unchanged under its own name")


def _fit(component: Any, X: Any, y: np.ndarray, groups: np.ndarray | None, seed: int, who: str) -> Any:
    """Fit like the runner: seeded, with the training actors where ``fit`` takes ``groups``."""
    from sklearn.base import clone

    from ..estimators import fit_grouped
    from ..folds import seed_everything

    model = clone(component)
    seed_everything(model, seed)
    before = repr(model.get_params(deep=False))
    returned = fit_grouped(model, X, y, groups)
    if returned is not model:
        fail(who, f"fit returned {type(returned).__name__}, not self", "end fit with `return self`")
    if repr(model.get_params(deep=False)) != before:
        fail(who, "fit changed its parameters", "keep what fit learns in attributes ending in _")
    return model


def _check_posteriors(proba: Any, n: int, n_columns: int | None, who: str, what: str = "predict_proba") -> np.ndarray:
    """The runner's own rule (:func:`emokit_core.folds.posterior_problem`), with a hint for authors."""
    from ..folds import posterior_problem

    problem = posterior_problem(proba, n, n_columns, what)
    if problem:
        fail(who, problem, "one row per clip and one column per entry of classes_, in that order; "
                            "each row non-negative and summing to 1")
    return np.asarray(proba).astype(np.float64)


def _check_classifier(model: Any, X_test: Any, n: int, labels: np.ndarray, who: str) -> np.ndarray:
    classes = getattr(model, "classes_", None)
    if classes is None:
        fail(who, "has no classes_ after fit",
              "set classes_ to the sorted training labels: the runner aligns posterior columns by it")
    if list(np.asarray(classes)) != sorted(set(np.asarray(labels).tolist())):
        fail(who, f"classes_ is {list(classes)} but the training labels were {sorted(set(labels.tolist()))}",
              "classes_ lists exactly the labels seen in fit, sorted (np.unique(y))")
    proba = _check_posteriors(model.predict_proba(X_test), n, len(classes), who)
    if hasattr(model, "predict"):
        pred = np.asarray(model.predict(X_test))
        if pred.shape != (n,) or not np.isin(pred, classes).all():
            fail(who, f"predict returned shape {pred.shape} or labels outside classes_",
                  "predict returns one label from classes_ per clip")
    return proba


def _split(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last actor is held out, as in a subject-wise fold."""
    test = groups == sorted(set(groups.tolist()))[-1]
    return np.flatnonzero(~test), np.flatnonzero(test)


def _take(X: Any, idx: np.ndarray) -> Any:
    if isinstance(X, Mapping):
        return {k: np.asarray(v)[idx] for k, v in X.items()}
    return [X[i] for i in idx]


def _check_deterministic(component: Any, X_train: Any, y: np.ndarray, groups: np.ndarray | None, X_test: Any,
                         first: np.ndarray, seed: int, who: str) -> None:
    again = np.asarray(_fit(component, X_train, y, groups, seed, who).predict_proba(X_test), dtype=np.float64)
    if again.shape != first.shape or not np.allclose(again, first, rtol=0, atol=1e-6):
        worst = np.abs(again - first).max() if again.shape == first.shape else "shape"
        fail(who, f"two fits with seed {seed} gave different posteriors (largest difference {worst})",
              "draw every random number from random_state (the runner sets it to the run's seed) or "
              "np.random.default_rng(self.random_state); torch code from torch.manual_seed")


def trusted_packages(component: Any, allow: Sequence[str] = ()) -> tuple[str, ...]:
    """The packages a stored component may reference: the scientific stack, emokit, those of the
    component and of the estimators among its parameters, and ``allow``; never ``__main__``."""
    parts = [component]
    if hasattr(component, "get_params"):
        parts += [v for v in component.get_params(deep=True).values() if hasattr(v, "__dict__")]
    own = {type(p).__module__.split(".")[0] for p in parts}
    return tuple(sorted(({*SAFE_MODULES, *own, *allow}) - {"__main__", "builtins"}))


def _check_round_trip(model: Any, X_test: Any, proba: np.ndarray, registry: Any, allow: Sequence[str],
                      who: str) -> Any:
    """Store the fitted model as the runner does (pickle into the registry's artifact store), read it
    back verified, load it with an unpickler that admits only known packages, and predict again."""
    try:
        data = dump_model(model)
    except Exception as exc:  # noqa: BLE001
        fail(who, f"the fitted model cannot be pickled into the registry ({type(exc).__name__}: {exc})",
              "a lambda, open file or native handle is kept in an attribute: build it where it is used "
              "and drop it in __getstate__")
    if registry is None:
        from ..registry.artifacts import ArtifactStore

        with tempfile.TemporaryDirectory(prefix="emokit-artifacts-") as tmp:
            store = ArtifactStore(tmp)
            back = store.get(store.put(data))
    else:
        back = registry.get_artifact(registry.put_artifact(data))
    trusted = trusted_packages(model, allow)
    unpickler = RestrictedUnpickler(back, trusted)
    try:
        loaded = unpickler.load()
    except pickle.UnpicklingError as exc:
        fail(who, f"the stored model needs {exc}, outside the packages it is built from and "
                   f"{', '.join(SAFE_MODULES)}",
              "keep fitted state in numpy arrays, scikit-learn estimators, torch tensors and your package's own "
              "classes, never in classes of __main__ (another process cannot load them); pass allow=(...) for "
              "another trusted package")
    modules = sorted(n for n in unpickler.needed if n.startswith("torch.nn.modules."))
    if modules:
        fail(who, f"the stored model pickles live torch modules ({', '.join(modules)})",
              "keep the network's state_dict (tensors, loadable with torch.load(weights_only=True)) and rebuild "
              "the network when predicting, as emokit_core.training.NetworkClassifier does")
    again = np.asarray(loaded.predict_proba(X_test), dtype=np.float64)
    if again.shape != proba.shape or not np.allclose(again, proba, rtol=0, atol=1e-6):
        fail(who, "the model loaded back from the artifact store predicts other posteriors",
              "everything predict_proba uses must be in the pickled state (see __getstate__)")
    return loaded


# -- component checks ----------------------------------------------------------------------------
def _check_protocol(component: Any, protocol: type, who: str) -> None:
    """The component has the methods of its contract (emokit_core.contracts), named when missing."""
    if not isinstance(component, protocol):
        missing = [m for m in ("fit", "predict_proba") if not callable(getattr(component, m, None))]
        article = "an" if protocol.__name__[0] in "AEIOU" else "a"
        fail(who, f"is not {article} {protocol.__name__}: it has no {' or '.join(missing)}",
              f"see emokit_core.contracts.{protocol.__name__}")


def check_recognizer(model: Any, X: Sequence[Any] | None = None, y: np.ndarray | None = None,
                     groups: np.ndarray | None = None, *, registry: Any = None, seed: int = 0,
                     allow: Sequence[str] = (), name: str | None = None) -> Any:
    """A pipeline's model (``Recipe.model``): a classifier over one feature array per clip.

    Checks scikit-learn conventions (cloneable, parameters untouched by fit, ``fit`` returns self),
    ``classes_`` and the ``predict_proba`` contract on held-out actors, a training set that lacks
    a class, the same posteriors from two fits with the same seed, and the save/load round trip
    through the registry's artifact store.  ``X`` defaults to :func:`synthetic_features` (vectors);
    give real features (and ``groups``) for models that need another shape.  Returns the fitted model.
    """
    who = _name(model, name)
    if X is None:
        X, y, groups = synthetic_features()
    y = np.asarray(y)
    groups = None if groups is None else np.asarray(groups)
    _check_protocol(model, Recognizer, who)
    check_estimator_params(model, who)
    train, test = _split(groups) if groups is not None else (np.arange(len(y))[::2], np.arange(len(y))[1::2])
    X_train, X_test = _take(X, train), _take(X, test)
    g_train = groups[train] if groups is not None else None
    fitted = _fit(model, X_train, y[train], g_train, seed, who)
    proba = _check_classifier(fitted, X_test, len(test), y[train], who)
    _check_deterministic(model, X_train, y[train], g_train, X_test, proba, seed, who)
    absent = y[train] != y[train].max()  # a training fold without the last class, as small folds have
    partial = _fit(model, _take(X_train, np.flatnonzero(absent)), y[train][absent],
                   g_train[absent] if g_train is not None else None, seed, who)
    _check_classifier(partial, X_test, len(test), y[train][absent], who)
    return _check_round_trip(fitted, X_test, proba, registry, allow, who)


def check_aggregator(aggregator: Any, sequences: Sequence[np.ndarray] | None = None, y: np.ndarray | None = None,
                     groups: np.ndarray | None = None, *, registry: Any = None, seed: int = 0,
                     allow: Sequence[str] = (), name: str | None = None) -> Any:
    """Per-clip sequences of frame outputs (``[frames, dim]``, lengths differ) -> clip posteriors.

    Checks the conventions, ``fit`` returning self (a no-op for rules such as voting), the shape
    and sums of ``predict_proba`` on clips of different lengths, determinism under a seed and the
    round trip through the artifact store.  ``sequences`` default to frame posteriors of 3 classes.
    Returns the fitted aggregator.
    """
    who = _name(aggregator, name)
    if sequences is None:
        X, y, groups = synthetic_features(frames=10, dim=3)
        sequences = [np.exp(x) / np.exp(x).sum(axis=1, keepdims=True) for x in X]
    y = np.asarray(y)
    groups = None if groups is None else np.asarray(groups)
    _check_protocol(aggregator, Aggregator, who)
    check_estimator_params(aggregator, who)
    train, test = _split(groups) if groups is not None else (np.arange(len(y))[::2], np.arange(len(y))[1::2])
    X_train, X_test = _take(sequences, train), _take(sequences, test)
    g_train = groups[train] if groups is not None else None
    fitted = _fit(aggregator, X_train, y[train], g_train, seed, who)
    classes = getattr(fitted, "classes_", None)
    proba = _check_posteriors(fitted.predict_proba(X_test), len(X_test), None if classes is None else len(classes), who)
    _check_deterministic(aggregator, X_train, y[train], g_train, X_test, proba, seed, who)
    return _check_round_trip(fitted, X_test, proba, registry, allow, who)


def check_fuser(fuser: Any, posteriors: Mapping[str, np.ndarray] | None = None, y: np.ndarray | None = None,
                groups: np.ndarray | None = None, *, registry: Any = None, seed: int = 0, allow: Sequence[str] = (),
                name: str | None = None) -> Any:
    """Late fusion: ``{pipeline name: [clips, classes] posteriors}`` -> fused posteriors.

    The same checks as :func:`check_recognizer` on :func:`synthetic_posteriors` unless given.
    Returns the fitted fuser.
    """
    who = _name(fuser, name)
    if posteriors is None:
        _, y, groups = synthetic_features(n_classes=3)
        posteriors = synthetic_posteriors(y, 3)
    y = np.asarray(y)
    groups = None if groups is None else np.asarray(groups)
    _check_protocol(fuser, Fuser, who)
    check_estimator_params(fuser, who)
    train, test = _split(groups) if groups is not None else (np.arange(len(y))[::2], np.arange(len(y))[1::2])
    P_train, P_test = _take(posteriors, train), _take(posteriors, test)
    fitted = _fit(fuser, P_train, y[train], None, seed, who)
    proba = _check_classifier(fitted, P_test, len(test), y[train], who)
    _check_deterministic(fuser, P_train, y[train], None, P_test, proba, seed, who)
    return _check_round_trip(fitted, P_test, proba, registry, allow, who)


def _speech_features(extractor: Any, audio: np.ndarray, clip: Clip) -> np.ndarray:
    if isinstance(extractor, BatchedSpeechExtractor):  # what the runner calls for a batched extractor
        return np.asarray(extractor.extract_batch([extractor.prepare_audio(audio, SAMPLE_RATE, clip)])[0])
    return np.asarray(extractor.extract_audio(audio, SAMPLE_RATE, clip))


def _face_features(extractor: Any, frames: Sequence[np.ndarray], clip: Clip) -> np.ndarray:
    height, width = frames[0].shape[:2]
    sink = extractor.open_clip(clip, VideoInfo(width=width, height=height, fps=30.0, frames=len(frames)))
    gray = getattr(sink, "pixel_format", "rgb24") == "gray"
    for frame in frames:
        sink.add((frame @ np.array([0.299, 0.587, 0.114])).round().astype(np.uint8) if gray else frame)
    return np.asarray(sink.close())


def _decoded(extractor: Any, clip: Clip) -> np.ndarray:
    """A real clip's features, decoded as the runner decodes it."""
    from ..extraction import extract_clip

    return extract_clip(clip, [("features", extractor)], batch_here=True).features["features"]


def check_extractor(extractor: Any, clips: Sequence[Clip] = (), *, name: str | None = None) -> list[np.ndarray]:
    """A speech (``extract_audio``, or ``prepare_audio`` + ``extract_batch``) or face
    (``open_clip`` -> sink) extractor.

    Checks ``modality``, ``cache_version`` and ``weights_sha256``, a cache key that is stable
    across clones and pickling (worker processes get a pickled copy), finite non-empty features
    of one shape (vectors) or one trailing shape (sequences) for inputs of different lengths,
    identical features from a clone and a pickled copy, and, for batched extractors, features
    that do not depend on their batch mates.  ``clips`` adds real media (decoded as the runner
    does).  Returns the features of each input.
    """
    from sklearn.base import clone

    from ..cache import extractor_key

    who = _name(extractor, name)
    modality = getattr(extractor, "modality", None)
    if modality not in (SPEECH, FACE):
        fail(who, f"modality is {modality!r}", "set the class attribute modality = 'speech' or 'face'")
    if not isinstance(getattr(extractor, "cache_version", None), str) or not extractor.cache_version:
        fail(who, "has no cache_version string", "set cache_version = '1' and bump it whenever outputs change")
    if not hasattr(extractor, "weights_sha256"):
        fail(who, "has no weights_sha256", "set weights_sha256 = None, or the checkpoint's SHA-256")
    method = "extract_audio" if modality == SPEECH else "open_clip"
    kinds = (SpeechExtractor, BatchedSpeechExtractor) if modality == SPEECH else (FaceExtractor,)
    if not isinstance(extractor, kinds):
        fail(who, f"a {modality} extractor without {method}", "see emokit_core.contracts")
    qualname = f"{type(extractor).__module__}.{type(extractor).__qualname__}"
    key = json.dumps(extractor_key(qualname, extractor), sort_keys=True)
    if " at 0x" in key:
        fail(who, f"its cache key holds an object address ({key})",
              "parameters must be plain values (numbers, strings, tuples) or estimators, so the feature "
              "cache finds them again")
    check_estimator_params(extractor, who)
    try:
        pickled = pickle.loads(pickle.dumps(extractor))
    except Exception as exc:  # noqa: BLE001
        fail(who, f"cannot be pickled for the decoding workers ({type(exc).__name__}: {exc})",
              "build native objects lazily where they are used and drop them in __getstate__")
    for twin, how in ((clone(extractor), "a clone"), (pickled, "a pickled copy")):
        if json.dumps(extractor_key(qualname, twin), sort_keys=True) != key:
            fail(who, f"{how} has another cache key", "keep every parameter unchanged in __init__")
    clip = Clip(id="synthetic", actor="01", label="neutral", audio_path=Path("synthetic.wav"),
                video_path=Path("synthetic.mp4"))
    if modality == SPEECH:
        inputs = [synthetic_audio(1.5, 180.0, seed=0), synthetic_audio(3.0, 240.0, seed=1)]
        run = _speech_features
    else:
        inputs = [synthetic_frames(12, seed=0), synthetic_frames(20, seed=1)]
        run = _face_features
    features = [run(extractor, x, clip) for x in inputs]
    features += [_decoded(extractor, c) for c in clips]
    for i, f in enumerate(features):
        if f.size == 0 or not np.issubdtype(f.dtype, np.number) or not np.isfinite(f).all():
            fail(who, f"input {i}: features are empty or not finite numbers (shape {f.shape}, dtype {f.dtype})",
                  "the runner skips such clips; return a numeric vector or a [steps, ...] array")
    shapes = {f.shape if f.ndim == 1 else f.shape[1:] for f in features}
    if len(shapes) != 1 or len({f.ndim for f in features}) != 1:
        fail(who, f"inputs of different lengths gave features of shapes {[f.shape for f in features]}",
              "a vector of one length per clip, or [steps, ...] with the same trailing shape")
    for twin, how in ((clone(extractor), "a clone"), (pickled, "a pickled copy")):
        again = run(twin, inputs[0], clip)
        if again.shape != features[0].shape or not np.array_equal(again, features[0]):
            fail(who, f"{how} gave other features for the same input",
                  "features must depend only on the input and the parameters (the cache relies on it)")
    if isinstance(extractor, BatchedSpeechExtractor):
        if not isinstance(getattr(extractor, "batch_size", None), int) or extractor.batch_size < 1:
            fail(who, "a batched extractor without a positive integer batch_size")
        prepared = [np.asarray(extractor.prepare_audio(x, SAMPLE_RATE, clip)) for x in inputs]
        together = extractor.extract_batch(prepared)
        for i, (p, f) in enumerate(zip(prepared, together)):
            alone = np.asarray(extractor.extract_batch([p])[0])
            if alone.shape != np.asarray(f).shape or not np.allclose(alone, f, rtol=1e-4, atol=1e-5):
                fail(who, f"input {i} gave other features in a batch than alone",
                      "pad and mask inside extract_batch so that batch mates do not change a clip's features")
    return features


# -- pipelines, corpora, plugins -----------------------------------------------------------------
