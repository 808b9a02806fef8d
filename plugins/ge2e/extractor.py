"""``extractor:ge2e_stats``: a clip's 16 kHz audio -> resemblyzer's mel front end -> emokit's
GE2E encoder -> the last LSTM layer's 256-d frame outputs, pooled by mean and standard
deviation into one 512-d vector.

The front end (numpy only: it runs in the decoding workers, which thus never import torch)
reproduces resemblyzer 0.1.4's ``preprocess_wav`` less its silence trimming, then its
``wav_to_mel_spectrogram``:

* volume normalisation, as resemblyzer's ``normalize_volume(wav, -30, increase_only=True)``:
  a clip quieter than -30 dBFS RMS is raised to it, a louder one is left alone.  It is applied
  because the mel is a *power* spectrogram, not a log one, so the network's input scales with
  the square of the gain: the encoder was trained on (and resemblyzer always feeds it) waves
  brought up to -30 dBFS, and a quietly recorded corpus would otherwise reach it at levels it
  has never seen.  The price: loudness differences among clips quieter than -30 dBFS go (those
  above it survive), while the dynamics within a clip remain (the std pooling sees them).
  ``volume_norm=False`` feeds the wave as decoded.
* resemblyzer's ``trim_long_silences`` needs webrtcvad, which emokit does not install, and it
  cuts every pause down to about 0.2 s, pauses that carry emotion too; so it is left out.
  ``vad=silero`` (or any vad component) instead keeps the clip from its first to its last
  speech, as every emokit speech pipeline can; it runs after the normalisation, as
  resemblyzer's trimming does.
* ``wav_to_mel_spectrogram``: ``librosa.feature.melspectrogram(y, sr=16000, n_fft=400,
  hop_length=160, n_mels=40)`` transposed to ``[frames, 40]`` float32, that is a centred STFT
  (the wave zero-padded by 200 samples at each end: librosa's default since 0.9, and
  resemblyzer needs librosa >= 0.9.1), a periodic Hann window of 400 samples (25 ms) every 160
  (10 ms), the power spectrum (``|X|^2``), and 40 Slaney-scale,
  Slaney-normalised triangular filters from 0 to 8 kHz: ``emokit_core.melscale`` with those
  parameters, no log.  ``tests/test_ge2e.py`` holds it to resemblyzer's own output.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import SPEECH, Clip
from emokit_core.errors import EmokitError
from emokit_core.specs import WeightsRef, is_random_init

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
TARGET_DBFS = -30.0
_BLOCK = 4096  # mel frames computed at a time (bounded memory on long clips)


def normalise_volume(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """The wave scaled up so that its RMS is ``target_dbfs`` dB below full scale (1.0), or
    unchanged if it is already as loud; silence stays silence.  float32."""
    audio = np.asarray(audio, dtype=np.float64)
    rms = float(np.sqrt(np.mean(audio * audio))) if audio.size else 0.0
    gain = 10.0 ** (target_dbfs / 20.0) / rms if rms > 0 else 1.0
    return (audio * gain if gain > 1.0 else audio).astype(np.float32)


@lru_cache(maxsize=1)
def _filterbank_t() -> np.ndarray:
    from emokit_core.melscale import mel_filterbank

    bank = np.ascontiguousarray(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, scale="slaney", norm="slaney").T)
    bank.setflags(write=False)
    return bank  # [201, 40]


def mel_spectrogram(audio: np.ndarray) -> np.ndarray:
    """resemblyzer's mel (power, not log) of a 16 kHz wave: ``[1 + len // 160, 40]`` float32."""
    from emokit_core.melscale import power_spectrogram

    padded = np.pad(np.asarray(audio, dtype=np.float64).reshape(-1), N_FFT // 2)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    mel = np.empty((n_frames, N_MELS), dtype=np.float32)
    for first in range(0, n_frames, _BLOCK):
        last = min(n_frames, first + _BLOCK)
        piece = padded[first * HOP: (last - 1) * HOP + N_FFT]
        mel[first:last] = power_spectrogram(piece, N_FFT, HOP) @ _filterbank_t()
    return mel


def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """emokit decodes speech at 16 kHz already; anything else is resampled (polyphase)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate == SAMPLE_RATE:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(SAMPLE_RATE, int(sample_rate))
    return resample_poly(audio, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)


class Ge2eStats(BaseEstimator):
    """Mean and standard deviation over a clip's frames of the GE2E encoder's last LSTM layer
    (512-d: the 256 means, then the 256 standard deviations).

    ``weights``: a :class:`~emokit_core.specs.WeightsRef` (what a pipeline's ``weights``
    parameter resolves to) or a checkpoint path.  There is no random initialisation: a speaker
    encoder with random weights computes nothing worth classifying, so an extractor without
    weights refuses (with an :class:`~emokit_core.errors.EmokitError`) as soon as a run plans
    its extraction, before any clip is read.  ``device``: ``auto``, ``cpu`` or ``cuda``
    (``emokit_core.training.pick_device``), one code path on all; the network runs in float32
    everywhere (TF32 off on a GPU), so the device does not enter the cache key.  Clips run
    ``batch_size`` at a time, each as its own packed sequence (batch mates change nothing), and
    a long clip in 30-s pieces with the LSTM state carried over.
    """

    modality = SPEECH
    input_version = "1"  # bump when what the extractor computes changes
    cache_ignores = ("device", "batch_size")

    def __init__(self, weights: WeightsRef | str | Path | None = None, volume_norm: bool = True,
                 vad: str = "none", device: str = "auto", batch_size: int = 32):
        self.weights = weights
        self.volume_norm = volume_norm
        self.vad = vad
        self.device = device
        self.batch_size = batch_size

    # -- identity (the feature cache's key) ------------------------------------------------------
    def checkpoint(self) -> WeightsRef:
        """The weights as a checked reference; refuses random initialisation."""
        if isinstance(self.weights, WeightsRef):
            return self.weights
        if is_random_init(self.weights):
            raise EmokitError("speech.ge2e_svc (extractor ge2e_stats) needs the pretrained GE2E speaker encoder: "
                              "with random weights its features are meaningless, so it does not run without them",
                              "keep the default weights=ge2e-resemblyzer (pip install --no-deps resemblyzer==0.1.4), "
                              "or pass -p speech.ge2e_svc.weights=NAME|PATH of a checkpoint of the same network")
        from emokit_core.cache import file_sha256

        path = Path(str(self.weights)).expanduser()
        if not path.is_file():
            raise EmokitError(f"GE2E weights file {path} does not exist",
                              "pass the path of a checkpoint, or a name from `emokit weights list`")
        return WeightsRef(path=str(path.resolve()), sha256=file_sha256(path))

    @property
    def weights_sha256(self) -> str:
        return self.checkpoint().sha256

    @property
    def cache_version(self) -> str:
        """Read when a run plans its extraction: missing weights and an unknown VAD fail here."""
        self.checkpoint()
        vad = self._vad()
        return f"{self.input_version}+{vad.cache_version if vad is not None else 'none'}"

    def _vad(self) -> Any:
        if self.vad in ("none", "", None):
            return None
        from emokit_core.plugins import create

        return create("vad", self.vad)

    # -- per clip, in the decoding workers --------------------------------------------------------
    def prepare_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip | Any = None) -> np.ndarray:
        """The clip's mel ``[frames, 40]``: 16 kHz, volume normalised, trimmed by ``vad``."""
        audio = to_16k(audio, sample_rate)
        if self.volume_norm:
            audio = normalise_volume(audio)
        vad = self._vad()
        if vad is not None:
            audio = np.asarray(vad.trim(audio, SAMPLE_RATE, clip if clip is not None else "")[0], dtype=np.float32)
        return mel_spectrogram(audio)

    # -- batches, in the main process --------------------------------------------------------------
    def extract_batch(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        from .network import pooled_frames

        net = self.network()
        device = str(next(net.parameters()).device)
        out: list[np.ndarray] = []
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            for start in range(0, len(prepared), self.batch_size):
                pooled = pooled_frames(net, list(prepared[start: start + self.batch_size]), device)
                out.extend(pooled.numpy().astype(np.float32))
        return out

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip | Any = None) -> np.ndarray:
        return self.extract_batch([self.prepare_audio(audio, sample_rate, clip)])[0]

    # -- the network, once per process ----------------------------------------------------------------
    def network(self):
        net = getattr(self, "_net", None)
        if net is None:
            from emokit_core.training import check_device, pick_device

            from .network import load_encoder

            ref = self.checkpoint()
            check_device(self.device)
            net = load_encoder(ref.path, sha256=ref.sha256).to(pick_device(self.device))
            self._net = net
        return net

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_net", None)  # rebuilt where it is used
        return state
