"""The saliency-guided STN fine-tuned on frames (paper 3.3.2 and 4.2): frames inherit their
clip's label; batch 128, Adam lr 1e-3, dropout 0.5, weighted cross-entropy, early stopping
on the validation accuracy of held-out *training* actors with patience 30, at most 500
epochs.  After fitting it gives each frame's posteriors, fc50 or flatten-810 activations
(``transform``) to an aggregator (max-voting, attention bi-LSTM).

``freeze=True`` is the paper's feature extraction (Table 3, upper half): the pretrained STN is
used as it is, trained on nothing, and its per-frame outputs (its own classes' posteriors, fc50
or flatten-810) feed the aggregator, which alone learns the target classes."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from emokit_core.specs import WeightsRef
from emokit_core.training import NetworkClassifier


class STNFrameClassifier(NetworkClassifier):
    """Frames ``[2, size, size]`` (face, saliency; uint8) -> emotion, one frame at a time.

    The defaults are the paper's recipe.  Training from scratch (docs/augmentation.md) adds,
    on the training device, a random rotation of up to ``rotation`` degrees and shift of up
    to ``shift`` pixels shared by a frame's face and saliency map, a random brightness
    change of up to ``brightness`` on the face, and the loop's ``optimizer``,
    ``weight_decay``, ``schedule``, ``label_smoothing``, ``mixup_alpha`` and ``sampling``.
    """

    def __init__(self, weights: WeightsRef | None = None, frame_output: str = "posteriors", size: int = 48,
                 lr: float = 1e-3, dropout: float = 0.5, batch_size: int = 128, max_epochs: int = 500,
                 eval_every: int = 0, patience: int = 30, val_fraction: float = 0.2, val_metric: str = "accuracy",
                 device: str = "auto", random_state: int = 0, optimizer: str = "adam",
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, momentum: float = 0.0,
                 weight_decay: float = 0.0, schedule: str = "constant",
                 label_smoothing: float = 0.0, mixup_alpha: float = 0.0, sampling: str = "random",
                 rotation: float = 0.0, shift: float = 0.0, brightness: float = 0.0, freeze: bool = False):
        self.weights = weights
        self.frame_output = frame_output
        self.size = size
        self.lr = lr
        self.dropout = dropout
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.eval_every = eval_every  # 0: once per epoch
        self.patience = patience
        self.val_fraction = val_fraction
        self.val_metric = val_metric
        self.device = device
        self.random_state = random_state
        self.optimizer = optimizer
        self.betas = betas
        self.eps = eps
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.mixup_alpha = mixup_alpha
        self.sampling = sampling
        self.rotation = rotation
        self.shift = shift
        self.brightness = brightness
        self.freeze = freeze

    def build_network(self, n_classes: int, pretrained: bool):
        import torch

        from .stn import SaliencyGuidedSTN, load_stn_checkpoint

        if self.freeze:  # a frozen STN keeps the class layer of its checkpoint
            n_classes = getattr(self, "head_classes_", n_classes)
        net = SaliencyGuidedSTN(n_classes=n_classes, dropout=self.dropout)
        if pretrained and self.weights is not None:
            # AffectNet's and FER-2013's heads are replaced by one for the target classes, unless frozen
            load_stn_checkpoint(net, self.weights.path, n_classes=None if self.freeze else n_classes)
        # channels-last convolutions: about a third faster a training step on CPUs (oneDNN) and GPUs
        return net.to(memory_format=torch.channels_last)

    def make_augmentation(self):
        from torch import nn

        from emokit_core.augment import RandomAffine, RandomBrightness, child_seed

        steps = []
        if self.rotation or self.shift:
            steps.append(RandomAffine(self.rotation, self.shift, seed=child_seed(self.random_state, 1)))
        if self.brightness:
            steps.append(RandomBrightness(self.brightness, channels=(0,), seed=child_seed(self.random_state, 2)))
        return nn.Sequential(*steps) if steps else None

    def make_batch(self, items: Sequence[np.ndarray], device: str, rng: np.random.Generator | None):
        import torch

        frames = np.stack([np.asarray(i) for i in items]).reshape(-1, 2, self.size, self.size)
        return torch.from_numpy(frames).to(device).float().div_(255.0)

    def log_probs(self, net, batch):
        import torch

        return torch.log_softmax(net(batch[:, :1], batch[:, 1:], output="logits"), dim=-1)

    def fit(self, X: Sequence[np.ndarray], y: np.ndarray, groups: np.ndarray | None = None,
            checkpoint: str | None = None) -> "STNFrameClassifier":
        import torch
        from sklearn.utils.class_weight import compute_class_weight

        if self.freeze:
            return self._load_frozen(y)
        classes = np.unique(y)
        # Weighted cross-entropy: RAVDESS has half as many neutral clips as the other classes.
        self.class_weights_ = torch.as_tensor(compute_class_weight("balanced", classes=classes, y=np.asarray(y)),
                                              dtype=torch.float32, device=_device_of(self))
        return super().fit(X, y, groups=groups, checkpoint=checkpoint)

    def _load_frozen(self, y: np.ndarray) -> "STNFrameClassifier":
        from emokit_core.errors import EmokitError

        if self.weights is None:
            raise EmokitError("a frozen STN (freeze=true) needs pretrained weights, and none were given",
                              "give weights=NAME|PATH (the shipped stn-fer2013 is the default), or freeze=false")
        self.classes_ = np.unique(np.asarray(y))  # what the aggregator learns; the STN's own head stays
        net = self.build_network(len(self.classes_), pretrained=True)
        self.head_classes_ = net.n_classes
        self.state_ = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        self.n_steps_, self.best_validation_, self.history_ = 0, float("nan"), []
        self.predicts_classes_ = False  # its posteriors are over its source classes, not classes_
        return self

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        if self.freeze:
            raise AttributeError("a frozen STN has no posteriors over the target classes; use transform()")
        return super().predict_proba(X)

    def transform(self, X: Sequence[np.ndarray]) -> np.ndarray:
        """Each frame's ``frame_output``: posteriors, fc50 or the 810-d flatten."""
        import torch

        device = _device_of(self)
        net = self._fitted_network(device).eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), 4 * self.batch_size):
                batch = self.make_batch(X[start: start + 4 * self.batch_size], device, None)
                out.append(net(batch[:, :1], batch[:, 1:], output=self.frame_output).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def _device_of(model: Any) -> str:
    from emokit_core.training import pick_device

    return pick_device(model.device)
