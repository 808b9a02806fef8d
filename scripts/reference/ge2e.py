"""Reference outputs of resemblyzer's own GE2E code, for tests/test_ge2e.py (run once, by hand).

emokit reimplements resemblyzer's voice encoder (emokit_plugins.ge2e.network) and never
imports the ``resemblyzer`` package.  This script is the one place that does: it runs
resemblyzer 0.1.4's ``normalize_volume``, ``wav_to_mel_spectrogram`` and ``VoiceEncoder`` on
a deterministic synthetic 16 kHz signal and writes ``tests/data/ge2e_reference.npz``:

* ``wav_int16``: the input waveform as 16-bit PCM (the signal is ``wav_int16 / 32768``, so
  float32 holds it exactly; about -42 dBFS, so the volume normalisation does apply);
* ``gain``: the factor by which resemblyzer's ``normalize_volume(wav, -30, increase_only=True)``
  scaled it (the normalised wave itself would double the file's size);
* ``mel``: ``audio.wav_to_mel_spectrogram`` of the normalised wave, ``[frames, 40]``;
* ``frames``: the last LSTM layer's output for every frame of that mel in one sequence,
  ``[frames, 256]``, taken by a forward hook on ``VoiceEncoder.lstm``;
* ``embedding``: ``VoiceEncoder.forward`` of the whole mel (ReLU(linear(last hidden)), L2-normed);
* ``embedding_utterance``: ``VoiceEncoder.embed_utterance`` of the normalised wave (1.6-s partials);
* ``librosa_version``, ``sha256`` (of the pretrained.pt that was used).

resemblyzer imports webrtcvad and librosa at module level, so it runs in a throwaway venv
that sees emokit's .venv (torch, librosa and the --no-deps resemblyzer wheel are there) and
adds webrtcvad.  The file in the repository was made with exactly these commands::

    /work/main/.venv/bin/python -m venv /tmp/ge2e-ref
    /tmp/ge2e-ref/bin/pip install webrtcvad-wheels            # 2.0.14.post1
    echo /work/main/.venv/lib/python3.11/site-packages \\
        > /tmp/ge2e-ref/lib/python3.11/site-packages/zz_emokit_venv.pth
    /tmp/ge2e-ref/bin/python scripts/reference/ge2e.py tests/data/ge2e_reference.npz

(resemblyzer 0.1.4, librosa 0.11.0, torch 2.9.1 CPU, numpy 2.x).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
SECONDS = 1.6  # resemblyzer's partial length: one partial, so embed_utterance is one forward


def synthetic_voice(seconds: float = SECONDS, seed: int = 13) -> np.ndarray:
    """A voiced, vowel-like signal: a gliding, vibrato-modulated harmonic source shaped by three
    formant resonances, with syllable-rate amplitude modulation, a pause and breath noise."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 140.0 + 40.0 * t / seconds + 4.0 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    source = sum(np.sin(k * phase) / k for k in range(1, 30))
    voice = source
    for formant, bandwidth in ((700.0, 90.0), (1200.0, 110.0), (2600.0, 160.0)):
        r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        theta = 2 * np.pi * formant / SAMPLE_RATE
        voice = lfilter([1.0 - r], [1.0, -2 * r * np.cos(theta), r * r], voice)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t) ** 2
    envelope[(t > 0.9) & (t < 1.1)] = 0.02  # a short pause between "syllables"
    wave = voice * envelope + 0.02 * rng.standard_normal(n)
    wave *= 10 ** (-42 / 20) / np.sqrt(np.mean(wave ** 2))  # about -42 dBFS: below resemblyzer's -30
    return np.round(np.clip(wave, -1, 1) * 32768).clip(-32768, 32767).astype(np.int16)


def main(out: Path) -> None:
    import librosa
    import torch
    from resemblyzer import VoiceEncoder, audio, hparams

    wav_int16 = synthetic_voice()
    wav = wav_int16.astype(np.float32) / 32768.0
    normalised = audio.normalize_volume(wav, hparams.audio_norm_target_dBFS, increase_only=True)
    mel = audio.wav_to_mel_spectrogram(normalised)

    encoder = VoiceEncoder(device="cpu", verbose=False).eval()
    weights = Path(audio.__file__).with_name("pretrained.pt")
    captured = {}
    hook = encoder.lstm.register_forward_hook(lambda module, args, output: captured.update(frames=output[0]))
    with torch.no_grad():
        embedding = encoder(torch.from_numpy(mel[None])).numpy()[0]
    hook.remove()
    frames = captured["frames"].numpy()[0]
    embedding_utterance = encoder.embed_utterance(normalised)

    out.parent.mkdir(parents=True, exist_ok=True)
    gain = float(np.dot(normalised, wav) / np.dot(wav, wav))
    np.savez_compressed(out, wav_int16=wav_int16, gain=np.float64(gain),
                        mel=mel.astype(np.float32), frames=frames.astype(np.float32),
                        embedding=embedding.astype(np.float32),
                        embedding_utterance=embedding_utterance.astype(np.float32),
                        librosa_version=np.array(librosa.__version__),
                        sha256=np.array(hashlib.sha256(weights.read_bytes()).hexdigest()))
    print(f"{out}: {out.stat().st_size} bytes; wav {wav.shape}, mel {mel.shape}, frames {frames.shape}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/ge2e_reference.npz"))
