"""The one log-mel front end: mel scales, triangular filterbanks, power spectra and decibels.

Every speech model of emokit reads its spectrogram through these functions, parameterised
rather than re-implemented: CNN14 (Slaney filters of 64 bands, 10 log10 with a floor, its STFT
in torch on the training device), DeepSpectrum (128 Slaney bands in dB below the clip's
maximum) and the MFCC baseline (HTK filters without area normalisation, natural log).
``tests/test_melscale.py`` holds the scales, filters and decibels to librosa's;
``tests/test_cnn14.py`` the CNN14 front end to torchlibrosa's and ``tests/test_deepspectrum.py``
DeepSpectrum's log-mel to librosa's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

Scale = Literal["slaney", "htk"]

# Slaney's scale (Auditory Toolbox): linear below 1 kHz at 200/3 Hz per mel, logarithmic above.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float, scale: Scale = "slaney") -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    _check_scale(scale)
    logpart = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, logpart, hz / _F_SP)


def mel_to_hz(mel: np.ndarray | float, scale: Scale = "slaney") -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    _check_scale(scale)
    logpart = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logpart, mel * _F_SP)


def _check_scale(scale: str) -> None:
    if scale not in ("slaney", "htk"):
        raise ValueError(f"mel scale must be 'slaney' or 'htk', not {scale!r}")


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None, *,
                   scale: Scale = "slaney", norm: Literal["slaney"] | None = "slaney") -> np.ndarray:
    """Triangular filters, ``[n_mels, n_fft // 2 + 1]`` float64.

    Filter ``i`` rises from edge ``i`` to ``i + 1`` and falls to ``i + 2`` of ``n_mels + 2`` edges
    equally spaced on the mel ``scale`` from ``fmin`` to ``fmax`` (default: Nyquist).  With
    ``norm="slaney"`` each is scaled by ``2 / (edge[i + 2] - edge[i])`` in Hz, so that all have
    the same area.  ``scale="slaney", norm="slaney"`` is ``librosa.filters.mel``'s default;
    ``scale="htk", norm=None`` its ``htk=True, norm=None``.
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    bins = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2), scale)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (upper - lower)
    elif norm is not None:
        raise ValueError(f"filter normalisation must be 'slaney' or None, not {norm!r}")
    return weights


@lru_cache(maxsize=16)
def hann(n: int) -> np.ndarray:
    """The periodic Hann window (scipy's ``fftbins=True``, torch's default), read-only."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    window.setflags(write=False)
    return window


def power_spectrogram(audio: np.ndarray, n_fft: int, hop: int, window: np.ndarray | None = None) -> np.ndarray:
    """``|rfft|^2`` of ``window``-ed frames every ``hop`` samples (no centring), ``[frames, n_fft // 2 + 1]``.
    ``window`` (default: the periodic Hann of ``n_fft``) may be shorter than ``n_fft``: the frame
    is then zero-padded to ``n_fft``.  Audio shorter than one window is zero-padded to one frame."""
    window = hann(n_fft) if window is None else window
    if len(audio) < len(window):
        audio = np.pad(audio, (0, len(window) - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, len(window))[::hop]
    return np.abs(np.fft.rfft(frames * window, n_fft, axis=1)) ** 2


def power_to_db(power: np.ndarray, *, amin: float = 1e-10, ref: float | Literal["max"] = 1.0,
                top_db: float | None = None) -> np.ndarray:
    """``10 log10(max(power, amin) / ref)``; ``ref="max"`` puts the loudest bin at 0 dB; ``top_db``
    clips everything more than that far below the top (librosa's ``power_to_db``)."""
    db = 10.0 * np.log10(np.maximum(power, amin))
    reference = float(np.max(power)) if ref == "max" else float(ref)
    db -= 10.0 * np.log10(max(amin, reference))
    if top_db is not None:
        db = np.maximum(db, db.max() - float(top_db))
    return db
