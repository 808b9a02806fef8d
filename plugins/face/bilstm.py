"""The paper's sequential face model (3.3.1, 4.2, Appendix B): a bi-LSTM with deep
self-attention on the per-frame outputs of the STN (posteriors, fc50 or flatten-810
embeddings), giving one verdict per video.

* :class:`AttentionBiLSTM`: 1 or 2 stacked bidirectional LSTM layers of ``hidden`` units,
  a deep self-attention (Baziotis et al.): an MLP of as many tanh layers as there are LSTM
  layers scores each step, a softmax over the clip's real steps (padding masked) weighs the
  hidden states ``h_i = fwd_i || bwd_i``, and a linear layer + log-softmax classifies the
  weighted sum.  Sequences are packed, so padding never reaches the LSTM and no clip is
  truncated.  Dropout (0.3) on the bi-LSTM outputs, between stacked layers and in the
  attention MLP.
* :class:`BiLSTMAggregator`: the emokit aggregator around it, trained with the shared
  :class:`~emokit_core.training.NetworkClassifier` loop: weighted ('balanced') cross-entropy,
  Adam lr 1e-3, batch 64, early stopping on the validation macro-F1 with a patience of 30
  epochs.  :meth:`BiLSTMAggregator.attention` gives the weight of every frame of every clip.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emokit_core.training import NetworkClassifier, pick_device


class SelfAttention(nn.Module):
    """Deep self-attention: ``layers`` Linear+tanh(+dropout) layers, the last one giving one
    score per step; softmax over the real steps only."""

    def __init__(self, size: int, layers: int = 1, dropout: float = 0.3):
        super().__init__()
        modules: list[nn.Module] = []
        for _ in range(layers - 1):
            modules += [nn.Linear(size, size), nn.Tanh(), nn.Dropout(dropout)]
        modules += [nn.Linear(size, 1), nn.Tanh(), nn.Dropout(dropout)]
        self.scorer = nn.Sequential(*modules)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``states`` [batch, steps, size], ``mask`` [batch, steps] (True on real steps) ->
        (weighted sum [batch, size], weights [batch, steps], exactly 0 on padding)."""
        scores = self.scorer(states).squeeze(-1).float()
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        summary = torch.bmm(weights.unsqueeze(1).to(states.dtype), states).squeeze(1)
        return summary, weights


class AttentionBiLSTM(nn.Module):
    """``forward(x [batch, steps, dim], lengths [batch])`` -> (log-probabilities
    [batch, n_classes], attention weights [batch, steps])."""

    def __init__(self, input_dim: int, n_classes: int, hidden: int = 150, layers: int = 1, dropout: float = 0.3):
        super().__init__()
        if layers not in (1, 2):
            raise ValueError(f"layers must be 1 or 2, got {layers}")
        self.lstm = nn.LSTM(input_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.lstm_dropout = nn.Dropout(dropout)
        self.attention = SelfAttention(2 * hidden, layers=layers, dropout=dropout)
        self.classifier = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
        if len(lengths) and int(lengths.min()) < 1:
            raise ValueError("every sequence needs at least one step")
        steps = x.shape[1]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        states = self.lstm_dropout(states)
        mask = torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        summary, weights = self.attention(states, mask)
        return torch.log_softmax(self.classifier(summary).float(), dim=-1), weights


def pad_sequences(items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad ``[frames_i, dim]`` arrays to the longest -> ([batch, steps, dim], lengths).
    A clip without frames becomes one zero frame (the LSTM needs a step)."""
    parts = []
    for item in items:
        a = np.asarray(item, dtype=np.float32)
        a = a.reshape(len(a), -1) if a.ndim != 2 else a
        parts.append(a)
    dim = max(p.shape[1] for p in parts)
    lengths = np.array([max(1, len(p)) for p in parts], dtype=np.int64)
    out = np.zeros((len(parts), int(lengths.max()), dim), np.float32)
    for row, part in zip(out, parts):
        row[: len(part), : part.shape[1]] = part
    return out, lengths


class BiLSTMAggregator(NetworkClassifier):
    """Clip verdict from the per-frame STN outputs (an emokit aggregator).

    ``fit(sequences, y, groups=None)`` with one ``[frames, dim]`` array per clip; one
    validation check per epoch (``eval_every=0``) on an actor-wise split of the training
    clips when ``groups`` is given; at most ``max_epochs`` epochs.
    """

    def __init__(self, layers: int = 1, hidden: int = 150, dropout: float = 0.3, lr: float = 1e-3,
                 batch_size: int = 64, max_epochs: int = 500, eval_every: int = 0, patience: int = 30,
                 val_fraction: float = 0.2, val_metric: str = "macro_f1", device: str = "auto", random_state: int = 0,
                 optimizer: str = "adam", betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0, schedule: str = "constant",
                 label_smoothing: float = 0.0, mixup_alpha: float = 0.0, sampling: str = "random"):
        self.layers = layers
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.eval_every = eval_every
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

    # -- NetworkClassifier hooks --------------------------------------------------------------
    def build_network(self, n_classes: int, pretrained: bool):
        return AttentionBiLSTM(self.n_features_in_, n_classes, hidden=self.hidden, layers=self.layers,
                               dropout=self.dropout)

    def make_batch(self, items: Sequence[np.ndarray], device: str, rng: np.random.Generator | None):
        x, lengths = pad_sequences(items)
        return torch.from_numpy(x).to(device), torch.from_numpy(lengths)

    def log_probs(self, net, batch):
        return net(*batch)[0]

    # -- scikit-learn API ---------------------------------------------------------------------
    def fit(self, sequences: Sequence[np.ndarray], y: np.ndarray, groups: np.ndarray | None = None,
            checkpoint: str | None = None) -> "BiLSTMAggregator":
        from sklearn.utils.class_weight import compute_class_weight

        sequences = list(sequences)
        if not sequences:
            raise ValueError("no training sequences")
        y = np.asarray(y)
        self.n_features_in_ = int(max(np.asarray(s).reshape(len(s), -1).shape[1] for s in sequences))
        classes = np.unique(y)
        self.class_weights_ = torch.as_tensor(compute_class_weight("balanced", classes=classes, y=y),
                                              dtype=torch.float32)
        return super().fit(sequences, y, groups, checkpoint=checkpoint)

    def attention(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each clip's attention weights over its real frames (``[frames]``, summing to 1)."""
        sequences = list(sequences)
        device = pick_device(self.device)
        net = self._fitted_network(device)
        net.eval()
        out: list[np.ndarray] = []
        with torch.inference_mode(), self._autocast(device):
            for start in range(0, len(sequences), self.batch_size):
                batch = self.make_batch(sequences[start: start + self.batch_size], device, None)
                weights = net(*batch)[1].float().cpu().numpy()
                real = [len(s) for s in sequences[start: start + self.batch_size]]
                out += [w[:n] for w, n in zip(weights, real)]
        return out
