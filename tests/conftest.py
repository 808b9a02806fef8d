"""Shared fixtures: an isolated emokit home, a manifest corpus of synthetic tones."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Feature cache and demo corpora go to a per-session folder, never the user's home."""
    home = tmp_path_factory.getbasetemp() / "emokit-home"
    monkeypatch.setenv("EMOKIT_HOME", str(home))
    monkeypatch.delenv("EMOKIT_REGISTRY", raising=False)
    return home


def write_tone(path: Path, f0: float, rate: int = 16000, seconds: float = 1.0, seed: int = 0, stereo=False):
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 4)) * 0.2
    wave = wave * np.hanning(len(t)) + rng.normal(0, 0.01, len(t))
    data = np.stack([wave, wave * 0.5], axis=1) if stereo else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), rate)


@pytest.fixture(scope="session")
def tone_manifest(tmp_path_factory) -> Path:
    """6 speakers x 3 labels (tones of distinct pitch) x 3 clips, with 3 folds stored as data."""
    root = tmp_path_factory.mktemp("tones")
    rows = ["path,label,speaker"]
    for s in range(6):
        for label, f0 in (("low", 140.0), ("mid", 260.0), ("high", 480.0)):
            for i in range(3):
                name = f"wav/spk{s}_{label}_{i}.wav"
                write_tone(root / name, f0 * (1 + 0.04 * s), rate=22050 if s % 2 else 16000, seed=s * 10 + i,
                           stereo=bool(i % 2))
                rows.append(f"{name},{label},spk{s}")
    (root / "tones.csv").write_text("\n".join(rows) + "\n")
    (root / "tones.folds.csv").write_text("speaker,fold\nspk0,0\nspk1,0\nspk2,1\nspk3,1\nspk4,2\nspk5,2\n")
    return root / "tones.csv"


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """A tiny demo corpus in RAVDESS layout: 5 actors (one per fold), 3 emotions, 50 mp4 clips."""
    from emokit_plugins.corpora.demo_synth import generate

    root = tmp_path_factory.mktemp("tiny-demo") / "corpus"
    generate(root, actors=5, repetitions=1, seed=0, emotions=("neutral", "happy", "angry"), workers=2)
    return root
