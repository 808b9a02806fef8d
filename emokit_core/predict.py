"""Prediction on new clips with a registered model: its fold models as an ensemble.

A run keeps one fitted model per cross-validation fold.  A new clip goes through the run's
extractor (rebuilt from the pipeline and the parameters and weights recorded with the run),
every fold model, and the mean of their posteriors.  A fusion model runs each input run's
ensemble first, then its own fold models on their posteriors.

>>> from emokit_core.predict import Predictor
>>> result = Predictor.load("fuse.svm_linear", registry="registry.db").predict("clip.mp4")
>>> result.label, result.posteriors["happy"], result.frames      # frames: per-frame face posteriors
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .contracts import FACE, FUSION, SPEECH, Clip
from .errors import EmokitError, MediaError, RegistryError, WeightsError
from .registry.artifacts import MODEL_ARTIFACT, SAFE_MODULES, load_model

if TYPE_CHECKING:  # numpy is not imported at start-up: `emokit --help` stays fast
    import numpy as np

    from .registry.records import RunRecord


@dataclass
class FramePosteriors:
    """A face model's posteriors for every frame it read: ``times[i]`` (in ``unit``, seconds
    where the video declares its frame rate) and ``posteriors[i]`` over ``classes``."""

    times: "np.ndarray"
    posteriors: "np.ndarray"  # [frames, classes], mean over the fold models' frame classifiers
    classes: tuple[str, ...]
    unit: str = "s"

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "times": [round(float(t), 4) for t in self.times],
                "posteriors": [[float(p) for p in row] for row in self.posteriors]}


@dataclass
class ModalityPrediction:
    model: str  # NAME@VERSION
    run_id: int
    modality: str
    label: str
    posteriors: dict[str, float]  # the mean of fold_posteriors
    fold_posteriors: "np.ndarray"  # [folds, classes]: each fold model's posteriors
    frames: FramePosteriors | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "run_id": self.run_id, "modality": self.modality, "label": self.label,
                "posteriors": self.posteriors, "fold_posteriors": self.fold_posteriors.tolist(),
                "frames": self.frames.to_dict() if self.frames else None}


@dataclass
class ClipPrediction:
    """What a model says about one file: ``label`` and ``posteriors`` (by class name) of the
    model itself, ``modalities`` the ensemble of each modality run it reads (by pipeline)."""

    path: str
    model: str
    run_id: int
    modality: str
    label: str
    posteriors: dict[str, float]
    fold_posteriors: "np.ndarray"  # [folds, classes]
    modalities: dict[str, ModalityPrediction] = field(default_factory=dict)

    @property
    def frames(self) -> FramePosteriors | None:
        """Per-frame posteriors of the (first) face model, ``None`` without one."""
        return next((m.frames for m in self.modalities.values() if m.frames is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "model": self.model, "run_id": self.run_id, "modality": self.modality,
                "label": self.label, "posteriors": self.posteriors, "fold_posteriors": self.fold_posteriors.tolist(),
                "modalities": {name: m.to_dict() for name, m in self.modalities.items()}}


def plugin_packages(host: Any) -> tuple[str, ...]:
    """The top-level packages of the plugins loaded in ``host``: stored models may use their classes."""
    return tuple(sorted({p.module.split(".")[0] for p in host.plugins if not p.error}))


class _Ensemble:
    """A finished run's fold models (checksummed artifacts) and the mean of their posteriors."""

    def __init__(self, registry: Any, run: RunRecord, allowed: Sequence[str] = ()):
        self.run = run
        self.allowed = tuple(allowed)  # packages (the installed plugins') a fold model may reference
        self.name = run.ref
        self.classes = tuple(run.corpus.classes)
        self.models = [self._load(registry, fold) for fold in range(len(run.folds))]

    def _load(self, registry: Any, fold: int) -> Any:
        data = registry.fold_artifact(self.run.run_id, fold, MODEL_ARTIFACT)  # SHA-256 verified
        try:
            return load_model(data, self.allowed)
        except pickle.UnpicklingError as exc:
            raise EmokitError(f"{self.name} (run {self.run.run_id}): the model of fold {fold} refers to {exc}, "
                              f"which is neither in an installed emokit plugin nor in {', '.join(SAFE_MODULES)}; "
                              f"it was not loaded", "install the plugin that trained it (emokit plugins lists "
                              "those installed); if the artifact was not made by emokit, do not load it") from exc
        except Exception as exc:  # noqa: BLE001 - a class renamed or removed since the run
            raise EmokitError(f"{self.name} (run {self.run.run_id}): the model of fold {fold} cannot be loaded "
                              f"({type(exc).__name__}: {exc})",
                              "install the plugin version that trained it (emokit runs show "
                              f"{self.run.run_id} lists its libraries), or retrain it") from exc

    def fold_proba(self, x: Any) -> "np.ndarray":
        """``[folds, classes]``: each fold model's posteriors for the one input ``x``."""
        import numpy as np

        from .folds import aligned_proba

        n = len(self.classes)
        return np.vstack([aligned_proba(m, np.asarray(m.predict_proba(x)), n) for m in self.models])

    def named(self, proba: "np.ndarray") -> tuple[str, dict[str, float]]:
        return self.classes[int(proba.argmax())], {c: float(p) for c, p in zip(self.classes, proba)}


class _ModalityModel(_Ensemble):
    """A speech or face run: its extractor and fold models."""

    def __init__(self, registry: Any, host: Any, run: RunRecord):
        super().__init__(registry, run, plugin_packages(host))
        self.modality = run.modality
        self.pipeline = run.model
        spec = host.pipeline(self.pipeline)
        params = dict(run.params or {})
        unknown = sorted(set(params) - set(spec.params))
        if unknown:
            raise EmokitError(f"{self.name} (run {run.run_id}) was trained with parameters {unknown}, which the "
                              f"installed {self.pipeline} no longer has",
                              "install the plugin version that trained it, or retrain the model")
        weights = {key: _recorded_weights(registry, host, run, key) for key, p in spec.params.items() if p.weights}
        recipe = spec.create({**spec.defaults, **params, **weights})
        self.extractor = recipe.extractor  # None: the model reads no media (ZeroR)

    def frame_posteriors(self, frames: "np.ndarray", times: "np.ndarray", unit: str) -> FramePosteriors | None:
        """Per-frame posteriors where every fold model classifies frames into the target classes
        (a FrameClipModel whose frame classifier is not a frozen feature extractor, which says so
        with ``predicts_classes_ = False``)."""
        import numpy as np

        from .folds import aligned_proba

        classifiers = [getattr(m, "frame_classifier_", None) for m in self.models]
        if any(c is None or not getattr(c, "predicts_classes_", True) for c in classifiers) or np.ndim(frames) < 2:
            return None
        rows = np.asarray(frames).reshape(len(frames), -1)
        n = len(self.classes)
        mean = np.mean([aligned_proba(c, np.asarray(c.predict_proba(rows)), n) for c in classifiers], axis=0)
        return FramePosteriors(times, mean, self.classes, unit)


def _recorded_weights(registry: Any, host: Any, run: Any, key: str):
    """The checkpoint the run started from, found and checked as the runner did (None: random init)."""
    from .specs import WeightsRef

    recorded = (run.weights or {}).get(key)
    if not recorded or recorded.get("init") == "random":
        return None
    ref = recorded.get("name") or recorded["path"]
    try:
        resolved = registry.resolve_weights(ref, host.weights)
    except (RegistryError, WeightsError):
        if ref == recorded["path"]:
            raise
        # The name is gone or points at a changed file: the file the run read may still be there.
        resolved = registry.resolve_weights(recorded["path"])
    if resolved.sha256 != recorded["sha256"]:
        raise WeightsError(f"{run.ref} (run {run.run_id}) was trained from weights {ref!r} with SHA-256 "
                           f"{recorded['sha256'][:12]}…, but {resolved.path} has {resolved.sha256[:12]}…",
                           "restore the checkpoint the model was trained from")
    return WeightsRef(path=resolved.path, sha256=resolved.sha256, name=resolved.name)


class Predictor:
    """A registered model ready to predict files; :meth:`load` it by ``NAME[@VERSION]``."""

    def __init__(self, run: RunRecord, inputs: Sequence[_ModalityModel], fuser: _Ensemble | None):
        self.run = run
        self.inputs = list(inputs)
        self.fuser = fuser
        self.name = run.ref
        self.classes = tuple(run.corpus.classes)

    @classmethod
    def load(cls, model: str, registry: Any = None, *, host: Any = None) -> "Predictor":
        """``model``: ``NAME`` (its newest finished version) or ``NAME@VERSION``; ``registry``: a
        :class:`~emokit_core.registry.Registry`, a URL or path (default: ``EMOKIT_REGISTRY`` or
        ``./registry.db``).  Every fold model is loaded (and its checksum checked) here."""
        from .plugins import get_host
        from .registry import Registry

        registry = registry if hasattr(registry, "fold_artifact") else Registry(registry)
        host = host or get_host()
        run = registry.latest_run(model)
        if run.modality != FUSION:
            return cls(run, [_ModalityModel(registry, host, run)], None)
        inputs = []
        for pipeline, run_id in sorted(run.inputs.items()):
            input_run = registry.get_run(run_id)
            if input_run.status != "finished":
                raise EmokitError(f"{run.ref} fuses run {run_id} ({input_run.ref}), which is "
                                  f"{input_run.status}", f"finish it (emokit run {pipeline} resumes it)")
            inputs.append(_ModalityModel(registry, host, input_run))
        return cls(run, inputs, _Ensemble(registry, run, plugin_packages(host)))

    @property
    def has_face(self) -> bool:
        return any(m.modality == FACE for m in self.inputs)

    def predict(self, path: str | Path) -> ClipPrediction:
        """Decode ``path`` (mp4, or wav/flac for speech models) once and predict it."""
        from .media import AUDIO_FILES

        path = Path(path)
        if not path.is_file():
            raise MediaError(f"{path}: no such file", "give the path of an mp4 (or, for speech models, wav) file")
        if path.suffix.lower() in AUDIO_FILES and self.has_face:
            speech = [m.name for m in self.inputs if m.modality == SPEECH]
            raise MediaError(f"{path}: is an audio file, and {self.name} reads faces from a video",
                             "give an mp4 (audio-visual) file"
                             + (f", or predict the speech part alone: --model {speech[0]}" if speech else ""))
        features, video = self._extract(path)
        modalities: dict[str, ModalityPrediction] = {}
        for m in self.inputs:
            folds = m.fold_proba([features[m.pipeline]])
            label, named = m.named(folds.mean(axis=0))
            frames = None
            if m.modality == FACE and m.extractor is not None:
                frames = m.frame_posteriors(features[m.pipeline], *_frame_times(len(features[m.pipeline]), video))
            modalities[m.pipeline] = ModalityPrediction(m.name, m.run.run_id, m.modality, label, named, folds,
                                                        frames)
        if self.fuser is None:
            only = modalities[self.inputs[0].pipeline]
            return ClipPrediction(str(path), self.name, self.run.run_id, only.modality, only.label,
                                  only.posteriors, only.fold_posteriors, modalities)
        # The fuser's fold models read each modality's ensemble posteriors.
        folds = self.fuser.fold_proba({name: m.fold_posteriors.mean(axis=0, keepdims=True)
                                       for name, m in modalities.items()})
        label, named = self.fuser.named(folds.mean(axis=0))
        return ClipPrediction(str(path), self.name, self.run.run_id, FUSION, label, named, folds, modalities)

    def _extract(self, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every input's features from one decode of ``path``; and what the video said (fps, frames)."""
        from .extraction import extract_clip
        from .media import AUDIO_FILES

        is_audio = path.suffix.lower() in AUDIO_FILES
        clip = Clip(id=path.stem, actor="", label="", audio_path=path, video_path=None if is_audio else path)
        extracted = extract_clip(clip, [(m.pipeline, m.extractor) for m in self.inputs if m.extractor is not None],
                                 batch_here=True)
        features: dict[str, Any] = {m.pipeline: clip for m in self.inputs if m.extractor is None}
        features.update(extracted.features)
        video = {"fps": extracted.video.fps if extracted.video else 0.0, "frames": extracted.frames}
        return features, video


def _frame_times(rows: int, video: Mapping[str, Any]) -> tuple["np.ndarray", str]:
    """Where each feature row sits in the clip: rows spread evenly over the decoded frames (an
    extractor that keeps every n-th frame keeps rows ``n`` frames apart)."""
    import numpy as np

    step = video["frames"] / rows if rows else 0.0
    positions = np.arange(rows) * step
    return (positions / video["fps"], "s") if video["fps"] > 0 else (positions, "frame")


def save_timeline(prediction: ClipPrediction, out: str | Path) -> Path:
    """Plot the per-frame face posteriors of ``prediction`` over time into ``out`` (png, svg, pdf)."""
    from . import plots

    faces = [m for m in prediction.modalities.values() if m.frames is not None]
    if not faces:
        raise EmokitError(f"{prediction.model} gives no per-frame face posteriors for {prediction.path}",
                          "--timeline needs a face model that classifies frames (e.g. face.pixels_vote, face.stn_vote)")
    figure = plots.figure(9, 2.6 * len(faces) + 0.6, layout="constrained")
    axes = figure.subplots(len(faces), 1, squeeze=False)[:, 0]
    for ax, m in zip(axes, faces):
        for i, name in enumerate(m.frames.classes):
            if m.frames.posteriors[:, i].max() > 0:  # classes no frame gives any weight stay out of the way
                ax.plot(m.frames.times, m.frames.posteriors[:, i], label=name, linewidth=1.4)
        ax.set_ylim(0, 1)
        ax.set_ylabel("posterior")
        ax.set_title(f"{m.model}: {m.label} ({100 * m.posteriors[m.label]:.0f} %)", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    axes[-1].set_xlabel("time (s)" if faces[0].frames.unit == "s" else "frame")
    figure.suptitle(f"{Path(prediction.path).name} - {prediction.model}: {prediction.label}", fontsize=11)
    return plots.save(figure, out, hint="give a writable path ending in .png, .svg or .pdf", bbox_inches=None)
