"""Clip-level speech extractors built on pretrained networks (paper 3.2.1, feature extraction):
CNN14 2048-d embeddings (PANNs) and AlexNet fc7 4096-d activations of DeepSpectrum images.

The network is built once per process (lazily, so extractors stay cheap to create, clone
and pickle into worker processes) and runs on the best device unless one is given.  Audio
is first trimmed to its speech with the chosen VAD.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import SPEECH, Clip, VoiceActivityDetector
from emokit_core.specs import WeightsRef
from emokit_core.training import pick_device


class SpeechInput(BaseEstimator):
    """Base of the speech extractors: the VAD step and a cache version that follows it."""

    modality = SPEECH
    weights_sha256: str | None = None
    input_version = "1"  # bump when what a subclass computes changes

    @property
    def cache_version(self) -> str:
        """The extractor's own version plus the VAD's (its method and backend version); an unknown
        VAD name fails here, when the run plans its extraction."""
        return f"{self.input_version}+{self._vad().cache_version}"

    def _vad(self) -> VoiceActivityDetector:
        """``vad`` from the core's component table (``none``: this plugin's pass-through)."""
        if self.vad == "none":
            from .vad import VadTrim

            return VadTrim("none")
        from emokit_core.plugins import create

        return create("vad", self.vad)

    def _trimmed(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        return self._vad().trim(audio, sample_rate, clip)[0].astype(np.float32)


class _PretrainedExtractor(SpeechInput):
    """A network run in batches: ``prepare_audio`` in the decoding workers, ``extract_batch``
    in the main process (see ``emokit_core.contracts.BatchedSpeechExtractor``)."""

    # Neither the device nor the batch size changes a clip's features; the precision does,
    # so it is part of cache_version.
    cache_ignores = ("device", "batch_size")

    @property
    def cache_version(self) -> str:
        precision = "bf16" if pick_device(self.device).startswith("cuda") else "fp32"
        return f"{super().cache_version}+{precision}"

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        """One clip (the runner batches through ``prepare_audio`` / ``extract_batch``)."""
        return self.extract_batch([self.prepare_audio(audio, sample_rate, clip)])[0]

    @property
    def weights_sha256(self) -> str | None:
        return self.weights.sha256 if isinstance(self.weights, WeightsRef) else None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_net", None)  # rebuilt where it is used
        return state

    def build_network(self):
        raise NotImplementedError

    def network(self):
        """The network, built once per process from a seeded initialisation (so a random-init
        network is the same in every worker) and the weights, if any, in eval mode."""
        net = getattr(self, "_net", None)
        if net is None:
            import torch

            torch.manual_seed(0)
            device = pick_device(self.device)
            net = self.build_network().to(device).eval()
            if device.startswith("cuda"):  # NHWC convolutions: the fast path of cuDNN in bf16
                net = net.to(memory_format=torch.channels_last)
            self._net = net
        return net


class PannsEmbedding(_PretrainedExtractor):
    """CNN14 embedding (2048-d at width 1) of the clip's 16 kHz audio.

    To batch clips of different lengths without one clip's features depending on another,
    each clip is zero-padded to a whole number of seconds and clips of equal padded length
    are batched together.
    """

    def __init__(self, weights: WeightsRef | None = None, width: float = 1.0, vad: str = "none",
                 device: str = "auto", batch_size: int = 32):
        self.weights = weights
        self.width = width
        self.vad = vad
        self.device = device
        self.batch_size = batch_size

    def build_network(self):
        from .cnn14 import Cnn14, load_panns_checkpoint

        net = Cnn14(width=self.width)
        if self.weights is not None:
            load_panns_checkpoint(net, self.weights.path)
        return net

    def prepare_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        audio = self._trimmed(audio, sample_rate, clip)
        padded = np.zeros(max(1, -(-len(audio) // sample_rate)) * sample_rate, np.float32)
        padded[: len(audio)] = audio
        return padded

    def extract_batch(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        net = self.network()
        device = str(next(net.parameters()).device)
        out: list[np.ndarray | None] = [None] * len(prepared)
        by_length: dict[int, list[int]] = {}
        for i, clip in enumerate(prepared):
            by_length.setdefault(len(clip), []).append(i)
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16,
                                                    enabled=device.startswith("cuda")):
            for indices in by_length.values():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start: start + self.batch_size]
                    x = torch.from_numpy(np.stack([prepared[i] for i in chunk])).to(device)
                    embeddings = net(x)["embedding"].float().cpu().numpy()
                    for i, embedding in zip(chunk, embeddings):
                        out[i] = embedding
        return out  # type: ignore[return-value]


class DeepSpectrumFc7(_PretrainedExtractor):
    """AlexNet fc7 (after its ReLU, 4096-d) of the clip's viridis mel-spectrogram image."""

    input_version = "2"  # 2: the mel filters of emokit_core.melscale

    def __init__(self, weights: WeightsRef | None = None, vad: str = "none", device: str = "auto",
                 batch_size: int = 64):
        self.weights = weights
        self.vad = vad
        self.device = device
        self.batch_size = batch_size

    def build_network(self):
        from .deepspectrum import AlexNetFeatures, load_alexnet_weights

        net = AlexNetFeatures()
        if self.weights is not None:
            load_alexnet_weights(net, self.weights.path)
        return net

    def prepare_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from .deepspectrum import spectrogram_image

        return spectrogram_image(self._trimmed(audio, sample_rate, clip), sample_rate)

    def extract_batch(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        from .deepspectrum import fc7_features

        net = self.network()
        return list(fc7_features(np.stack(prepared), net, batch_size=self.batch_size,
                                 device=str(next(net.parameters()).device)))
