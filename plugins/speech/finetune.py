"""Fine-tuning the paper's speech networks on emotion labels (paper 3.2.2 and 4.1).

* CNN14: a new n-way head on the 2048-d embedding, log-softmax + NLL, Adam (lr 1e-3, betas
  0.9/0.999, eps 1e-8), batch 24, at most 30,000 iterations.
* AlexNet on DeepSpectrum images: the last layer replaced, cross-entropy, SGD (lr 1e-3,
  momentum 0.9, weight decay 5e-4), at most 500 epochs.

Both stop early on a validation split of the *training* actors (``fit`` takes ``groups``);
the held-out fold is never seen.  The extractors cache what the networks read: the clip's
(VAD-trimmed) 16 kHz waveform, or its DeepSpectrum image.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from emokit_core.contracts import Clip
from emokit_core.specs import WeightsRef
from emokit_core.training import NetworkClassifier

from .extractors import SpeechInput


class Waveform(SpeechInput):
    """The clip's 16 kHz mono waveform, trimmed to its speech when ``vad`` is not ``none``."""

    def __init__(self, vad: str = "none"):
        self.vad = vad

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        return self._trimmed(audio, sample_rate, clip)


class SpectrogramImage(SpeechInput):
    """The clip's DeepSpectrum image: 227x227 viridis log-mel picture, uint8 RGB."""

    def __init__(self, vad: str = "none"):
        self.vad = vad

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from .deepspectrum import spectrogram_image

        return spectrogram_image(self._trimmed(audio, sample_rate, clip), sample_rate)


class Cnn14FineTuner(NetworkClassifier):
    """CNN14 with a new head, fine-tuned end to end (blocks up to ``freeze_blocks`` frozen).

    ``crop_seconds`` (0 = off) crops training clips to a random window to save time;
    prediction always sees whole clips (zero-padded to the longest in a batch).
    """

    def __init__(self, weights: WeightsRef | None = None, width: float = 1.0, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, batch_size: int = 24,
                 max_iterations: int = 30000, eval_every: int = 200, patience: int = 10, val_fraction: float = 0.2,
                 freeze_blocks: int = 0, crop_seconds: float = 0.0, device: str = "auto", random_state: int = 0):
        self.weights = weights
        self.width = width
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.batch_size = batch_size
        self.max_iterations = max_iterations
        self.eval_every = eval_every
        self.patience = patience
        self.val_fraction = val_fraction
        self.freeze_blocks = freeze_blocks
        self.crop_seconds = crop_seconds
        self.device = device
        self.random_state = random_state

    def step_budget(self, n_train: int) -> int:
        return self.max_iterations

    def build_network(self, n_classes: int, pretrained: bool):
        from .cnn14 import Cnn14, freeze_lower_blocks, load_panns_checkpoint, replace_head

        net = Cnn14(width=self.width)
        if pretrained and self.weights is not None:
            load_panns_checkpoint(net, self.weights.path)
        replace_head(net, n_classes)
        return freeze_lower_blocks(net, self.freeze_blocks)

    def log_probs(self, net, batch):
        return net(batch)["log_probs"]

    def make_optimizer(self, parameters):
        import torch

        return torch.optim.Adam(parameters, lr=self.lr, betas=tuple(self.betas), eps=self.eps)

    def make_batch(self, items: Sequence[np.ndarray], device: str, rng: np.random.Generator | None):
        import torch

        crop = int(self.crop_seconds * 16000) if rng is not None and self.crop_seconds else 0
        parts = []
        for clip in items:
            clip = np.asarray(clip, dtype=np.float32)
            if crop and len(clip) > crop:
                start = int(rng.integers(0, len(clip) - crop + 1))
                clip = clip[start: start + crop]
            parts.append(clip)
        out = np.zeros((len(parts), max(len(p) for p in parts)), np.float32)
        for row, part in zip(out, parts):
            row[: len(part)] = part
        return torch.from_numpy(out).to(device)


class AlexNetFineTuner(NetworkClassifier):
    """torchvision AlexNet on DeepSpectrum images with its last layer replaced; cross-entropy
    and SGD as for ImageNet (the paper switched to them because Adam + NLL did not learn).
    One validation check per epoch unless ``eval_every`` is set."""

    def __init__(self, weights: WeightsRef | None = None, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 5e-4, batch_size: int = 24, max_epochs: int = 500, eval_every: int = 0,
                 patience: int = 30, val_fraction: float = 0.2, device: str = "auto", random_state: int = 0):
        self.weights = weights
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.eval_every = eval_every
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def build_network(self, n_classes: int, pretrained: bool):
        from .deepspectrum import alexnet_classifier

        return alexnet_classifier(n_classes, self.weights.path if pretrained and self.weights else None)

    def log_probs(self, net, batch):
        import torch

        return torch.log_softmax(net(batch), dim=-1)  # NLL on log-softmax = cross-entropy

    def make_optimizer(self, parameters):
        import torch

        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def make_batch(self, items: Sequence[Any], device: str, rng: np.random.Generator | None):
        import torch

        from .deepspectrum import normalise_images

        images = torch.from_numpy(np.stack([np.asarray(i) for i in items])).permute(0, 3, 1, 2)
        return normalise_images(images, "imagenet").to(device).contiguous(memory_format=torch.channels_last)
