"""Fine-tuning CNN14 on emotion labels (paper 3.2.2 and 4.1): a new n-way head on the
2048-d embedding, log-softmax + NLL, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), batch 24, at
most 30,000 iterations, early stopping on a validation split of the *training* actors.

The extractor caches each clip's (VAD-trimmed) 16 kHz waveform; the recognizer trains on
those.  It is a scikit-learn estimator whose ``fit`` takes ``groups`` (the clips' actors) so
that validation actors are never training actors, and the held-out fold is never seen.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from emokit_core.contracts import SPEECH, Clip
from emokit_core.specs import WeightsRef

from .extractors import pick_device


class Waveform(BaseEstimator):
    """The clip's 16 kHz mono waveform, trimmed to its speech when ``vad`` is not ``none``."""

    modality = SPEECH
    weights_sha256 = None

    def __init__(self, vad: str = "none"):
        self.vad = vad

    @property
    def cache_version(self) -> str:
        from .vad import VadTrim

        return f"1+{VadTrim(self.vad).cache_version}"

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        from .vad import VadTrim

        return VadTrim(self.vad).trim(audio, sample_rate, clip)[0].astype(np.float32)


def validation_split(groups: np.ndarray | None, n: int, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``fraction`` of the training clips for early stopping, whole actors at a time."""
    index = np.arange(n)
    if fraction <= 0 or n < 2:
        return index, index[:0]
    if groups is None:
        shuffled = rng.permutation(n)
        cut = max(1, int(round(n * fraction)))
        return np.sort(shuffled[cut:]), np.sort(shuffled[:cut])
    actors = rng.permutation(np.unique(groups))
    n_val = min(len(actors) - 1, max(1, int(round(len(actors) * fraction))))
    val = np.isin(groups, actors[:n_val])
    return index[~val], index[val]


class Cnn14FineTuner(ClassifierMixin, BaseEstimator):
    """CNN14 with a new head, fine-tuned end to end (blocks up to ``freeze_blocks`` frozen).

    Validation accuracy is checked every ``eval_every`` iterations; training stops after
    ``patience`` checks without improvement or at ``max_iterations``, and the best state is
    kept.  ``crop_seconds`` (0 = off) crops training clips to a random window to save time;
    prediction always sees whole clips.
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

    # -- network ----------------------------------------------------------------------------
    def _network(self, n_classes: int, pretrained: bool):
        import torch

        from .cnn14 import Cnn14, freeze_lower_blocks, load_panns_checkpoint, replace_head

        torch.manual_seed(self.random_state)
        net = Cnn14(width=self.width)
        if pretrained and self.weights is not None:
            load_panns_checkpoint(net, self.weights.path)
        replace_head(net, n_classes)
        freeze_lower_blocks(net, self.freeze_blocks)
        return net

    def _batch(self, clips: Sequence[np.ndarray], device: str, rng: np.random.Generator | None = None):
        """Zero-pad to the longest clip (or crop to ``crop_seconds`` at random when training)."""
        import torch

        crop = int(self.crop_seconds * 16000) if rng is not None and self.crop_seconds else 0
        parts = []
        for clip in clips:
            clip = np.asarray(clip, dtype=np.float32)
            if crop and len(clip) > crop:
                start = int(rng.integers(0, len(clip) - crop + 1))
                clip = clip[start: start + crop]
            parts.append(clip)
        out = np.zeros((len(parts), max(len(p) for p in parts)), np.float32)
        for row, part in zip(out, parts):
            row[: len(part)] = part
        return torch.from_numpy(out).to(device)

    def _log_probs(self, net, X: Sequence[np.ndarray], device: str):
        import torch

        net.eval()
        outputs = []
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16,
                                                    enabled=device.startswith("cuda")):
            for start in range(0, len(X), self.batch_size):
                outputs.append(net(self._batch(X[start: start + self.batch_size], device))["log_probs"].float())
        return torch.cat(outputs).cpu()

    # -- scikit-learn API -------------------------------------------------------------------
    def fit(self, X: Sequence[np.ndarray], y: np.ndarray, groups: np.ndarray | None = None) -> "Cnn14FineTuner":
        import torch
        import torch.nn.functional as F

        rng = np.random.default_rng(self.random_state)
        self.classes_, targets = np.unique(np.asarray(y), return_inverse=True)
        train, val = validation_split(None if groups is None else np.asarray(groups), len(X),
                                      self.val_fraction, rng)
        device = pick_device(self.device)
        net = self._network(len(self.classes_), pretrained=True).to(device)
        if device.startswith("cuda"):
            net = net.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=self.lr,
                                     betas=tuple(self.betas), eps=self.eps)
        labels = torch.as_tensor(targets)
        best_score, best_state, checks_without_gain = -np.inf, None, 0
        self.history_: list[tuple[int, float]] = []
        iteration = 0
        for iteration in range(1, self.max_iterations + 1):
            net.train()
            batch = rng.choice(train, self.batch_size, replace=len(train) < self.batch_size)
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                log_probs = net(self._batch([X[i] for i in batch], device, rng))["log_probs"]
            loss = F.nll_loss(log_probs.float(), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if iteration % self.eval_every and iteration != self.max_iterations:
                continue
            if len(val):
                predicted = self._log_probs(net, [X[i] for i in val], device).argmax(1).numpy()
                score = float((predicted == targets[val]).mean())
            else:
                score = -float(loss)
            self.history_.append((iteration, score))
            if score > best_score:
                best_score, checks_without_gain = score, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            else:
                checks_without_gain += 1
                if checks_without_gain >= self.patience:
                    break
        self.state_ = best_state if best_state is not None else {k: v.cpu() for k, v in net.state_dict().items()}
        self.n_iterations_ = iteration
        self.best_validation_ = best_score
        return self

    def _fitted_network(self, device: str):
        net = getattr(self, "_net", None)
        if net is None or str(next(net.parameters()).device) != device:
            net = self._network(len(self.classes_), pretrained=False)  # the fitted state replaces it all
            net.load_state_dict(self.state_)
            self._net = net.to(device)
        return self._net

    def predict_proba(self, X: Sequence[np.ndarray]) -> np.ndarray:
        device = pick_device(self.device)
        return self._log_probs(self._fitted_network(device), list(X), device).exp().numpy()

    def predict(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_net", None)
        return state
