"""Shared machinery for recognizers that train a torch network (fine-tuned CNN14, AlexNet,
STN, bi-LSTM): scikit-learn API, an actor-wise validation split for early stopping, the
training loop with periodic validation, best-state keeping, batched inference, and
pickling that drops live networks.  torch is imported only when a model trains or predicts.

A subclass declares its parameters in ``__init__`` (scikit-learn conventions), among them
every training setting of :data:`LOOP_SETTINGS` and its :attr:`~NetworkClassifier.budget_settings`
(checked at fit, so ``get_params()`` shows what a run trained with), and implements
:meth:`build_network`, :meth:`make_batch` and, where it needs them, :meth:`log_probs`,
:meth:`make_augmentation` or :meth:`loss`.  Besides the paper's recipe, the settings select
the recipe for training from scratch (docs/augmentation.md): ``optimizer`` (adam, adamw, sgd)
with ``weight_decay``, ``schedule`` (constant, one_cycle), ``label_smoothing``,
``mixup_alpha``, ``sampling`` (random batches, or shuffled epochs) and ``patience=0`` (no
early stopping).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from . import progress

#: What the training loop reads, besides the budget.  The paper's recipe is ``optimizer="adam"``
#: (``betas``, ``eps``; ``momentum`` is SGD's), a constant ``schedule``, no ``label_smoothing``
#: or ``mixup_alpha``, ``sampling="random"``, and ``val_metric`` ``accuracy`` or ``macro_f1``.
LOOP_SETTINGS = ("batch_size", "eval_every", "patience", "val_fraction", "val_metric", "device", "random_state",
                 "optimizer", "lr", "betas", "eps", "momentum", "weight_decay", "schedule", "label_smoothing",
                 "mixup_alpha", "sampling")


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` where a GPU is visible, else ``cpu``; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> None:
    """A GPU asked for where torch sees none is an error saying so, before any work starts."""
    import torch

    if pick_device(device).startswith("cuda") and not torch.cuda.is_available():
        from .errors import EmokitError

        raise EmokitError(f"device {device!r} was asked for, but torch sees no CUDA GPU here",
                          "use --device cpu (or auto), or check the GPU driver and torch's CUDA build")


def validation_split(groups: np.ndarray | None, n: int, fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``fraction`` of the training clips for early stopping, whole actors at a
    time when ``groups`` (the actors) are given, so validation never shares an actor with training."""
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


class BatchPlan:
    """The training batches of a fit, as ``sampling`` says: independent random draws, or shuffled
    passes (a final partial batch dropped).  Its state (with the generator it shares with the
    loop) is what a checkpoint needs to continue the same sequence of batches."""

    def __init__(self, train: np.ndarray, batch_size: int, sampling: str, rng: np.random.Generator):
        self.train, self.batch_size, self.sampling, self.rng = train, batch_size, sampling, rng
        self.order: np.ndarray | None = None  # the current pass (epochs)
        self.position = 0

    def next(self) -> np.ndarray:
        if self.sampling == "random":
            return self.rng.choice(self.train, self.batch_size, replace=len(self.train) < self.batch_size)
        size = min(self.batch_size, len(self.train))
        if self.order is None or self.position + size > len(self.order):
            self.order, self.position = self.rng.permutation(self.train), 0
        self.position += size
        return self.order[self.position - size: self.position]

    def state(self) -> dict[str, Any]:
        return {"order": None if self.order is None else self.order.tolist(), "position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.order = None if state["order"] is None else np.asarray(state["order"], dtype=self.train.dtype)
        self.position = state["position"]


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """Base of the torch recognizers.

    Training draws batches of ``batch_size`` from the training part: independent random
    batches (``sampling="random"``, the default) or shuffled passes (``sampling="epochs"``,
    a final partial batch dropped).  Every ``eval_every`` steps (or once per epoch when
    ``eval_every`` is 0) it scores the validation part (accuracy, or macro-F1 with
    ``val_metric="macro_f1"``) and keeps the best state; it stops after ``patience`` checks
    without improvement or after the step budget.  ``patience=0`` or no validation part
    (``val_fraction=0``) trains the whole budget and keeps the last state.
    Subclasses declare every setting of :data:`LOOP_SETTINGS` and of ``budget_settings`` as
    an ``__init__`` parameter; a subclass that counts its budget otherwise overrides
    :meth:`step_budget` and names what it reads in ``budget_settings``.

    A training step: :meth:`make_batch` (on the device) -> the batch augmentation of
    :meth:`make_augmentation` -> mixup (``mixup_alpha`` > 0) -> the network in train mode
    (where the network may augment inside, e.g. SpecAugment on CNN14's log-mel) -> loss ->
    optimizer and schedule step.  Validation and prediction see the clips unaugmented.
    """

    #: What :meth:`step_budget` reads.
    budget_settings: tuple[str, ...] = ("max_epochs",)

    # -- to implement -----------------------------------------------------------------------
    def build_network(self, n_classes: int, pretrained: bool):
        raise NotImplementedError

    def make_batch(self, items: Sequence[Any], device: str, rng: np.random.Generator | None):
        """Inputs of a batch as a tensor on ``device``; ``rng`` is given when training."""
        raise NotImplementedError

    def log_probs(self, net, batch):
        return net(batch)

    def make_augmentation(self):
        """A module transforming training batches on the device in train mode (see
        :mod:`emokit_core.augment`), or ``None`` for no augmentation."""
        return None

    def step_budget(self, n_train: int) -> int:
        """Training steps at most: ``max_epochs`` passes over the training part."""
        return self.max_epochs * self.steps_per_epoch(n_train)

    def steps_per_epoch(self, n_train: int) -> int:
        if self.sampling == "epochs":
            return max(1, n_train // self.batch_size)
        return max(1, math.ceil(n_train / self.batch_size))

    def make_optimizer(self, parameters):
        """``optimizer``: adam (default; ``betas``, ``eps``), adamw, or sgd (``momentum``), with
        ``lr`` and ``weight_decay``."""
        import torch

        name = self.optimizer
        if name == "sgd":
            return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if name not in kinds:
            raise ValueError(f"optimizer must be adam, adamw or sgd, got {name!r}")
        return kinds[name](parameters, lr=self.lr, betas=tuple(self.betas), eps=self.eps,
                           weight_decay=self.weight_decay)

    def make_schedule(self, optimizer, n_steps: int):
        """``schedule``: constant (default: no scheduler) or one_cycle (a one-cycle schedule over
        the whole step budget peaking at ``lr``, stepped once per training step)."""
        import torch

        name = self.schedule
        if name == "constant":
            return None
        if name != "one_cycle":
            raise ValueError(f"schedule must be constant or one_cycle, got {name!r}")
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=max(2, n_steps))

    def loss(self, log_probs, targets):
        """NLL of the log-probabilities (weighted by ``class_weights_`` where set); with
        ``label_smoothing`` or soft (mixup) targets, the cross-entropy against the smoothed or
        soft distribution (log-softmax of log-probabilities is themselves, so it is the same
        loss where neither is used)."""
        import torch.nn.functional as F

        weight = getattr(self, "class_weights_", None)
        if weight is not None:
            weight = weight.to(log_probs.device, log_probs.dtype)
        smoothing = self.label_smoothing
        if smoothing or targets.is_floating_point():
            return F.cross_entropy(log_probs, targets, weight=weight, label_smoothing=smoothing)
        return F.nll_loss(log_probs, targets, weight=weight)

    # -- training ---------------------------------------------------------------------------
    def _autocast(self, device: str):
        import torch

        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda"))

    def inference_batches(self, X: Sequence[Any]) -> list[np.ndarray]:
        """Index batches for validation and prediction: runs of ``batch_size`` in order.  A
        subclass whose batches pad their items overrides it so that an item's prediction
        never depends on the items batched with it."""
        return [np.arange(start, min(start + self.batch_size, len(X))) for start in range(0, len(X), self.batch_size)]

    def _predict_log_probs(self, net, X: Sequence[Any], device: str) -> np.ndarray:
        import torch

        net.eval()
        out = np.zeros((len(X), len(self.classes_)), np.float32)
        with torch.inference_mode(), self._autocast(device):
            for batch in self.inference_batches(X):
                out[batch] = self.log_probs(net, self.make_batch([X[i] for i in batch], device, None)).float().cpu()
        return out

    def _validation_score(self, predicted: np.ndarray, truth: np.ndarray) -> float:
        if self.val_metric == "macro_f1":
            from sklearn.metrics import f1_score

            return float(f1_score(truth, predicted, average="macro", zero_division=0))
        return float((predicted == truth).mean())

    def check_settings(self) -> None:
        """Refuse a subclass whose ``__init__`` lacks a setting the loop reads: a class attribute
        or a missing setting would train with a value ``get_params()`` (and the registry) never shows."""
        declared = self.get_params(deep=False)
        missing = [name for name in (*LOOP_SETTINGS, *self.budget_settings) if name not in declared]
        if missing:
            raise TypeError(f"{type(self).__name__} does not declare the training settings {missing} as "
                            f"__init__ parameters (emokit_core.training.LOOP_SETTINGS)")

    def fit(self, X: Sequence[Any], y: np.ndarray, groups: np.ndarray | None = None,
            checkpoint: str | os.PathLike[str] | None = None) -> "NetworkClassifier":
        """Train on ``X``, ``y`` (``groups``: the actors, for an actor-wise validation split).

        ``checkpoint``: a file where the loop's whole state (network, optimizer, schedule, every
        random generator, the best state so far) is written at each validation check; a later fit
        of the same estimator on the same data given the same file continues from it, and ends as
        an uninterrupted fit would.  The file is removed when the fit ends."""
        import torch

        from .augment import BatchAugmentation, Mixup, child_seed

        self.check_settings()
        X = list(X)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        self.classes_, targets = np.unique(np.asarray(y), return_inverse=True)
        train, val = validation_split(None if groups is None else np.asarray(groups), len(X),
                                      self.val_fraction, rng)
        device = pick_device(self.device)
        net = self.build_network(len(self.classes_), pretrained=True).to(device)
        optimizer = self.make_optimizer([p for p in net.parameters() if p.requires_grad])
        limit = self.step_budget(len(train))
        schedule = self.make_schedule(optimizer, limit)
        augment = self.make_augmentation()
        alpha = self.mixup_alpha
        mixup = Mixup(alpha, seed=child_seed(self.random_state, 0)) if alpha else None
        labels = torch.as_tensor(targets)
        eval_every = self.eval_every or self.steps_per_epoch(len(train))  # 0: once per epoch
        best_score, best_state, stale = -np.inf, None, 0
        self.history_: list[tuple[int, float]] = []
        plan = BatchPlan(train, self.batch_size, self.sampling, rng)
        generators = [m for m in ((augment.modules() if augment is not None else []))
                      if isinstance(m, BatchAugmentation)] + ([mixup] if mixup is not None else [])
        resumable = _Checkpoint(checkpoint, self, X, targets, net, optimizer, schedule, plan, generators)
        step, stopped = 0, False
        if resumable.found():
            step, best_score, best_state, stale, self.history_, stopped = resumable.load(device)
        # one bar per fit, in steps (so the ETA is right whatever the epoch size), under the fold's bar
        with progress.task(f"training {type(self).__name__} (steps)", limit) as advance:
            advance(step)
            while step < limit and not stopped:
                step += 1
                batch = plan.next()
                net.train()
                inputs = self.make_batch([X[i] for i in batch], device, rng)
                if augment is not None:
                    inputs = augment.train()(inputs)
                truth = labels[batch].to(device)
                if mixup is not None:
                    soft = torch.nn.functional.one_hot(truth, len(self.classes_)).float()
                    inputs, truth = mixup.train()(inputs, soft)
                with self._autocast(device):
                    log_probs = self.log_probs(net, inputs)
                loss = self.loss(log_probs.float(), truth)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                advance()
                if not len(val) or (step % eval_every and step != limit):
                    continue
                predicted = self._predict_log_probs(net, [X[i] for i in val], device).argmax(1)
                score = self._validation_score(predicted, targets[val])
                self.history_.append((step, score))
                if not self.patience:  # no early stopping: scores for the record only
                    best_score = score
                elif score > best_score:
                    best_score, stale = score, 0
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                else:
                    stale += 1
                    stopped = stale >= self.patience
                resumable.save(step, best_score, best_state, stale, self.history_, stopped)
        if best_state is None:  # no validation part, or no early stopping: the last state
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
            best_score = best_score if len(val) else float("nan")
        self.state_ = best_state
        self.n_steps_ = step
        self.best_validation_ = best_score
        resumable.remove()
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


class _Checkpoint:
    """A fit's state on disk (``NetworkClassifier.fit(checkpoint=...)``): written atomically at
    each validation check, read back only by a fit of the same settings on the same data."""

    def __init__(self, path, model, X, targets, net, optimizer, schedule, plan: BatchPlan, generators: list):
        self.path = Path(path) if path is not None else None
        self.parts = (net, optimizer, schedule, plan, generators)
        if self.path is not None:
            what = hashlib.sha256(repr(sorted(model.get_params(deep=False).items())).encode())
            what.update(np.asarray(targets).tobytes())
            what.update(str(len(X)).encode())
            self.identity = what.hexdigest()

    def found(self) -> bool:
        return self.path is not None and self.path.is_file()

    def save(self, step, best_score, best_state, stale, history, stopped) -> None:
        if self.path is None:
            return
        import torch

        net, optimizer, schedule, plan, generators = self.parts
        state = {"identity": self.identity, "step": step, "best_score": float(best_score),
                 "best_state": best_state, "stale": stale, "history": list(history), "stopped": stopped,
                 "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict() if schedule is not None else None,
                 "plan": plan.state(), "rng": plan.rng.bit_generator.state,
                 "generators": [g.rng.bit_generator.state for g in generators],
                 "torch_rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save(state, partial)
        partial.replace(self.path)

    def load(self, device: str):
        import torch

        from .errors import EmokitError

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
            raise EmokitError(f"{self.path}: not a training checkpoint emokit can read ({exc})",
                              "delete it to start the training again") from exc
        if state.get("identity") != self.identity:
            raise EmokitError(f"{self.path} is the checkpoint of another training (other settings or data)",
                              "delete it, or give the settings and data it was made with")
        net, optimizer, schedule, plan, generators = self.parts
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(state["schedule"])
        plan.restore(state["plan"])
        plan.rng.bit_generator.state = state["rng"]
        for generator, saved in zip(generators, state["generators"]):
            generator.rng.bit_generator.state = saved
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        history = [tuple(h) for h in state["history"]]
        return state["step"], state["best_score"], state["best_state"], state["stale"], history, state["stopped"]

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
