"""Scores on out-of-fold predictions: accuracy with its 95% normal-approximation interval
(as the paper reports it), macro-F1 and unweighted average recall."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z95 = 1.959963984540054


def accuracy_interval(accuracy: float, n: int, z: float = Z95) -> float:
    """Half-width of the normal-approximation interval: z * sqrt(p (1 - p) / n)."""
    return z * math.sqrt(accuracy * (1.0 - accuracy) / n) if n else float("nan")


def scores(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> dict[str, float]:
    from sklearn.metrics import f1_score, recall_score

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    n = len(y_true)
    if n == 0:
        return {"n": 0.0}
    labels = list(range(n_classes))
    present = sorted(set(y_true.tolist()))  # macro averages over classes that occur
    acc = float((y_true == y_pred).mean())
    return {
        "accuracy": acc,
        "ci95": accuracy_interval(acc, n),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "n": float(n),
        **{f"recall_{k}": float(v) for k, v in zip(labels, recall_score(
            y_true, y_pred, labels=labels, average=None, zero_division=0))},
    }


def zeror_predictions(y_train: Sequence[int], n_test: int) -> np.ndarray:
    """ZeroR: the training fold's most frequent class (lowest index on ties)."""
    counts = np.bincount(np.asarray(y_train, dtype=int))
    return np.full(n_test, int(np.argmax(counts)))
