"""Fine-tuning the paper's speech networks on emotion labels (paper 3.2.2 and 4.1).

* CNN14: a new n-way head on the 2048-d embedding, log-softmax + NLL, Adam (lr 1e-3, betas
  0.9/0.999, eps 1e-8), batch 24, at most 30,000 iterations.
* AlexNet on DeepSpectrum images: the last layer replaced, cross-entropy, SGD (lr 1e-3,
  momentum 0.9, weight decay 5e-4), at most 500 epochs.

Both stop early on a validation split of the *training* actors (``fit`` takes ``groups``);
the held-out fold is never seen.  The extractors cache what the networks read: the clip's
(VAD-trimmed) 16 kHz waveform, or its DeepSpectrum image.  Those are the defaults; the
options for training from random weights (augmentation of the training batches on the
training device, AdamW, one-cycle schedule, label smoothing, mixup, shuffled epochs without
early stopping) are parameters too, set together by the ``scratch`` profile
(docs/augmentation.md).
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

    input_version = "2"  # 2: the mel filters of emokit_core.melscale

    def __init__(self, vad: str = "none"):
        self.vad = vad

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from .deepspectrum import spectrogram_image

        return spectrogram_image(self._trimmed(audio, sample_rate, clip), sample_rate)


class Cnn14FineTuner(NetworkClassifier):
    """CNN14 with a new head, fine-tuned end to end (blocks up to ``freeze_blocks`` frozen).

    The defaults are the paper's recipe (Adam, constant lr, NLL, random batches, early
    stopping).  Training from scratch (docs/augmentation.md) adds, on the training device:
    ``crop_seconds`` (training clips cut to a random window of that length, or zero-padded
    to it; 0 = whole clips), a random time shift of up to ``shift_seconds`` and gain of up
    to ``gain_db`` on the waveforms, SpecAugment stripes on the log-mel
    (``time_stripes`` of up to ``time_stripe_frames`` frames, ``freq_stripes`` of up to
    ``freq_stripe_bins`` mel bins), and the loop's ``optimizer``, ``weight_decay``,
    ``schedule``, ``label_smoothing``, ``mixup_alpha`` and ``sampling``; ``max_epochs`` > 0
    counts the budget in passes over the training clips instead of ``max_iterations``.
    ``conv_dropout`` and ``fc_dropout`` are CNN14's own dropout rates (upstream: 0.2 and 0.5).
    Prediction sees whole clips, unaugmented, zero-padded to ``crop_seconds`` where shorter
    and batched only with clips of the same length.
    """

    sample_rate = 16000
    budget_settings = ("max_epochs", "max_iterations")

    def __init__(self, weights: WeightsRef | None = None, width: float = 1.0, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, batch_size: int = 24,
                 max_iterations: int = 30000, eval_every: int = 200, patience: int = 10, val_fraction: float = 0.2,
                 val_metric: str = "accuracy", freeze_blocks: int = 0, crop_seconds: float = 0.0,
                 device: str = "auto", random_state: int = 0, optimizer: str = "adam", momentum: float = 0.0,
                 weight_decay: float = 0.0, schedule: str = "constant",
                 label_smoothing: float = 0.0, mixup_alpha: float = 0.0, sampling: str = "random",
                 max_epochs: int = 0, shift_seconds: float = 0.0, gain_db: float = 0.0, time_stripes: int = 0,
                 time_stripe_frames: int = 40, freq_stripes: int = 0, freq_stripe_bins: int = 8,
                 conv_dropout: float = 0.2, fc_dropout: float = 0.5):
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
        self.val_metric = val_metric
        self.freeze_blocks = freeze_blocks
        self.crop_seconds = crop_seconds
        self.device = device
        self.random_state = random_state
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.mixup_alpha = mixup_alpha
        self.sampling = sampling
        self.max_epochs = max_epochs
        self.shift_seconds = shift_seconds
        self.gain_db = gain_db
        self.time_stripes = time_stripes
        self.time_stripe_frames = time_stripe_frames
        self.freq_stripes = freq_stripes
        self.freq_stripe_bins = freq_stripe_bins
        self.conv_dropout = conv_dropout
        self.fc_dropout = fc_dropout

    def step_budget(self, n_train: int) -> int:
        return self.max_epochs * self.steps_per_epoch(n_train) if self.max_epochs else self.max_iterations

    def build_network(self, n_classes: int, pretrained: bool):
        import torch

        from emokit_core.augment import SpecAugment, child_seed

        from .cnn14 import Cnn14, freeze_lower_blocks, load_panns_checkpoint, replace_head

        net = Cnn14(width=self.width, conv_dropout=self.conv_dropout, fc_dropout=self.fc_dropout)
        if pretrained and self.weights is not None:
            load_panns_checkpoint(net, self.weights.path)
        replace_head(net, n_classes)
        if self.time_stripes or self.freq_stripes:
            net.spec_augment = SpecAugment(self.time_stripes, self.time_stripe_frames, self.freq_stripes,
                                           self.freq_stripe_bins, seed=child_seed(self.random_state, 1))
        # NHWC convolutions: a training step takes about a third less time on a CPU (oneDNN),
        # and it is cuDNN's fast path on a GPU.
        return freeze_lower_blocks(net, self.freeze_blocks).to(memory_format=torch.channels_last)

    def make_augmentation(self):
        from torch import nn

        from emokit_core.augment import RandomGain, RandomShift, child_seed

        steps = []
        if self.shift_seconds:
            steps.append(RandomShift(int(round(self.shift_seconds * self.sample_rate)),
                                     seed=child_seed(self.random_state, 2)))
        if self.gain_db:
            steps.append(RandomGain(self.gain_db, seed=child_seed(self.random_state, 3)))
        return nn.Sequential(*steps) if steps else None

    def log_probs(self, net, batch):
        return net(batch)["log_probs"]

    def _crop_samples(self) -> int:
        return int(round(self.crop_seconds * self.sample_rate))

    def inference_batches(self, X: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Clips of equal (padded) length together, so no clip is padded for another's sake:
        CNN14's mean over time would see the padding."""
        crop = self._crop_samples()
        lengths = np.array([max(len(x), crop) for x in X], dtype=np.int64)
        batches = []
        for length in np.unique(lengths):
            same = np.flatnonzero(lengths == length)
            batches += [same[start: start + self.batch_size] for start in range(0, len(same), self.batch_size)]
        return batches

    def make_batch(self, items: Sequence[np.ndarray], device: str, rng: np.random.Generator | None):
        """Training (``rng`` given): each clip cut to a random ``crop_seconds`` window, or
        zero-padded to it.  Prediction: whole clips, zero-padded to ``crop_seconds`` (so they
        are framed as in training) and to the longest of the batch."""
        import torch

        crop = self._crop_samples()
        parts = []
        for clip in items:
            clip = np.asarray(clip, dtype=np.float32)
            if rng is not None and crop and len(clip) > crop:
                start = int(rng.integers(0, len(clip) - crop + 1))
                clip = clip[start: start + crop]
            parts.append(clip)
        out = np.zeros((len(parts), max([crop] + [len(p) for p in parts])), np.float32)
        for row, part in zip(out, parts):
            row[: len(part)] = part
        return torch.from_numpy(out).to(device)


class AlexNetFineTuner(NetworkClassifier):
    """torchvision AlexNet on DeepSpectrum images with its last layer replaced; cross-entropy
    and SGD as for ImageNet (the paper switched to them because Adam + NLL did not learn).
    One validation check per epoch unless ``eval_every`` is set.

    For training from scratch (docs/augmentation.md), the images (time left to right, low
    frequencies at the bottom) take on the training device a random time shift of up to
    ``shift_pixels`` columns and SpecAugment stripes (``time_stripes`` of up to
    ``time_stripe_pixels`` columns, ``freq_stripes`` of up to ``freq_stripe_pixels`` rows),
    zero after normalisation, i.e. the mean colour; and the loop's ``optimizer``,
    ``schedule``, ``label_smoothing``, ``mixup_alpha`` and ``sampling``.
    """

    def __init__(self, weights: WeightsRef | None = None, lr: float = 1e-3, momentum: float = 0.9,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 5e-4,
                 batch_size: int = 24, max_epochs: int = 500, eval_every: int = 0, patience: int = 30,
                 val_fraction: float = 0.2, val_metric: str = "accuracy", device: str = "auto", random_state: int = 0,
                 optimizer: str = "sgd", schedule: str = "constant", label_smoothing: float = 0.0,
                 mixup_alpha: float = 0.0, sampling: str = "random", shift_pixels: int = 0, time_stripes: int = 0,
                 time_stripe_pixels: int = 23, freq_stripes: int = 0, freq_stripe_pixels: int = 28):
        self.weights = weights
        self.lr = lr
        self.momentum = momentum
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.eval_every = eval_every
        self.patience = patience
        self.val_fraction = val_fraction
        self.val_metric = val_metric
        self.device = device
        self.random_state = random_state
        self.optimizer = optimizer
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.mixup_alpha = mixup_alpha
        self.sampling = sampling
        self.shift_pixels = shift_pixels
        self.time_stripes = time_stripes
        self.time_stripe_pixels = time_stripe_pixels
        self.freq_stripes = freq_stripes
        self.freq_stripe_pixels = freq_stripe_pixels

    def build_network(self, n_classes: int, pretrained: bool):
        from .deepspectrum import alexnet_classifier

        return alexnet_classifier(n_classes, self.weights.path if pretrained and self.weights else None)

    def make_augmentation(self):
        from torch import nn

        from emokit_core.augment import RandomShift, SpecAugment, child_seed

        steps = []
        if self.shift_pixels:
            steps.append(RandomShift(self.shift_pixels, seed=child_seed(self.random_state, 1)))
        if self.time_stripes or self.freq_stripes:
            steps.append(SpecAugment(self.time_stripes, self.time_stripe_pixels, self.freq_stripes,
                                     self.freq_stripe_pixels, time_axis=-1, freq_axis=-2,
                                     seed=child_seed(self.random_state, 2)))
        return nn.Sequential(*steps) if steps else None

    def log_probs(self, net, batch):
        import torch

        return torch.log_softmax(net(batch), dim=-1)  # NLL on log-softmax = cross-entropy

    def make_batch(self, items: Sequence[Any], device: str, rng: np.random.Generator | None):
        import torch

        from .deepspectrum import normalise_images

        images = torch.from_numpy(np.stack([np.asarray(i) for i in items])).permute(0, 3, 1, 2).to(device)
        return normalise_images(images, "imagenet").contiguous(memory_format=torch.channels_last)
