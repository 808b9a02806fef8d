"""Voice activity detection: trim a clip's audio to its speech (paper, section 3.2.2).

The paper keeps the region from the first instant detected as speech to the last one (a single
chunk per recording) and keeps the whole original recording when no speech is detected.
:func:`trim_to_speech` does exactly that with one of three methods:

``none``
    The identity: the audio comes back unchanged (the paper's "without VAD" arm).
``silero``
    Silero VAD (the default).  The ``silero-vad`` wheel (6.2.3: an 11 MB download, ~14 MB
    installed) requires only ``torch>=1.12`` and ``packaging``, which emokit already has; it
    does **not** pull in onnxruntime, torchaudio or torchcodec (those are its optional extras
    ``onnx-cpu`` / ``audio``, needed only for its ONNX models and its file readers, neither of
    which is used here).  The model files (TorchScript ``silero_vad.jit``, 2.3 MB, plus ONNX
    variants) ship inside the wheel as package data and ``load_silero_vad()`` reads them from
    there, so it works offline: no ``torch.hub``, no download (verified in a network namespace
    with no network).  Inference runs on the CPU on one intra-op thread (set for the call and
    restored after; more threads only contend on its tiny steps), about 0.1 s for a 4.5 s clip.
    Importing ``silero_vad`` calls ``torch.set_num_threads(1)`` as a side effect; the loader
    below restores the caller's setting.
``ina``
    inaSpeechSegmenter, the VAD the paper used.  Optional and heavy: it needs TensorFlow and an
    ``ffmpeg`` program, and downloads its Keras models on first use into
    ``~/.keras/inaSpeechSegmenter/``.  When any of that is missing an
    :class:`~emokit_core.errors.EmokitError` names the clip, what is missing and what to install.
    Run with ``vad_engine="smn"`` and no gender detection, its labels are the paper's 'speech',
    'music', 'noise' and 'noEnergy' ('male'/'female' also count as speech).

Models are loaded lazily (torch, silero and TensorFlow are imported only when a clip is first
trimmed with that method), once per process, and cached.  One lock per process guards loading
and inference (the silero model carries recurrent state between its 32 ms windows, so two
threads must not interleave on it); after ``fork`` the child starts with a fresh lock and
reloads its models rather than reuse ones its parent may have been using.

In an extractor, hold a :class:`VadTrim` and fold its ``cache_version`` into the extractor's own,
so that a change in VAD behaviour (this module's ``VAD_VERSION``, the method, or the installed
backend's version) changes the feature-cache keys.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.errors import EmokitError, MediaError

SAMPLE_RATE = 16_000  # what silero runs at; other rates are resampled for detection only
METHODS = ("none", "silero", "ina")
SPEECH_LABELS = frozenset({"speech", "male", "female"})  # inaSpeechSegmenter labels that are speech
VAD_VERSION = "1"  # bump whenever the trimming behaviour of this module changes

SILERO_HINT = "pip install silero-vad (its wheel carries the model; nothing is downloaded), or use vad=none"
INA_HINT = (
    "pip install inaSpeechSegmenter tensorflow, and put the ffmpeg program on PATH; its models are "
    "downloaded on first use from github.com/ina-foss/inaSpeechSegmenter releases into "
    "~/.keras/inaSpeechSegmenter/ (under $KERAS_HOME if set), so that must be reachable or already "
    "hold them -- or use vad=silero, which needs none of this"
)

_lock = threading.Lock()
_models: dict[str, Any] = {}


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent's may have been held by another thread at fork time
    _models.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _where(clip_name: str) -> str:
    return f"clip {clip_name}" if clip_name else "audio"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "missing"


# -- silero ----------------------------------------------------------------------------------

def _load_silero(where: str) -> Any:
    """The packaged TorchScript model and the timestamp helper (call with ``_lock`` held)."""
    try:
        import torch
    except ImportError as exc:
        raise EmokitError(f"{where}: VAD 'silero' needs torch, which cannot be imported ({_first_line(exc)})",
                          "pip install torch, or use vad=none") from exc
    threads = torch.get_num_threads()
    try:
        import silero_vad
    except ImportError as exc:
        raise EmokitError(f"{where}: VAD 'silero' needs the silero-vad package, which cannot be imported "
                          f"({_first_line(exc)})", SILERO_HINT) from exc
    finally:
        if torch.get_num_threads() != threads:  # silero_vad.model sets 1 thread on import
            torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():  # its importlib.resources.path() call is deprecated upstream
            warnings.simplefilter("ignore", DeprecationWarning)
            model = silero_vad.load_silero_vad(onnx=False)
    except Exception as exc:
        raise EmokitError(f"{where}: silero-vad cannot load its packaged model ({_first_line(exc)})",
                          "reinstall it: pip install --force-reinstall silero-vad, or use vad=none") from exc
    return model, silero_vad.get_speech_timestamps


def _silero_segments(audio: np.ndarray, sample_rate: int, where: str, threshold: float,
                     min_speech_ms: int, speech_pad_ms: int) -> list[tuple[float, float]]:
    """Speech regions in seconds."""
    import torch

    if sample_rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sample_rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(sample_rate) // g)
    wave = torch.from_numpy(np.array(audio, dtype=np.float32, copy=True))
    with _lock:
        if "silero" not in _models:
            _models["silero"] = _load_silero(where)
        model, timestamps = _models["silero"]
        # Hundreds of tiny steps per clip: extra intra-op threads only spin and contend (10-50x
        # slower on a busy machine), so run them on one thread and give the setting back after.
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            with torch.no_grad():
                found = timestamps(wave, model, threshold=threshold, sampling_rate=SAMPLE_RATE,
                                   min_speech_duration_ms=min_speech_ms, speech_pad_ms=speech_pad_ms)
        finally:
            model.reset_states()
            if threads != 1:
                torch.set_num_threads(threads)
    return [(d["start"] / SAMPLE_RATE, d["end"] / SAMPLE_RATE) for d in found]


# -- inaSpeechSegmenter ----------------------------------------------------------------------

def _load_ina(where: str) -> Any:
    """An inaSpeechSegmenter ``Segmenter`` (call with ``_lock`` held)."""
    try:
        module = import_module("inaSpeechSegmenter")
    except Exception as exc:  # ImportError, or TensorFlow failing inside its import
        raise EmokitError(f"{where}: VAD 'ina' needs inaSpeechSegmenter and TensorFlow, which cannot be "
                          f"imported ({_first_line(exc)})", INA_HINT) from exc
    if shutil.which("ffmpeg") is None:
        raise EmokitError(f"{where}: VAD 'ina' needs the ffmpeg program, which is not on PATH", INA_HINT)
    try:
        return module.Segmenter(vad_engine="smn", detect_gender=False)
    except Exception as exc:
        raise EmokitError(f"{where}: VAD 'ina' cannot load inaSpeechSegmenter's models, which it downloads "
                          f"on first use ({_first_line(exc)})", INA_HINT) from exc


def _ina_segments(audio: np.ndarray, sample_rate: int, where: str) -> list[tuple[float, float]]:
    import soundfile as sf

    with _lock:
        if "ina" not in _models:
            _models["ina"] = _load_ina(where)
        segmenter = _models["ina"]
        with tempfile.TemporaryDirectory(prefix="emokit-vad-") as tmp:
            path = os.path.join(tmp, "clip.wav")
            sf.write(path, np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="FLOAT")
            try:
                segments = segmenter(path)
            except Exception as exc:
                raise MediaError(f"{where}: inaSpeechSegmenter failed ({_first_line(exc)})",
                                 "check the clip, or use vad=silero") from exc
    return [(float(start), float(stop)) for label, start, stop in segments if label in SPEECH_LABELS]


# -- public API ------------------------------------------------------------------------------

def trim_to_speech(audio: np.ndarray, sample_rate: int, method: str = "silero", *, clip_name: str = "",
                   threshold: float = 0.5, min_speech_ms: int = 250, speech_pad_ms: int = 30
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Keep ``audio`` from its first detected speech to its last (16 kHz mono float32 expected).

    Returns ``(audio, info)``.  ``info`` has ``method``, ``found`` (whether any speech was
    detected), ``start`` / ``end`` (seconds of the kept region in the original audio),
    ``duration`` (seconds of the original) and ``segments`` (how many speech regions were
    detected).  With no speech detected, or with ``method="none"``, the very same array comes
    back, with ``found`` False for no speech and None for ``none`` (nothing was looked for).

    ``threshold``, ``min_speech_ms`` and ``speech_pad_ms`` tune silero (its own defaults: speech
    probability 0.5, regions shorter than 250 ms dropped, 30 ms of padding each side).
    ``clip_name`` only names the clip in errors.
    """
    where = _where(clip_name)
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"{where}: trim_to_speech expects mono 1-D audio, got shape {audio.shape}")
    if sample_rate <= 0:
        raise ValueError(f"{where}: sample_rate must be positive, got {sample_rate}")
    duration = len(audio) / sample_rate
    info: dict[str, Any] = {"method": method, "found": False, "start": 0.0, "end": duration,
                            "duration": duration, "segments": 0}
    if method == "none":
        info.update(found=None)
        return audio, info
    if method == "silero":
        if len(audio) == 0:
            return audio, info
        segments = _silero_segments(audio, sample_rate, where, threshold, min_speech_ms, speech_pad_ms)
    elif method == "ina":
        if len(audio) == 0:
            return audio, info
        segments = _ina_segments(audio, sample_rate, where)
    else:
        raise EmokitError(f"{where}: unknown VAD method {method!r}",
                          f"use one of {', '.join('vad=' + m for m in METHODS)}")
    first = min((s for s, _ in segments), default=None)
    last = max((e for _, e in segments), default=None)
    if first is None or last is None:
        return audio, info
    i0 = max(0, int(np.floor(first * sample_rate)))
    i1 = min(len(audio), int(np.ceil(last * sample_rate)))
    if i1 <= i0:
        return audio, info
    info.update(found=True, start=i0 / sample_rate, end=i1 / sample_rate, segments=len(segments))
    return audio[i0:i1], info


class VadTrim(BaseEstimator):
    """The VAD step of a speech extractor: ``VadTrim("silero").trim(audio, 16000, clip)``.

    Parameters only in ``__init__`` (sklearn conventions: ``get_params``, ``clone``).
    ``cache_version`` changes with this module's ``VAD_VERSION``, the method and the installed
    backend's version; an extractor folds it into its own ``cache_version``, e.g.
    ``f"3+{self.vad_trim().cache_version}"``.
    """

    def __init__(self, method: str = "silero", threshold: float = 0.5, min_speech_ms: int = 250,
                 speech_pad_ms: int = 30):
        self.method = method
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        self.speech_pad_ms = speech_pad_ms

    @property
    def cache_version(self) -> str:
        backend = {"silero": "silero-vad", "ina": "inaSpeechSegmenter"}.get(self.method)
        tag = f"vad{VAD_VERSION}-{self.method}"
        return f"{tag}-{_package_version(backend)}" if backend else tag

    def trim(self, audio: np.ndarray, sample_rate: int, clip: Any = "") -> tuple[np.ndarray, dict[str, Any]]:
        """``clip``: a :class:`~emokit_core.contracts.Clip` or a name, used only in errors."""
        name = clip if isinstance(clip, str) else str(getattr(clip, "id", clip))
        return trim_to_speech(audio, sample_rate, self.method, clip_name=name, threshold=self.threshold,
                              min_speech_ms=self.min_speech_ms, speech_pad_ms=self.speech_pad_ms)

    __call__ = trim


def silero(**params: Any) -> VadTrim:
    """The ``vad:silero`` component: Silero VAD (its model ships inside the wheel)."""
    return VadTrim("silero", **params)


def ina(**params: Any) -> VadTrim:
    """The ``vad:ina`` component: inaSpeechSegmenter (TensorFlow; downloads its models)."""
    return VadTrim("ina", **params)
