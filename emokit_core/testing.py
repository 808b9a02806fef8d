"""Conformance checks and pytest fixtures for emokit plugins.

A plugin's tests check each component in one line, with what emokit's runner relies on::

    # conftest.py (the plugin's top-level one): emokit's fixtures
    pytest_plugins = ["emokit_core.testing"]

    # tests/test_plugin.py
    from emokit_core.testing import check_extractor, check_pipeline, check_plugin, check_recognizer

    def test_plugin():
        check_plugin("emokit_foo")                        # loads beside the built-ins, lazy imports

    def test_extractor():
        check_extractor(FooFeatures())                    # shapes, determinism, picklable, stable cache key

    def test_recognizer(emokit_registry):
        check_recognizer(build_foo(C=1.0).model, registry=emokit_registry)

    def test_pipeline(emokit_tiny_corpus, emokit_registry):
        check_pipeline("speech.foo", emokit_tiny_corpus, emokit_registry)   # the real protocol

A broken rule raises :class:`ContractError` (an ``AssertionError``) naming the component, the
rule and what to change.  Fixtures: ``emokit_registry`` (a registry in a temporary folder),
``emokit_home`` (``EMOKIT_HOME`` in a temporary folder), ``emokit_tiny_corpus`` (5 actors, one
per fold, 3 emotions, 50 audio-visual clips at 320x180 in RAVDESS layout, generated once and kept in
pytest's cache folder, or under ``--emokit-corpora DIR``).  This module needs pytest.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import pickle
import subprocess
import sys
import contextlib
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pytest

from . import PLUGIN_API_VERSION
from .contracts import (FACE, FUSION, SPEECH, Aggregator, BatchedSpeechExtractor, Clip, Corpus, FaceExtractor,
                        Fuser, Recognizer, SpeechExtractor, VideoInfo)
from .media import SAMPLE_RATE
from .registry.artifacts import MODEL_ARTIFACT, SAFE_MODULES, RestrictedUnpickler, dump_model

__all__ = ["ContractError", "check_aggregator", "check_corpus", "check_extractor", "check_fuser", "check_pipeline",
           "check_plugin", "check_recognizer", "synthetic_audio", "synthetic_features", "synthetic_frames",
           "synthetic_posteriors", "TINY_CORPUS"]

# What a fitted component may reference when it is loaded back from the registry: the
# scientific stack, emokit, and the component's own package (plus what a check is told to allow).
# Libraries a plugin module must not import when it is loaded: every `emokit` command loads
# all plugins at start-up, so they belong inside build functions and factories.
HEAVY_MODULES = ("numpy", "scipy", "sklearn", "pandas", "torch", "torchaudio", "torchvision", "tensorflow", "jax",
                 "cv2", "av", "librosa", "opensmile", "transformers")
# The tiny demo corpus of the ``emokit_tiny_corpus`` fixture: at 320x180, a tenth of the pixels of
# RAVDESS's 1280x720, so that it is quick to make and to decode (no test of a plugin needs 720p).
TINY_CORPUS = {"actors": 5, "repetitions": 1, "seed": 0, "emotions": ("neutral", "happy", "angry"), "height": 180}


class ContractError(AssertionError):
    """A component that breaks emokit's plugin contract; the message says which rule and what to do."""


def _fail(who: str, rule: str, fix: str = "") -> None:
    raise ContractError(f"{who}: {rule}" + (f"\n  fix: {fix}" if fix else ""))


# -- synthetic inputs ----------------------------------------------------------------------------
def synthetic_audio(seconds: float = 1.5, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    """A voiced 16 kHz mono float32 waveform: harmonics with a pitch glide, an envelope and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * np.hanning(len(t)) * 0.3
    return (wave + rng.normal(0, 0.005, len(t))).astype(np.float32)


def synthetic_frames(n: int = 12, width: int = 640, height: int = 360, seed: int = 0) -> list[np.ndarray]:
    """RGB uint8 frames framed like RAVDESS (white sides, a centred square) with a moving face-like ellipse."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    frames = []
    for i in range(n):
        frame = np.full((height, width, 3), 255, np.uint8)
        left = (width - height) // 2
        frame[:, left:left + height] = (90, 90, 100)
        cx, cy = width / 2 + 6 * np.sin(i / 3), height / 2
        face = ((xx - cx) / (0.22 * height)) ** 2 + ((yy - cy) / (0.3 * height)) ** 2 <= 1
        frame[face] = (205, 160, 130)
        mouth = ((xx - cx) / (0.08 * height)) ** 2 + ((yy - cy - 0.15 * height) / (0.02 * height * (1 + i % 4))) ** 2 <= 1
        frame[mouth] = (120, 40, 50)
        noise = rng.integers(0, 6, frame.shape, dtype=np.uint8)
        frames.append(np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return frames


def synthetic_features(n_actors: int = 5, n_classes: int = 3, clips_per_class: int = 4, dim: int = 12,
                       frames: int | None = None, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Learnable per-clip features: ``(X, y, groups)``.  ``X`` holds one vector per clip, or with
    ``frames`` one ``[n_frames, dim]`` array of varying length per clip; ``y`` class indices, as
    the runner gives them; ``groups`` the actors."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (n_classes, dim))
    X, y, groups = [], [], []
    for actor in range(n_actors):
        offset = rng.normal(0, 0.5, dim)  # each actor shifts the features a little
        for label in range(n_classes):
            for _ in range(clips_per_class):
                if frames is None:
                    X.append((centres[label] + offset + rng.normal(0, 1.0, dim)).astype(np.float32))
                else:
                    length = int(rng.integers(max(2, frames // 2), frames + 1))
                    X.append((centres[label] + offset + rng.normal(0, 1.0, (length, dim))).astype(np.float32))
                y.append(label)
                groups.append(f"{actor + 1:02d}")
    return X, np.array(y), np.array(groups)


def synthetic_posteriors(y: np.ndarray, n_classes: int, inputs: Sequence[str] = ("speech.a", "face.b"),
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Per-modality clip posteriors that lean towards the true class, as fusers receive them."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in inputs:
        logits = rng.normal(0, 1.0, (len(y), n_classes))
        logits[np.arange(len(y)), y] += 1.5
        p = np.exp(logits)
        out[name] = p / p.sum(axis=1, keepdims=True)
    return out


# -- shared rules --------------------------------------------------------------------------------
def _name(component: Any, name: str | None) -> str:
    return name or f"{type(component).__module__}.{type(component).__qualname__}"


def _check_estimator_params(component: Any, who: str) -> None:
    """scikit-learn conventions: parameters set in ``__init__`` only, cloneable, no fitted state yet."""
    from sklearn.base import clone

    if not (hasattr(component, "get_params") and hasattr(component, "set_params")):
        _fail(who, "has no get_params/set_params",
              "derive it from sklearn.base.BaseEstimator and take every parameter in __init__")
    fitted = [k for k in vars(component) if k.endswith("_") and not k.startswith("_")]
    if fitted:
        _fail(who, f"has fitted attributes before fit: {fitted}",
              "attributes ending in _ hold what fit learns; __init__ stores its parameters only")
    try:
        twin = clone(component)
    except Exception as exc:  # noqa: BLE001 - any failure to clone breaks the runner's fold loop
        _fail(who, f"cannot be cloned ({type(exc).__name__}: {exc})",
              "__init__ must store each parameter unchanged under its own name (scikit-learn rule)")
    if repr(twin.get_params(deep=False)) != repr(component.get_params(deep=False)):
        _fail(who, "a clone has other parameters than the original",
              "__init__ must store each parameter unchanged under its own name")


def _fit(component: Any, X: Any, y: np.ndarray, groups: np.ndarray | None, seed: int, who: str) -> Any:
    """Fit like the runner: seeded, with the training actors where ``fit`` takes ``groups``."""
    from sklearn.base import clone

    from .estimators import fit_grouped
    from .folds import seed_everything

    model = clone(component)
    seed_everything(model, seed)
    before = repr(model.get_params(deep=False))
    returned = fit_grouped(model, X, y, groups)
    if returned is not model:
        _fail(who, f"fit returned {type(returned).__name__}, not self", "end fit with `return self`")
    if repr(model.get_params(deep=False)) != before:
        _fail(who, "fit changed its parameters", "keep what fit learns in attributes ending in _")
    return model


def _check_posteriors(proba: Any, n: int, n_columns: int | None, who: str, what: str = "predict_proba") -> np.ndarray:
    """The runner's own rule (:func:`emokit_core.folds.posterior_problem`), with a hint for authors."""
    from .folds import posterior_problem

    problem = posterior_problem(proba, n, n_columns, what)
    if problem:
        _fail(who, problem, "one row per clip and one column per entry of classes_, in that order; "
                            "each row non-negative and summing to 1")
    return np.asarray(proba).astype(np.float64)


def _check_classifier(model: Any, X_test: Any, n: int, labels: np.ndarray, who: str) -> np.ndarray:
    classes = getattr(model, "classes_", None)
    if classes is None:
        _fail(who, "has no classes_ after fit",
              "set classes_ to the sorted training labels: the runner aligns posterior columns by it")
    if list(np.asarray(classes)) != sorted(set(np.asarray(labels).tolist())):
        _fail(who, f"classes_ is {list(classes)} but the training labels were {sorted(set(labels.tolist()))}",
              "classes_ lists exactly the labels seen in fit, sorted (np.unique(y))")
    proba = _check_posteriors(model.predict_proba(X_test), n, len(classes), who)
    if hasattr(model, "predict"):
        pred = np.asarray(model.predict(X_test))
        if pred.shape != (n,) or not np.isin(pred, classes).all():
            _fail(who, f"predict returned shape {pred.shape} or labels outside classes_",
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
        _fail(who, f"two fits with seed {seed} gave different posteriors (largest difference {worst})",
              "draw every random number from random_state (the runner sets it to the run's seed) or "
              "np.random.default_rng(self.random_state); torch code from torch.manual_seed")


def _trusted_packages(component: Any, allow: Sequence[str] = ()) -> tuple[str, ...]:
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
        _fail(who, f"the fitted model cannot be pickled into the registry ({type(exc).__name__}: {exc})",
              "a lambda, open file or native handle is kept in an attribute: build it where it is used "
              "and drop it in __getstate__")
    if registry is None:
        from .registry.artifacts import ArtifactStore

        with tempfile.TemporaryDirectory(prefix="emokit-artifacts-") as tmp:
            store = ArtifactStore(tmp)
            back = store.get(store.put(data))
    else:
        back = registry.get_artifact(registry.put_artifact(data))
    trusted = _trusted_packages(model, allow)
    unpickler = RestrictedUnpickler(back, trusted)
    try:
        loaded = unpickler.load()
    except pickle.UnpicklingError as exc:
        _fail(who, f"the stored model needs {exc}, outside the packages it is built from and "
                   f"{', '.join(SAFE_MODULES)}",
              "keep fitted state in numpy arrays, scikit-learn estimators, torch tensors and your package's own "
              "classes, never in classes of __main__ (another process cannot load them); pass allow=(...) for "
              "another trusted package")
    modules = sorted(n for n in unpickler.needed if n.startswith("torch.nn.modules."))
    if modules:
        _fail(who, f"the stored model pickles live torch modules ({', '.join(modules)})",
              "keep the network's state_dict (tensors, loadable with torch.load(weights_only=True)) and rebuild "
              "the network when predicting, as emokit_core.training.NetworkClassifier does")
    again = np.asarray(loaded.predict_proba(X_test), dtype=np.float64)
    if again.shape != proba.shape or not np.allclose(again, proba, rtol=0, atol=1e-6):
        _fail(who, "the model loaded back from the artifact store predicts other posteriors",
              "everything predict_proba uses must be in the pickled state (see __getstate__)")
    return loaded


# -- component checks ----------------------------------------------------------------------------
def _check_protocol(component: Any, protocol: type, who: str) -> None:
    """The component has the methods of its contract (emokit_core.contracts), named when missing."""
    if not isinstance(component, protocol):
        missing = [m for m in ("fit", "predict_proba") if not callable(getattr(component, m, None))]
        article = "an" if protocol.__name__[0] in "AEIOU" else "a"
        _fail(who, f"is not {article} {protocol.__name__}: it has no {' or '.join(missing)}",
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
    _check_estimator_params(model, who)
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
    _check_estimator_params(aggregator, who)
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
    _check_estimator_params(fuser, who)
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
    from .extraction import extract_clip

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

    from .cache import extractor_key

    who = _name(extractor, name)
    modality = getattr(extractor, "modality", None)
    if modality not in (SPEECH, FACE):
        _fail(who, f"modality is {modality!r}", "set the class attribute modality = 'speech' or 'face'")
    if not isinstance(getattr(extractor, "cache_version", None), str) or not extractor.cache_version:
        _fail(who, "has no cache_version string", "set cache_version = '1' and bump it whenever outputs change")
    if not hasattr(extractor, "weights_sha256"):
        _fail(who, "has no weights_sha256", "set weights_sha256 = None, or the checkpoint's SHA-256")
    method = "extract_audio" if modality == SPEECH else "open_clip"
    kinds = (SpeechExtractor, BatchedSpeechExtractor) if modality == SPEECH else (FaceExtractor,)
    if not isinstance(extractor, kinds):
        _fail(who, f"a {modality} extractor without {method}", "see emokit_core.contracts")
    qualname = f"{type(extractor).__module__}.{type(extractor).__qualname__}"
    key = json.dumps(extractor_key(qualname, extractor), sort_keys=True)
    if " at 0x" in key:
        _fail(who, f"its cache key holds an object address ({key})",
              "parameters must be plain values (numbers, strings, tuples) or estimators, so the feature "
              "cache finds them again")
    _check_estimator_params(extractor, who)
    try:
        pickled = pickle.loads(pickle.dumps(extractor))
    except Exception as exc:  # noqa: BLE001
        _fail(who, f"cannot be pickled for the decoding workers ({type(exc).__name__}: {exc})",
              "build native objects lazily where they are used and drop them in __getstate__")
    for twin, how in ((clone(extractor), "a clone"), (pickled, "a pickled copy")):
        if json.dumps(extractor_key(qualname, twin), sort_keys=True) != key:
            _fail(who, f"{how} has another cache key", "keep every parameter unchanged in __init__")
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
            _fail(who, f"input {i}: features are empty or not finite numbers (shape {f.shape}, dtype {f.dtype})",
                  "the runner skips such clips; return a numeric vector or a [steps, ...] array")
    shapes = {f.shape if f.ndim == 1 else f.shape[1:] for f in features}
    if len(shapes) != 1 or len({f.ndim for f in features}) != 1:
        _fail(who, f"inputs of different lengths gave features of shapes {[f.shape for f in features]}",
              "a vector of one length per clip, or [steps, ...] with the same trailing shape")
    for twin, how in ((clone(extractor), "a clone"), (pickled, "a pickled copy")):
        again = run(twin, inputs[0], clip)
        if again.shape != features[0].shape or not np.array_equal(again, features[0]):
            _fail(who, f"{how} gave other features for the same input",
                  "features must depend only on the input and the parameters (the cache relies on it)")
    if isinstance(extractor, BatchedSpeechExtractor):
        if not isinstance(getattr(extractor, "batch_size", None), int) or extractor.batch_size < 1:
            _fail(who, "a batched extractor without a positive integer batch_size")
        prepared = [np.asarray(extractor.prepare_audio(x, SAMPLE_RATE, clip)) for x in inputs]
        together = extractor.extract_batch(prepared)
        for i, (p, f) in enumerate(zip(prepared, together)):
            alone = np.asarray(extractor.extract_batch([p])[0])
            if alone.shape != np.asarray(f).shape or not np.allclose(alone, f, rtol=1e-4, atol=1e-5):
                _fail(who, f"input {i} gave other features in a batch than alone",
                      "pad and mask inside extract_batch so that batch mates do not change a clip's features")
    return features


# -- pipelines, corpora, plugins -----------------------------------------------------------------
def _check_spec(spec: Any) -> None:
    who = f"pipeline {spec.name}"
    if spec.default_profile not in spec.profiles:
        _fail(who, f"its default profile {spec.default_profile!r} is not among its profiles {list(spec.profiles)}",
              "declare profiles={'quick': {...}, 'paper': {...}} (quick: CPU-sized, the default)")
    for key, param in spec.params.items():
        if not param.help:
            _fail(who, f"parameter {key} has no help text", "Param(default, 'what it does'); `emokit pipelines` shows it")
    accepted = inspect.signature(spec.build).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        missing = sorted(set(spec.params) - set(accepted))
        if missing:
            _fail(who, f"build does not take the declared parameters {missing}",
                  "build receives each parameter with a default by name, those without one as **model_params")
    try:
        defaults = spec.defaults
    except ValueError as exc:
        _fail(who, str(exc), "a Param without a default names a parameter of the model build returns, "
                             "nested ones as component__param")
    for key, param in spec.params.items():
        default = defaults[key]
        if isinstance(default, (bool, int, float, str)) and not param.weights:
            if spec.coerce(key, str(default)) != default:
                _fail(who, f"parameter {key}: -p {key}={default} does not give back its default")
    for profile in spec.profiles:
        spec.resolve(profile)


def _fold_inputs(registry: Any, run: Any, fold: int) -> list[dict[str, Any]]:
    return [p for p in registry.predictions(run.run_id) if p.fold == fold]


def check_pipeline(name: str, corpus: Corpus | None = None, registry: Any = None, *, host: Any = None,
                   profile: str | None = None, params: Mapping[str, Any] | None = None, seed: int = 0,
                   inputs: Sequence[str] = (), cache_dir: str | Path | None = None,
                   allow: Sequence[str] = ()) -> Any:
    """A registered pipeline, end to end.

    Without a corpus: the declaration (profiles resolve, every parameter has help text, ``build``
    takes them) and what ``build`` returns (a :class:`~emokit_core.specs.Recipe` whose extractor
    matches the modality and whose model follows scikit-learn's conventions, or such a fuser).  With a corpus: the runner's
    subject-wise protocol into ``registry`` (a temporary one if None), every fold recorded, the
    run on the leaderboard, and each fold's model loaded back from the artifact store predicting
    exactly the posteriors recorded for its held-out clips.  A fuser is run on the ``inputs``
    pipelines (one per modality, e.g. ``("speech.zeror", "face.zeror")``).  Returns the :class:`~emokit_core.runner.PipelineRun`, or the build without a corpus.
    """
    from .cache import FeatureCache
    from .folds import aligned_proba
    from .plugins import get_host
    from .registry import Registry
    from .runner import Runner
    from .specs import Recipe

    host = host or get_host()
    spec = host.pipeline(name)
    _check_spec(spec)
    _, values = spec.resolve(profile, params)
    weights = {k: None for k, p in spec.params.items() if p.weights}
    built = spec.create({**values, **weights})
    who = f"pipeline {name}"
    if spec.modality == FUSION:
        if not isinstance(built, Fuser):
            _fail(who, f"build returned {type(built).__name__}, not a fuser", "return an object with fit/predict_proba")
        _check_estimator_params(built, f"{who} fuser")
    else:
        if not isinstance(built, Recipe):
            _fail(who, f"build returned {type(built).__name__}, not a Recipe",
                  "return Recipe(extractor=..., model=...)")
        if built.extractor is not None and getattr(built.extractor, "modality", None) != spec.modality:
            _fail(who, f"its extractor's modality is {getattr(built.extractor, 'modality', None)!r}, "
                       f"the pipeline's {spec.modality!r}")
        _check_estimator_params(built.model, f"{who} model")
    if corpus is None:
        return built
    if spec.modality == FUSION and len(inputs) < 2:
        _fail(who, "check_pipeline of a fuser needs inputs=(...), two or more modality pipelines to fuse",
              "e.g. inputs=('speech.zeror', 'face.zeror')")
    with contextlib.ExitStack() as scratch:  # temporary registry and cache are removed afterwards
        def temporary(prefix: str) -> Path:
            return Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))

        if registry is None:
            registry = scratch.enter_context(Registry(temporary("emokit-check-") / "r.db"))
        cache = FeatureCache(Path(cache_dir) if cache_dir else temporary("emokit-features-"))
        runner = Runner(host, registry, cache, workers=1)
        names = [*inputs, name] if spec.modality == FUSION else [name]
        outcome = runner.run(names, corpus, profile=profile, overrides={name: dict(params)} if params else None,
                             seed=seed, resume=False)
        run = outcome.runs[-1]
        recorded = registry.get_run(run.run_id)
        if recorded.status != "finished" or len(recorded.fold_results) != len(corpus.folds):
            _fail(who, f"run {run.run_id} is {recorded.status} with {len(recorded.fold_results)} of "
                       f"{len(corpus.folds)} folds")
        if not any(r.model == name and r.run_id == run.run_id
                   for r in registry.leaderboard(corpus=corpus.name)):
            _fail(who, f"run {run.run_id} is not on the leaderboard of {corpus.name}")
        clip_of = {c.id: c for c in corpus.clips}
        if spec.modality == FUSION:
            by_input = {r.pipeline: {p.clip_id: p.probs for p in registry.predictions(r.run_id)}
                        for r in outcome.runs[:-1]}
        else:  # the recipe as the run built it (the runner may have chosen another profile)
            built = spec.create({**run.params, **runner.resolve_weights(spec, run.params)})
            keys = runner.extract(corpus, {name: built})[0].get(name) if built.extractor is not None else None
        for fold in range(len(corpus.folds)):
            held_out = _fold_inputs(registry, run, fold)
            if spec.modality == FUSION:
                X: Any = {k: np.array([v[p.clip_id] for p in held_out]) for k, v in by_input.items()}
            elif keys is None:
                X = [clip_of[p.clip_id] for p in held_out]
            else:
                X = [cache.load(keys[p.clip_id]) for p in held_out]
            trusted = _trusted_packages(built if spec.modality == FUSION else built.model,
                                        (getattr(spec.build, "__module__", "").split(".")[0], *allow))
            model = RestrictedUnpickler(registry.fold_artifact(run.run_id, fold, MODEL_ARTIFACT), trusted).load()
            again = aligned_proba(model, np.asarray(model.predict_proba(X)), len(corpus.classes))
            if not np.allclose(again, np.array([p.probs for p in held_out]), rtol=0, atol=1e-6):
                _fail(who, f"fold {fold}'s model loaded from the registry predicts other posteriors than were recorded",
                      "everything predict_proba uses must be in the pickled state (see __getstate__)")
        return run


def check_corpus(name: str, path: str | Path | None = None, *, host: Any = None, **options: Any) -> Corpus:
    """A registered corpus reader: clips with unique ids and labels among ``classes``, media that
    exist, every actor held out in exactly one fold, and a stable fingerprint.  Returns the corpus."""
    from .plugins import get_host

    host = host or get_host()
    corpus = host.read_corpus(name, Path(path) if host.corpus(name).needs_path else path, **options)
    who = f"corpus {name}"
    if not isinstance(corpus, Corpus):
        _fail(who, f"load returned {type(corpus).__name__}, not an emokit_core.contracts.Corpus")
    if not corpus.clips or not corpus.classes:
        _fail(who, "has no clips or no classes")
    ids = [c.id for c in corpus.clips]
    if len(set(ids)) != len(ids):
        _fail(who, "clip ids repeat", "make Clip.id unique (e.g. the file name without extension)")
    stray = sorted({c.label for c in corpus.clips} - set(corpus.classes))
    if stray:
        _fail(who, f"labels {stray} are not among classes {list(corpus.classes)}")
    missing = [str(p) for c in corpus.clips for p in (c.audio_path, c.video_path) if p is not None and not p.exists()]
    if missing:
        _fail(who, f"{len(missing)} media files do not exist, e.g. {missing[0]}")
    if not corpus.clips[0].audio_path and not corpus.clips[0].video_path:
        _fail(who, "its clips have neither audio_path nor video_path")
    held = [a for fold in corpus.folds for a in fold]
    actors = {c.actor for c in corpus.clips}
    if len(held) != len(set(held)) or set(held) != actors or any(not fold for fold in corpus.folds):
        _fail(who, f"folds {corpus.folds} do not hold out each of the actors {sorted(actors)} exactly once",
              "list, per fold, the actors it holds out; every actor in exactly one fold")
    if corpus.fingerprint() != corpus.fingerprint():
        _fail(who, "its fingerprint changes between two calls")
    return corpus


def check_plugin(module: Any, *, distribution: str = "local") -> Any:
    """A plugin module (or its import name), loaded as ``emokit`` loads it, beside every other
    installed plugin: no load error, ``EMOKIT_PLUGIN_API`` declared and current, something
    registered, no name clash, each pipeline declaration sound, and no heavy library imported
    at module level (every command loads every plugin).  Returns the :class:`PluginHost`."""
    from .plugins import PluginHost, entry_point_sources, module_source

    module = importlib.import_module(module) if isinstance(module, str) else module
    who = f"plugin {module.__name__}"
    others = [s for s in entry_point_sources() if s.module != module.__name__]
    host = PluginHost([*others, module_source(module, distribution=distribution)])
    info = host.plugins[-1]
    if info.error:
        _fail(who, f"was skipped: {info.error}")
    if getattr(module, "EMOKIT_PLUGIN_API", None) != PLUGIN_API_VERSION:
        _fail(who, f"declares EMOKIT_PLUGIN_API = {getattr(module, 'EMOKIT_PLUGIN_API', None)!r}",
              f"set EMOKIT_PLUGIN_API = {PLUGIN_API_VERSION} at module level (the contract it is written for)")
    clashes = [f"{kind} {key!r}" for (kind, key), owners in host.conflicts.items() if info in owners]
    if clashes:
        _fail(who, f"registers names that another plugin registers too: {', '.join(clashes)}",
              "name pipelines <modality>.<yourname>_..., components with your plugin's prefix")
    if not info.registered and not hasattr(module, "register_commands"):
        _fail(who, "registers nothing", "implement register_pipelines / register_components / ... with @hookimpl")
    for key in info.registered.get("pipeline", []):
        _check_spec(host.pipeline(key))
    if importlib.util.find_spec(module.__name__) is None:
        return host  # a module made in memory (a test's) has no import to measure
    probe = (f"import sys; import {module.__name__}; "
             f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # finds what this process finds
    heavy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                           env=env).stdout.split()
    if heavy:
        _fail(who, f"importing it imports {', '.join(heavy)}",
              "import heavy libraries inside build functions and component methods: every emokit command "
              "loads every plugin at start-up")
    return host


# -- pytest fixtures -----------------------------------------------------------------------------
def pytest_addoption(parser: Any) -> None:
    parser.addoption("--emokit-corpora", default=None, metavar="DIR",
                     help="where emokit's fixtures keep generated corpora [default: pytest's cache folder]")


@pytest.fixture
def emokit_home(tmp_path: Path, monkeypatch: Any) -> Path:
    """``EMOKIT_HOME`` (feature cache, demo corpora) in a temporary folder; no registry from the environment."""
    home = tmp_path / "emokit-home"
    monkeypatch.setenv("EMOKIT_HOME", str(home))
    for variable in ("EMOKIT_REGISTRY", "EMOKIT_CACHE", "EMOKIT_ARTIFACTS"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def emokit_registry(tmp_path: Path):
    """An empty registry (SQLite and artifact store) in a temporary folder."""
    from .registry import Registry

    registry = Registry(tmp_path / "registry.db")
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def emokit_tiny_corpus(request: Any, tmp_path_factory: Any) -> Corpus:
    """The tiny demo corpus (``TINY_CORPUS``: 5 actors, one per fold, 3 emotions, 50 audio-visual
    clips at 320x180), generated on first use (seconds) and kept between sessions."""
    from .plugins import get_host

    chosen = request.config.getoption("--emokit-corpora")
    cache = getattr(request.config, "cache", None)
    folder = (Path(chosen) if chosen else cache.mkdir("emokit-corpora") if cache else tmp_path_factory.mktemp("corpora"))
    # The demo corpus reader regenerates a folder made by another generator version.
    return get_host().read_corpus("demo", folder / "tiny", **TINY_CORPUS, workers=2)
