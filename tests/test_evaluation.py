"""Evaluation of stored out-of-fold predictions: the paper's interval, metrics by hand, fold-averaged
confusion matrices, plots, real runs and `emokit evaluate`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from emokit_core.errors import RegistryError
from emokit_core.evaluation import (EvaluationError, confusion_text, evaluate_run, plot_confusion,
                                    plot_fold_accuracy, plot_per_class_f1)
from emokit_core.metrics import accuracy_interval
from emokit_core.registry import Registry

from .cli import emokit

CLASSES = ["a", "b", "c"]


def record_run(reg: Registry, folds: list[list[str]], clips: list[tuple[str, str, int, int, int]], *,
               pipeline: str = "speech.x", corpus: str = "demo", classes=CLASSES, params=None,
               config_hash: str | None = None, finish: bool = True) -> int:
    """A run recorded straight into the registry. ``clips``: (clip_id, actor, fold, label, pred)."""
    cid = reg.upsert_corpus(name=corpus, fingerprint=f"fp-{corpus}", classes=classes, n_clips=len(clips), root="/c")
    params = params or {}
    info = reg.start_run(pipeline=pipeline, modality=pipeline.split(".")[0].replace("fuse", "fusion"),
                         params=params, config_hash=config_hash or json.dumps(params, sort_keys=True),
                         profile="quick", seed=0, corpus_id=cid, folds=folds, library_versions={}, resume=False)
    for fold in range(len(folds)):
        held = [c for c in clips if c[2] == fold]
        one_hot = [[1.0 if k == c[4] else 0.0 for k in range(len(classes))] for c in held]
        reg.record_fold(info.run_id, fold, n_train=len(clips) - len(held), n_test=len(held), seconds=0.1,
                        scores={"accuracy": float(np.mean([c[3] == c[4] for c in held]))},
                        predictions=[(c[0], c[1], c[3], c[4], p) for c, p in zip(held, one_hot)])
    if finish:
        reg.finish_run(info.run_id, scores={"accuracy": float(np.mean([c[3] == c[4] for c in clips]))}, seconds=1.0)
    return info.run_id


def hand_example() -> tuple[list[list[str]], list[tuple[str, str, int, int, int]]]:
    """Fold 0: true a a b c / pred a b b c (3 of 4); fold 1: true a b b c c c / pred a b c c c a (4 of 6)."""
    a, b, c = 0, 1, 2
    fold0 = [(a, a), (a, b), (b, b), (c, c)]
    fold1 = [(a, a), (b, b), (b, c), (c, c), (c, c), (c, a)]
    clips = [(f"f0-{i}", "s1", 0, t, p) for i, (t, p) in enumerate(fold0)]
    clips += [(f"f1-{i}", "s2", 1, t, p) for i, (t, p) in enumerate(fold1)]
    return [["s1"], ["s2"]], clips


# ----------------------------------------------------------------------------- the paper's interval


def test_interval_reproduces_the_paper():
    # Table 3, STN + bi-LSTM on flatten-810: 57.08 ± 2.56 over 1440 clips
    assert 100 * accuracy_interval(0.5708, 1440) == pytest.approx(2.5565, abs=1e-4)
    assert round(100 * accuracy_interval(0.5708, 1440), 2) == 2.56
    # Table 1, fine-tuned CNN-14: 76.58 ± 2.18. The formula at p = 0.7658 gives 2.187 (2.18 truncated); the
    # paper's 76.58 is the mean over folds, and its interval that of the pooled proportion 1104/1440 = 76.67 %,
    # whose per-clip standard deviation is the paper's "M = 77, STD = 42.30" for this model.
    assert 100 * accuracy_interval(0.7658, 1440) == pytest.approx(2.1873, abs=1e-4)
    pooled = 1104 / 1440
    assert round(100 * accuracy_interval(pooled, 1440), 2) == 2.18
    assert round(100 * math.sqrt(pooled * (1 - pooled)), 2) == 42.30


def test_paper_folds_give_76_58_plus_minus_2_18(tmp_path):
    """RAVDESS's five folds hold 300, 300, 300, 300 and 240 clips; 1104 right clips with 179 of the 240 in
    the last fold give the paper's figures: fold mean 76.58 %, interval ± 2.18 (pooled 76.67 %)."""
    sizes, right = [300, 300, 300, 300, 240], [231, 231, 231, 232, 179]
    clips = []
    for fold, (n, r) in enumerate(zip(sizes, right)):
        clips += [(f"{fold}-{i:03d}", f"actor{fold}", fold, i % 3, i % 3 if i < r else (i + 1) % 3) for i in range(n)]
    reg = Registry(tmp_path / "r.db")
    ev = evaluate_run(reg, record_run(reg, [[f"actor{f}"] for f in range(5)], clips))
    assert ev.n == 1440 and sum(right) == 1104
    assert round(100 * ev.fold_mean, 2) == 76.58 and round(100 * ev.ci95, 2) == 2.18
    assert ev.accuracy == pytest.approx(1104 / 1440)
    reg.close()


# ----------------------------------------------------------------------------- metrics by hand


def test_metrics_match_a_hand_computed_example(tmp_path):
    reg = Registry(tmp_path / "r.db")
    folds, clips = hand_example()
    ev = evaluate_run(reg, record_run(reg, folds, clips))
    assert ev.classes == CLASSES and ev.n == 10
    assert ev.accuracy == pytest.approx(0.7) and ev.ci95 == pytest.approx(1.959964 * math.sqrt(0.21 / 10))
    assert ev.fold_accuracy == pytest.approx([0.75, 4 / 6]) and ev.fold_ids == [0, 1] and ev.fold_sizes == [4, 6]
    assert ev.fold_mean == pytest.approx((0.75 + 4 / 6) / 2)
    assert ev.fold_std == pytest.approx((0.75 - 4 / 6) / math.sqrt(2))  # sample sd of two folds
    assert [c["class"] for c in ev.per_class] == CLASSES
    assert [c["recall"] for c in ev.per_class] == pytest.approx([2 / 3, 2 / 3, 3 / 4])
    assert [c["precision"] for c in ev.per_class] == pytest.approx([2 / 3, 2 / 3, 3 / 4])
    assert [c["f1"] for c in ev.per_class] == pytest.approx([2 / 3, 2 / 3, 3 / 4])
    assert [c["support"] for c in ev.per_class] == [3, 3, 4]
    assert ev.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3) and ev.uar == pytest.approx(ev.macro_f1)
    # ZeroR: fold 0 trains on fold 1 (majority c, 1 right), fold 1 on fold 0 (majority a, 1 right)
    assert ev.zeror_accuracy == pytest.approx(0.2)
    assert ev.confusion_counts.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    # row percentages per fold, then averaged: a = (50, 50, 0) and (100, 0, 0), ...
    assert ev.confusion == pytest.approx(np.array([[75, 25, 0], [0, 75, 25], [100 / 6, 0, 250 / 3]]))
    assert ev.confusion_mean_counts == pytest.approx(ev.confusion_counts / 2)
    text = confusion_text(ev).splitlines()
    assert "% of the true class" in text[0] and text[1].split() == CLASSES
    assert [line.split() for line in text[2:]] == [["a", "75", "25", "0"], ["b", "0", "75", "25"],
                                                   ["c", "17", "0", "83"]]
    counts = confusion_text(ev, counts=True).splitlines()
    assert "clips per fold" in counts[0] and counts[4].split() == ["c", "0", "0", "2"]  # 0.5, 0, 1.5 rounded to even
    summary = ev.to_dict()
    assert json.loads(json.dumps(summary))["confusion_counts"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    reg.close()


def test_a_class_missing_from_a_fold_does_not_dilute_its_row(tmp_path):
    reg = Registry(tmp_path / "r.db")
    clips = [("x0", "s1", 0, 0, 0), ("x1", "s1", 0, 1, 1), ("y0", "s2", 1, 0, 1), ("y1", "s2", 1, 2, 2)]
    ev = evaluate_run(reg, record_run(reg, [["s1"], ["s2"]], clips))
    # class b occurs only in fold 0 (right): its row is 100 % b, not averaged with an empty fold
    assert ev.confusion[1].tolist() == [0, 100, 0] and ev.confusion[0].tolist() == [50, 50, 0]
    reg.close()


def test_unfinished_and_unknown_runs_are_refused(tmp_path):
    reg = Registry(tmp_path / "r.db")
    folds, clips = hand_example()
    running = record_run(reg, folds, clips, finish=False)
    with pytest.raises(EvaluationError, match=f"run {running} .* is running, not finished") as exc:
        evaluate_run(reg, running)
    assert "resumes" in exc.value.hint
    with pytest.raises(RegistryError, match="no run 42"):
        evaluate_run(reg, 42)
    reg.close()


def test_plots_are_png(tmp_path):
    reg = Registry(tmp_path / "r.db")
    folds, clips = hand_example()
    evs = [evaluate_run(reg, record_run(reg, folds, clips)),
           evaluate_run(reg, record_run(reg, folds, [c[:4] + (c[3],) for c in clips], pipeline="speech.y"))]
    paths = [plot_confusion(evs[0], tmp_path / "png" / "confusion.png"),
             plot_fold_accuracy(evs, tmp_path / "png" / "folds.png"),
             plot_per_class_f1(evs, tmp_path / "png" / "f1.png")]
    import matplotlib.image

    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = matplotlib.image.imread(path).shape[:2]
        assert height > 200 and width > 200
    with pytest.raises(EvaluationError, match="no runs"):
        plot_fold_accuracy([], tmp_path / "x.png")
    reg.close()


# ----------------------------------------------------------------------------- real runs


@pytest.fixture
def real_runs(tone_registry):
    """speech.mfcc_svm, speech.zeror and fuse.logreg cross-validated on the tone manifest (the session's)."""
    return tone_registry


def test_evaluation_agrees_with_what_the_runner_recorded(real_runs):
    db, ids = real_runs
    reg = Registry(db)
    for run_id in ids:
        ev = evaluate_run(reg, run_id)
        pooled = ev.run.scores
        assert ev.n == 54 == int(pooled["n"])
        for key in ("accuracy", "ci95", "macro_f1", "uar", "zeror_accuracy"):
            assert getattr(ev, key) == pytest.approx(pooled[key]), key
        assert ev.fold_accuracy == pytest.approx([f.scores["accuracy"] for f in ev.run.fold_results])
        assert ev.confusion.sum(axis=1) == pytest.approx([100.0] * 3)
        assert ev.confusion_counts.sum() == 54
    reg.close()


def test_evaluate_command(real_runs, tmp_path):
    db, ids = real_runs
    result = emokit("evaluate", str(ids[0]), "speech.zeror@1", "--registry", str(db), "--json",
                    "--png-dir", str(tmp_path / "png"))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["run_id"] for r in rows] == ids[:2]
    assert rows[1]["accuracy"] == pytest.approx(1 / 3) and rows[1]["per_class"][0]["recall"] == 1.0
    assert all(Path(p).is_file() for r in rows for p in r["png"])
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        f"confusion_run{ids[0]}.png", f"confusion_run{ids[1]}.png", f"fold_accuracy_runs{ids[0]}_{ids[1]}.png",
        f"per_class_f1_runs{ids[0]}_{ids[1]}.png"]
    text = emokit("evaluate", str(ids[1]), "--registry", str(db))
    assert text.returncode == 0, text.stderr
    assert "33.33 ± 12.57" in text.stdout and "ZeroR" in text.stdout and "% of the true class" in text.stdout
    missing = emokit("evaluate", "77", "--registry", str(db))
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [f"error: no run 77 in the registry {db}",
                                           "hint: emokit runs lists the recorded runs"]
