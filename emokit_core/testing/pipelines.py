"""Conformance checks of what a plugin registers: a pipeline through the real protocol, a corpus
reader, and the plugin module itself (loaded beside the built-ins, no heavy import at load)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import PLUGIN_API_VERSION
from ..contracts import (FUSION, Corpus, Fuser)
from ..registry.artifacts import MODEL_ARTIFACT, RestrictedUnpickler
from .components import check_estimator_params, fail, trusted_packages

# Libraries a plugin module must not import when it is loaded: every `emokit` command loads
# all plugins at start-up, so they belong inside build functions and factories.
HEAVY_MODULES = ("numpy", "scipy", "sklearn", "pandas", "torch", "torchaudio", "torchvision", "tensorflow", "jax",
                 "cv2", "av", "librosa", "opensmile", "transformers")


def _check_spec(spec: Any) -> None:
    who = f"pipeline {spec.name}"
    if spec.default_profile not in spec.profiles:
        fail(who, f"its default profile {spec.default_profile!r} is not among its profiles {list(spec.profiles)}",
              "declare profiles={'quick': {...}, 'paper': {...}} (quick: CPU-sized, the default)")
    for key, param in spec.params.items():
        if not param.help:
            fail(who, f"parameter {key} has no help text", "Param(default, 'what it does'); `emokit pipelines` shows it")
    accepted = inspect.signature(spec.build).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        missing = sorted(set(spec.params) - set(accepted))
        if missing:
            fail(who, f"build does not take the declared parameters {missing}",
                  "build receives each parameter with a default by name, those without one as **model_params")
    try:
        defaults = spec.defaults
    except ValueError as exc:
        fail(who, str(exc), "a Param without a default names a parameter of the model build returns, "
                             "nested ones as component__param")
    for key, param in spec.params.items():
        default = defaults[key]
        if isinstance(default, (bool, int, float, str)) and not param.weights:
            if spec.coerce(key, str(default)) != default:
                fail(who, f"parameter {key}: -p {key}={default} does not give back its default")
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
    from ..cache import FeatureCache
    from ..folds import aligned_proba
    from ..plugins import get_host
    from ..registry import Registry
    from ..runner import Runner
    from ..specs import Recipe

    host = host or get_host()
    spec = host.pipeline(name)
    _check_spec(spec)
    _, values = spec.resolve(profile, params)
    weights = {k: None for k, p in spec.params.items() if p.weights}
    built = spec.create({**values, **weights})
    who = f"pipeline {name}"
    if spec.modality == FUSION:
        if not isinstance(built, Fuser):
            fail(who, f"build returned {type(built).__name__}, not a fuser", "return an object with fit/predict_proba")
        check_estimator_params(built, f"{who} fuser")
    else:
        if not isinstance(built, Recipe):
            fail(who, f"build returned {type(built).__name__}, not a Recipe",
                  "return Recipe(extractor=..., model=...)")
        if built.extractor is not None and getattr(built.extractor, "modality", None) != spec.modality:
            fail(who, f"its extractor's modality is {getattr(built.extractor, 'modality', None)!r}, "
                       f"the pipeline's {spec.modality!r}")
        check_estimator_params(built.model, f"{who} model")
    if corpus is None:
        return built
    if spec.modality == FUSION and len(inputs) < 2:
        fail(who, "check_pipeline of a fuser needs inputs=(...), two or more modality pipelines to fuse",
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
            fail(who, f"run {run.run_id} is {recorded.status} with {len(recorded.fold_results)} of "
                       f"{len(corpus.folds)} folds")
        if not any(r.model == name and r.run_id == run.run_id
                   for r in registry.leaderboard(corpus=corpus.name)):
            fail(who, f"run {run.run_id} is not on the leaderboard of {corpus.name}")
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
            trusted = trusted_packages(built if spec.modality == FUSION else built.model,
                                        (getattr(spec.build, "__module__", "").split(".")[0], *allow))
            model = RestrictedUnpickler(registry.fold_artifact(run.run_id, fold, MODEL_ARTIFACT), trusted).load()
            again = aligned_proba(model, np.asarray(model.predict_proba(X)), len(corpus.classes))
            if not np.allclose(again, np.array([p.probs for p in held_out]), rtol=0, atol=1e-6):
                fail(who, f"fold {fold}'s model loaded from the registry predicts other posteriors than were recorded",
                      "everything predict_proba uses must be in the pickled state (see __getstate__)")
        return run


def check_corpus(name: str, path: str | Path | None = None, *, host: Any = None, **options: Any) -> Corpus:
    """A registered corpus reader: clips with unique ids and labels among ``classes``, media that
    exist, every actor held out in exactly one fold, and a stable fingerprint.  Returns the corpus."""
    from ..plugins import get_host

    host = host or get_host()
    corpus = host.read_corpus(name, Path(path) if host.corpus(name).needs_path else path, **options)
    who = f"corpus {name}"
    if not isinstance(corpus, Corpus):
        fail(who, f"load returned {type(corpus).__name__}, not an emokit_core.contracts.Corpus")
    if not corpus.clips or not corpus.classes:
        fail(who, "has no clips or no classes")
    ids = [c.id for c in corpus.clips]
    if len(set(ids)) != len(ids):
        fail(who, "clip ids repeat", "make Clip.id unique (e.g. the file name without extension)")
    stray = sorted({c.label for c in corpus.clips} - set(corpus.classes))
    if stray:
        fail(who, f"labels {stray} are not among classes {list(corpus.classes)}")
    missing = [str(p) for c in corpus.clips for p in (c.audio_path, c.video_path) if p is not None and not p.exists()]
    if missing:
        fail(who, f"{len(missing)} media files do not exist, e.g. {missing[0]}")
    if not corpus.clips[0].audio_path and not corpus.clips[0].video_path:
        fail(who, "its clips have neither audio_path nor video_path")
    held = [a for fold in corpus.folds for a in fold]
    actors = {c.actor for c in corpus.clips}
    if len(held) != len(set(held)) or set(held) != actors or any(not fold for fold in corpus.folds):
        fail(who, f"folds {corpus.folds} do not hold out each of the actors {sorted(actors)} exactly once",
              "list, per fold, the actors it holds out; every actor in exactly one fold")
    if corpus.fingerprint() != corpus.fingerprint():
        fail(who, "its fingerprint changes between two calls")
    return corpus


def check_plugin(module: Any, *, distribution: str = "local") -> Any:
    """A plugin module (or its import name), loaded as ``emokit`` loads it, beside every other
    installed plugin: no load error, ``EMOKIT_PLUGIN_API`` declared and current, something
    registered, no name clash, each pipeline declaration sound, and no heavy library imported
    at module level (every command loads every plugin).  Returns the :class:`PluginHost`."""
    from ..plugins import PluginHost, entry_point_sources, module_source

    module = importlib.import_module(module) if isinstance(module, str) else module
    who = f"plugin {module.__name__}"
    others = [s for s in entry_point_sources() if s.module != module.__name__]
    host = PluginHost([*others, module_source(module, distribution=distribution)])
    info = host.plugins[-1]
    if info.error:
        fail(who, f"was skipped: {info.error}")
    if getattr(module, "EMOKIT_PLUGIN_API", None) != PLUGIN_API_VERSION:
        fail(who, f"declares EMOKIT_PLUGIN_API = {getattr(module, 'EMOKIT_PLUGIN_API', None)!r}",
              f"set EMOKIT_PLUGIN_API = {PLUGIN_API_VERSION} at module level (the contract it is written for)")
    clashes = [f"{kind} {key!r}" for (kind, key), owners in host.conflicts.items() if info in owners]
    if clashes:
        fail(who, f"registers names that another plugin registers too: {', '.join(clashes)}",
              "name pipelines <modality>.<yourname>_..., components with your plugin's prefix")
    if not info.registered and not hasattr(module, "register_commands"):
        fail(who, "registers nothing", "implement register_pipelines / register_components / ... with @hookimpl")
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
        fail(who, f"importing it imports {', '.join(heavy)}",
              "import heavy libraries inside build functions and component methods: every emokit command "
              "loads every plugin at start-up")
    return host


# -- pytest fixtures -----------------------------------------------------------------------------
