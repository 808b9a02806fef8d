"""Shared machinery for recognizers that train a torch network (fine-tuned CNN14, AlexNet,
STN, bi-LSTM): scikit-learn API, an actor-wise validation split for early stopping, the
training loop with periodic validation, best-state keeping, batched inference, and
pickling that drops live networks.  torch is imported only when a model trains or predicts.

A subclass declares its parameters in ``__init__`` (scikit-learn conventions) and
implements :meth:`build_network`, :meth:`make_batch` and, if it is not Adam on NLL of
log-probabilities, :meth:`make_optimizer` / :meth:`loss`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` where a GPU is visible, else ``cpu``; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def validation_split(groups: np.ndarray | None, n: int, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``fraction`` of the training clips for early stopping, whole actors at a
    time when ``groups`` (the actors) are given, so validation never shares a speaker with training."""
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


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """Base of the torch recognizers.

    Training draws random batches of ``batch_size`` from the training part; every
    ``eval_every`` steps (or once per epoch when ``eval_every`` is 0) it scores the
    validation part (accuracy, or macro-F1 with ``val_metric="macro_f1"``) and keeps the best
    state; it stops after ``patience`` checks without improvement or after ``max_steps``.
    Subclasses define the parameters used here in their ``__init__``: batch_size,
    eval_every, patience, val_fraction, device, random_state, and max_epochs or max_steps
    (or override :meth:`step_budget`); they may set ``val_metric``.
    """

    val_metric = "accuracy"

    # -- to implement -----------------------------------------------------------------------
    def build_network(self, n_classes: int, pretrained: bool):
        raise NotImplementedError

    def make_batch(self, items: Sequence[Any], device: str, rng: np.random.Generator | None):
        """Inputs of a batch as a tensor on ``device``; ``rng`` is given when training."""
        raise NotImplementedError

    def log_probs(self, net, batch):
        return net(batch)

    def step_budget(self, n_train: int) -> int:
        """Training steps at most: ``max_epochs`` passes over the training part where the
        subclass counts epochs, else ``max_steps``."""
        if hasattr(self, "max_epochs"):
            return self.max_epochs * max(1, math.ceil(n_train / self.batch_size))
        return self.max_steps

    def make_optimizer(self, parameters):
        import torch

        return torch.optim.Adam(parameters, lr=getattr(self, "lr", 1e-3))

    def loss(self, log_probs, targets):
        import torch.nn.functional as F

        return F.nll_loss(log_probs, targets, weight=getattr(self, "class_weights_", None))

    # -- training ---------------------------------------------------------------------------
    def _autocast(self, device: str):
        import torch

        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda"))

    def _predict_log_probs(self, net, X: Sequence[Any], device: str) -> np.ndarray:
        import torch

        net.eval()
        out = []
        with torch.inference_mode(), self._autocast(device):
            for start in range(0, len(X), self.batch_size):
                out.append(self.log_probs(net, self.make_batch(X[start: start + self.batch_size], device, None))
                           .float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes_)), np.float32)

    def _validation_score(self, predicted: np.ndarray, truth: np.ndarray) -> float:
        if getattr(self, "val_metric", "accuracy") == "macro_f1":
            from sklearn.metrics import f1_score

            return float(f1_score(truth, predicted, average="macro", zero_division=0))
        return float((predicted == truth).mean())

    def fit(self, X: Sequence[Any], y: np.ndarray, groups: np.ndarray | None = None) -> "NetworkClassifier":
        import torch

        X = list(X)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        self.classes_, targets = np.unique(np.asarray(y), return_inverse=True)
        train, val = validation_split(None if groups is None else np.asarray(groups), len(X),
                                      self.val_fraction, rng)
        device = pick_device(self.device)
        net = self.build_network(len(self.classes_), pretrained=True).to(device)
        optimizer = self.make_optimizer([p for p in net.parameters() if p.requires_grad])
        labels = torch.as_tensor(targets)
        eval_every = self.eval_every or max(1, -(-len(train) // self.batch_size))  # 0: once per epoch
        best_score, best_state, stale = -np.inf, None, 0
        self.history_: list[tuple[int, float]] = []
        step, limit = 0, self.step_budget(len(train))
        for step in range(1, limit + 1):
            net.train()
            batch = rng.choice(train, self.batch_size, replace=len(train) < self.batch_size)
            with self._autocast(device):
                log_probs = self.log_probs(net, self.make_batch([X[i] for i in batch], device, rng))
            loss = self.loss(log_probs.float(), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % eval_every and step != limit:
                continue
            if len(val):
                predicted = self._predict_log_probs(net, [X[i] for i in val], device).argmax(1)
                score = self._validation_score(predicted, targets[val])
            else:  # no validation actors: keep the last state
                score = float(step)
            self.history_.append((step, score))
            if score > best_score:
                best_score, stale = score, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        self.state_ = best_state
        self.n_steps_ = step
        self.best_validation_ = best_score
        return self

    # -- inference --------------------------------------------------------------------------
    def _fitted_network(self, device: str):
        net = getattr(self, "_net", None)
        if net is None or str(next(net.parameters()).device).split(":")[0] != device.split(":")[0]:
            net = self.build_network(len(self.classes_), pretrained=False)  # the fitted state replaces it all
            net.load_state_dict(self.state_)
            self._net = net.to(device)
        return self._net

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        device = pick_device(self.device)
        return np.exp(self._predict_log_probs(self._fitted_network(device), list(X), device))

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_net", None)  # rebuilt from state_ where it is used
        return state
