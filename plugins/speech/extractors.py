"""Clip-level speech extractors built on pretrained networks (paper 3.2.1, feature extraction):
CNN14 2048-d embeddings (PANNs) and AlexNet fc7 4096-d activations of DeepSpectrum images.

The network is built once per process (lazily, so extractors stay cheap to create, clone
and pickle into worker processes) and runs on the best device unless one is given.  Audio
is first trimmed to its speech with the chosen VAD.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import SPEECH, Clip
from emokit_core.specs import WeightsRef
from emokit_core.training import pick_device


class SpeechInput(BaseEstimator):
    """Base of the speech extractors: the VAD step and a cache version that follows it."""

    modality = SPEECH
    weights_sha256: str | None = None
    input_version = "1"  # bump when what a subclass computes changes

    @property
    def cache_version(self) -> str:
        """The extractor's own version plus the VAD's (its method and backend version)."""
        from .vad import VadTrim

        return f"{self.input_version}+{VadTrim(self.vad).cache_version}"

    def _trimmed(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from .vad import VadTrim

        return VadTrim(self.vad).trim(audio, sample_rate, clip)[0].astype(np.float32)


class _PretrainedExtractor(SpeechInput):
    cache_ignores = ("device",)  # where it runs does not change the features

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
            self._net = net = self.build_network().to(pick_device(self.device)).eval()
        return net


class PannsEmbedding(_PretrainedExtractor):
    """CNN14 embedding (2048-d at width 1) of the clip's 16 kHz audio."""

    def __init__(self, weights: WeightsRef | None = None, width: float = 1.0, vad: str = "none",
                 device: str = "auto"):
        self.weights = weights
        self.width = width
        self.vad = vad
        self.device = device

    def build_network(self):
        from .cnn14 import Cnn14, load_panns_checkpoint

        net = Cnn14(width=self.width)
        if self.weights is not None:
            load_panns_checkpoint(net, self.weights.path)
        return net

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        import torch

        net = self.network()
        with torch.inference_mode():
            return net.embed(torch.from_numpy(self._trimmed(audio, sample_rate, clip))).float().cpu().numpy()


class DeepSpectrumFc7(_PretrainedExtractor):
    """AlexNet fc7 (after its ReLU, 4096-d) of the clip's viridis mel-spectrogram image."""

    def __init__(self, weights: WeightsRef | None = None, vad: str = "none", device: str = "auto"):
        self.weights = weights
        self.vad = vad
        self.device = device

    def build_network(self):
        from .deepspectrum import AlexNetFeatures, load_alexnet_weights

        net = AlexNetFeatures()
        if self.weights is not None:
            load_alexnet_weights(net, self.weights.path)
        return net

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from .deepspectrum import fc7_features, spectrogram_image

        image = spectrogram_image(self._trimmed(audio, sample_rate, clip), sample_rate)
        net = self.network()
        return fc7_features(image[None], net, device=str(next(net.parameters()).device))[0]
