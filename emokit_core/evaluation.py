"""Evaluation of a finished run from its stored out-of-fold predictions.

Every clip of the corpus is predicted exactly once, by the model of the fold that held its
actor out, so the scores here are computed from the registry's ``predictions`` table alone:
pooled accuracy with the paper's 95% normal-approximation interval, per-fold accuracy (mean
and sample standard deviation), macro-F1, unweighted average recall (UAR), per-class recall,
precision and F1, the ZeroR reference, and the confusion matrix averaged over folds the way
the paper's figures 5, 6 and 8 are built.

>>> ev = evaluate_run(Registry("registry.db"), 3)
>>> print(confusion_text(ev))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import plots
from .errors import EvaluationError
from .metrics import scores, zeror_predictions

if TYPE_CHECKING:  # pragma: no cover
    from .registry.records import RunRecord

__all__ = [
    "RunEvaluation",
    "evaluate_run",
    "confusion_text",
    "plot_confusion",
    "plot_fold_accuracy",
    "plot_per_class_f1",
    "run_label",
]


@dataclass
class RunEvaluation:
    """The scores of one run; fractions in [0, 1] except the confusion percentages."""

    run: RunRecord
    classes: list[str]
    n: int
    accuracy: float  # pooled over clips
    ci95: float  # half-width of the 95% normal-approximation interval of ``accuracy``
    fold_accuracy: list[float]
    fold_mean: float
    fold_std: float  # sample standard deviation over folds (0 with a single fold)
    macro_f1: float
    uar: float
    zeror_accuracy: float
    per_class: list[dict]  # {"class", "recall", "precision", "f1", "support"}
    confusion: np.ndarray  # row-normalised percentages, averaged over folds
    confusion_counts: np.ndarray  # pooled counts: rows true class, columns predicted
    fold_ids: list[int] = field(default_factory=list)  # fold number of each fold_accuracy entry
    fold_sizes: list[int] = field(default_factory=list)  # held-out clips of each fold
    confusion_mean_counts: np.ndarray | None = None  # counts averaged over folds (clips per fold)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the run's identity, every score, both confusion matrices)."""
        run = self.run
        return {
            "run_id": run.run_id, "ref": run.ref, "model": run.model, "version": run.version,
            "modality": run.modality, "corpus": run.corpus.name, "profile": run.profile,
            "config_hash": run.config_hash, "tags": run.tags,
            "classes": list(self.classes), "n": self.n,
            "accuracy": self.accuracy, "ci95": self.ci95,
            "fold_accuracy": list(self.fold_accuracy), "fold_ids": list(self.fold_ids),
            "fold_sizes": list(self.fold_sizes),
            "fold_mean": self.fold_mean, "fold_std": self.fold_std,
            "macro_f1": self.macro_f1, "uar": self.uar, "zeror_accuracy": self.zeror_accuracy,
            "per_class": [dict(c) for c in self.per_class],
            "confusion": np.round(self.confusion, 4).tolist(),
            "confusion_counts": self.confusion_counts.astype(int).tolist(),
            "confusion_mean_counts": (None if self.confusion_mean_counts is None
                                      else np.round(self.confusion_mean_counts, 4).tolist()),
        }


def run_label(run: RunRecord) -> str:
    """``speech.mfcc_svm@2 (run 7)``: how plots and tables name a run."""
    return f"{run.ref} (run {run.run_id})"


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def _row_percentages_over_folds(y: np.ndarray, pred: np.ndarray, folds: np.ndarray, n_classes: int) -> np.ndarray:
    """Each fold's confusion matrix as row percentages, averaged over the folds in which the
    row's class occurs (a class absent from a fold's held-out actors says nothing there)."""
    total = np.zeros((n_classes, n_classes))
    seen = np.zeros(n_classes)
    for fold in np.unique(folds):
        at = folds == fold
        counts = _confusion(y[at], pred[at], n_classes)
        support = counts.sum(axis=1)
        present = support > 0
        total[present] += 100.0 * counts[present] / support[present, None]
        seen[present] += 1
    return np.divide(total, seen[:, None], out=np.zeros_like(total), where=seen[:, None] > 0)


def evaluate_run(registry, run_id: int) -> RunEvaluation:
    """All scores of a finished run, from its out-of-fold predictions in ``registry``.

    Unknown run → RegistryError; an unfinished run, or one without predictions → EvaluationError.
    """
    from sklearn.metrics import precision_recall_fscore_support

    run = registry.get_run(run_id)
    rid = run.run_id
    if run.status != "finished":
        raise EvaluationError(
            f"run {rid} ({run.ref}) is {run.status}, not finished: its predictions are incomplete",
            f"finish it first (rerun the same `emokit run {run.model} …` command; it resumes), "
            "or evaluate a finished run (emokit runs)",
        )
    preds = registry.predictions(rid)
    if not preds:
        raise EvaluationError(f"run {rid} ({run.ref}) has no stored predictions",
                              "only runs recorded by `emokit run` can be evaluated; rerun the pipeline")
    classes = [str(c) for c in run.corpus.classes]
    k = len(classes)
    y = np.array([p.label for p in preds], dtype=np.int64)
    pred = np.array([p.pred for p in preds], dtype=np.int64)
    folds = np.array([p.fold for p in preds], dtype=np.int64)
    out_of_range = (y < 0) | (y >= k) | (pred < 0) | (pred >= k)
    if out_of_range.any():
        bad = preds[int(np.argmax(out_of_range))]
        raise EvaluationError(
            f"run {rid}: clip {bad.clip_id} has label {bad.label} / prediction {bad.pred} outside the "
            f"corpus's {k} classes",
            "the registry row is damaged; rerun the pipeline with --fresh",
        )

    pooled = scores(y, pred, k)
    fold_ids = sorted(set(folds.tolist()))
    fold_accuracy = [float((y[folds == f] == pred[folds == f]).mean()) for f in fold_ids]
    fold_sizes = [int((folds == f).sum()) for f in fold_ids]
    # ZeroR per fold: the majority class of the other folds' clips, i.e. of that fold's training set
    zeror_right = sum(
        int((zeror_predictions(y[folds != f], int((folds == f).sum())) == y[folds == f]).sum())
        if (folds != f).any() else 0
        for f in fold_ids
    )
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), average=None, zero_division=0)
    counts = _confusion(y, pred, k)
    return RunEvaluation(
        run=run,
        classes=classes,
        n=len(y),
        accuracy=pooled["accuracy"],
        ci95=pooled["ci95"],
        fold_accuracy=fold_accuracy,
        fold_mean=float(np.mean(fold_accuracy)),
        fold_std=float(np.std(fold_accuracy, ddof=1)) if len(fold_accuracy) > 1 else 0.0,
        macro_f1=pooled["macro_f1"],
        uar=pooled["uar"],
        zeror_accuracy=zeror_right / len(y),
        per_class=[
            {"class": c, "recall": float(r), "precision": float(p), "f1": float(f), "support": int(s)}
            for c, r, p, f, s in zip(classes, recall, precision, f1, support)
        ],
        confusion=_row_percentages_over_folds(y, pred, folds, k),
        confusion_counts=counts,
        fold_ids=fold_ids,
        fold_sizes=fold_sizes,
        confusion_mean_counts=counts / len(fold_ids),
    )


# --------------------------------------------------------------------------- text


def confusion_text(ev: RunEvaluation, *, counts: bool = False) -> str:
    """The fold-averaged confusion matrix as a text table, rounded to whole numbers as in the
    paper's figures: row percentages (each row is a true class), or with ``counts=True`` the
    clips per fold (the paper's figure 5 shows 288 clips per fold on average)."""
    matrix = ev.confusion_mean_counts if counts else ev.confusion
    if matrix is None:
        matrix = ev.confusion_counts / max(1, len(ev.fold_accuracy))
    unit = "clips per fold (mean over folds)" if counts else "% of the true class (mean over folds)"
    names = list(ev.classes)
    width = max(5, *(len(c) for c in names))
    lines = [f"{run_label(ev.run)}: rows true class, columns predicted, {unit}",
             " " * (width + 2) + " ".join(c[:width].rjust(width) for c in names)]
    for name, row in zip(names, matrix):
        lines.append(name.ljust(width + 2) + " ".join(f"{v:{width}.0f}" for v in row))
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def plot_confusion(ev: RunEvaluation, path: str | os.PathLike[str]) -> Path:
    """The fold-averaged row-percentage confusion matrix as a PNG heat map with rounded cells."""
    k = len(ev.classes)
    fig = plots.figure(1.2 + 0.75 * k, 0.9 + 0.7 * k)
    ax = fig.add_subplot()
    image = ax.imshow(ev.confusion, vmin=0, vmax=100, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the true class")
    ax.set_xticks(range(k), ev.classes, rotation=45, ha="right")
    ax.set_yticks(range(k), ev.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            value = ev.confusion[i, j]
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 50 else "black")
    ax.set_title(f"{run_label(ev.run)}\naccuracy {100 * ev.accuracy:.2f} ± {100 * ev.ci95:.2f} %", fontsize=9)
    return plots.save(fig, path, format="png")


def _grouped_bars(ax, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> list:
    """One bar per series in each group; returns each series' colour."""
    width = 0.8 / max(1, len(series))
    colors = []
    for i, (label, values) in enumerate(series):
        xs = np.arange(len(values)) + (i - (len(series) - 1) / 2) * width
        bars = ax.bar(xs, 100 * np.asarray(values, dtype=float), width, label=label)
        colors.append(bars.patches[0].get_facecolor() if bars.patches else None)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return colors


def plot_fold_accuracy(evs: list[RunEvaluation], path: str | os.PathLike[str]) -> Path:
    """Accuracy of every fold, one bar per run, with each run's pooled accuracy as a line."""
    if not evs:
        raise EvaluationError("no runs to plot", "pass at least one evaluated run")
    fold_ids = sorted({f for ev in evs for f in (ev.fold_ids or range(len(ev.fold_accuracy)))})
    fig = plots.figure(max(5.0, 1.0 + 0.5 * len(fold_ids) * len(evs)), 3.6)
    ax = fig.add_subplot()
    series = []
    for ev in evs:
        by_fold = dict(zip(ev.fold_ids or range(len(ev.fold_accuracy)), ev.fold_accuracy))
        series.append((run_label(ev.run), [by_fold.get(f, float("nan")) for f in fold_ids]))
    colors = _grouped_bars(ax, [f"fold {f}" for f in fold_ids], series)
    for ev, color in zip(evs, colors):
        ax.axhline(100 * ev.accuracy, color=color, linestyle="--", linewidth=1)
    ax.set_ylabel("accuracy %")
    ax.set_title("accuracy per fold (dashed: pooled over clips)", fontsize=9)
    return plots.save(fig, path, format="png")


def plot_per_class_f1(evs: list[RunEvaluation], path: str | os.PathLike[str]) -> Path:
    """F1 of every class, one bar per run (classes in the first run's order, then any others)."""
    if not evs:
        raise EvaluationError("no runs to plot", "pass at least one evaluated run")
    classes: list[str] = []
    for ev in evs:
        classes += [c for c in ev.classes if c not in classes]
    fig = plots.figure(max(5.0, 1.0 + 0.35 * len(classes) * len(evs)), 3.6)
    ax = fig.add_subplot()
    series = []
    for ev in evs:
        f1 = {c["class"]: c["f1"] for c in ev.per_class}
        series.append((run_label(ev.run), [f1.get(c, float("nan")) for c in classes]))
    _grouped_bars(ax, classes, series)
    ax.tick_params(axis="x", labelrotation=45)
    ax.set_ylabel("F1 %")
    ax.set_title("F1 per class", fontsize=9)
    return plots.save(fig, path, format="png")
