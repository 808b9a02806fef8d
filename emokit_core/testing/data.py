"""Synthetic inputs for the conformance checks: audio, frames, features and posteriors."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..media import SAMPLE_RATE

# The tiny demo corpus of the ``emokit_tiny_corpus`` fixture: at 320x180, a tenth of the pixels of
# RAVDESS's 1280x720, so that it is quick to make and to decode (no test of a plugin needs 720p).
TINY_CORPUS = {"actors": 5, "repetitions": 1, "seed": 0, "emotions": ("neutral", "happy", "angry"), "height": 180}


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
