"""Cheap hand-made features for the baseline pipelines."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import FACE, SPEECH, Clip, VideoInfo
from emokit_core.melscale import mel_filterbank, power_spectrogram


class MfccStats(BaseEstimator):
    """MFCC and delta statistics plus prosody (log energy, F0 from the autocorrelation).

    A fixed-length vector per clip: mean and standard deviation of ``n_mfcc`` MFCCs and
    their deltas, energy statistics, and F0 level/range in semitones over voiced frames.
    """

    modality = SPEECH
    cache_version = "1"
    weights_sha256 = None

    def __init__(self, n_mfcc: int = 20, n_mels: int = 40, win_ms: float = 32.0, hop_ms: float = 10.0,
                 fmin: float = 20.0, fmax: float = 8000.0):
        self.n_mfcc = n_mfcc
        self.n_mels = n_mels
        self.win_ms = win_ms
        self.hop_ms = hop_ms
        self.fmin = fmin
        self.fmax = fmax

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from scipy.fft import dct

        win = int(round(sample_rate * self.win_ms / 1000))
        hop = int(round(sample_rate * self.hop_ms / 1000))
        n_fft = 1 << (win - 1).bit_length()
        # A symmetric Hann window of the frame length, each frame zero-padded to a power of two.
        power = power_spectrogram(audio, n_fft, hop, window=np.hanning(win))
        mel = power @ mel_filterbank(sample_rate, n_fft, self.n_mels, self.fmin, self.fmax, scale="htk", norm=None).T
        mfcc = dct(np.log(mel + 1e-10), type=2, norm="ortho", axis=1)[:, : self.n_mfcc]
        delta = np.gradient(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
        log_energy = np.log(power.sum(axis=1) + 1e-10)

        # F0 from the autocorrelation (the inverse FFT of the power spectrum), 62-400 Hz.
        autocorr = np.fft.irfft(power, n_fft)
        lo, hi = int(sample_rate / 400), min(int(sample_rate / 62.5), n_fft // 2 - 1)
        lag = lo + np.argmax(autocorr[:, lo:hi], axis=1)
        strength = autocorr[np.arange(len(lag)), lag] / (autocorr[:, 0] + 1e-10)
        voiced = (strength > 0.4) & (log_energy > log_energy.max() - 7.0)
        semitones = 12 * np.log2(sample_rate / lag / 100.0)
        f0 = semitones[voiced] if voiced.sum() >= 3 else np.zeros(3)
        prosody = [log_energy.mean(), log_energy.std(), np.percentile(log_energy, 90) - np.percentile(log_energy, 10),
                   f0.mean(), f0.std(), np.percentile(f0, 90) - np.percentile(f0, 10), voiced.mean(),
                   len(audio) / sample_rate]
        return np.concatenate([mfcc.mean(0), mfcc.std(0), delta.mean(0), delta.std(0),
                               np.asarray(prosody)]).astype(np.float32)


class _CentreSquareSink:
    pixel_format = "gray"

    def __init__(self, size: int, step: int):
        self.size = size
        self.step = step
        self.count = 0
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        import cv2

        if self.count % self.step == 0:
            h, w = frame.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            square = frame[top: top + side, left: left + side]
            self.frames.append(cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA).reshape(-1))
        self.count += 1

    def close(self) -> np.ndarray:
        return np.stack(self.frames) if self.frames else np.zeros((0, self.size * self.size), np.uint8)


class CentreSquarePixels(BaseEstimator):
    """Every ``frame_step``-th frame: centre square (drops RAVDESS's white sides) ->
    ``size`` x ``size`` grayscale pixels, ``[frames, size * size]`` uint8."""

    modality = FACE
    cache_version = "1"
    weights_sha256 = None

    def __init__(self, size: int = 24, frame_step: int = 3):
        self.size = size
        self.frame_step = frame_step

    def open_clip(self, clip: Clip, info: VideoInfo) -> _CentreSquareSink:
        return _CentreSquareSink(self.size, max(1, self.frame_step))
