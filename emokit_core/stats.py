"""Significance of the differences between runs on the same clips, as in the paper (section 4):
Cochran's Q over three or more runs, then McNemar's test for each pair with the Bonferroni
correction. Both tests look only at whether each clip was classified correctly, so the runs
must have predicted the same clips (same corpus, same folds).

McNemar uses the exact binomial test when the pair disagrees on fewer than
:data:`EXACT_BELOW` clips (the chi-square approximation is poor there), otherwise the
chi-square statistic with the continuity correction. The tests are statsmodels'.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Sequence

import numpy as np

from .errors import CompareError, EmokitError

__all__ = ["CompareError", "EXACT_BELOW", "check_same_protocol", "cochran", "mcnemar_pair", "compare_runs"]

EXACT_BELOW = 25  # discordant clips (b + c) under which McNemar is the exact binomial test


def cochran(correct: np.ndarray) -> dict[str, float]:
    """Cochran's Q of a clips x runs 0/1 matrix: ``{"q", "df", "p"}``.

    When no clip is right for some runs and wrong for others, Q's denominator is zero: the runs
    do not differ on any clip, so Q = 0 and p = 1.
    """
    from statsmodels.stats.contingency_tables import cochrans_q

    correct = np.asarray(correct, dtype=np.int64)
    k = correct.shape[1]
    rows = correct.sum(axis=1)
    if not ((rows > 0) & (rows < k)).any():
        return {"q": 0.0, "df": k - 1, "p": 1.0}
    result = cochrans_q(correct)
    return {"q": float(result.statistic), "df": int(result.df), "p": float(result.pvalue)}


def mcnemar_pair(a_correct: Sequence[bool], b_correct: Sequence[bool], *, exact: bool | None = None,
                 correction: bool = True) -> dict[str, Any]:
    """McNemar's test of two runs' per-clip correctness.

    ``n01``: clips run a got wrong and run b right; ``n10``: a right, b wrong. ``exact=None``
    picks the exact binomial test when ``n01 + n10 < EXACT_BELOW``; otherwise chi-square
    (with the continuity correction unless ``correction=False``).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    n11, n10 = int((a & b).sum()), int((a & ~b).sum())
    n01, n00 = int((~a & b).sum()), int((~a & ~b).sum())
    if exact is None:
        exact = n01 + n10 < EXACT_BELOW
    if n01 + n10 == 0:  # no discordant clip: no evidence of a difference (chi-square is 0/0)
        statistic, p = 0.0, 1.0
    else:
        result = mcnemar([[n11, n10], [n01, n00]], exact=exact, correction=correction)
        statistic, p = float(result.statistic), float(result.pvalue)
    return {"n11": n11, "n10": n10, "n01": n01, "n00": n00, "statistic": statistic, "p": min(1.0, p),
            "exact": bool(exact), "correction": bool(correction and not exact)}


def check_same_protocol(first: Any, first_preds: dict, other: Any, other_preds: dict, *,
                        error: type[EmokitError] | None = None,
                        hint: str = "compare runs of the same corpus and folds (emokit runs --corpus NAME lists them)"
                        ) -> None:
    """Two runs (records, with ``{clip id: prediction}``) predicted the same clips, with the same
    classes and labels, each clip held out with the same actors: what paired tests and late
    fusion need. Otherwise ``error`` (CompareError by default) says where they differ."""
    error = error or CompareError
    a, b = first.run_id, other.run_id
    missing, extra = sorted(set(first_preds) - set(other_preds)), sorted(set(other_preds) - set(first_preds))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} clips of run {a} are not in run {b} (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} clips of run {b} are not in run {a} (e.g. {extra[0]})")
        where = (f" (corpus {first.corpus.name} vs {other.corpus.name})"
                 if first.corpus.id != other.corpus.id else "")
        raise error(f"runs {a} and {b} are not on the same clips{where}: " + "; ".join(parts), hint)
    if first.corpus.classes != other.corpus.classes:
        raise error(f"runs {a} and {b} use different class lists", hint)
    for clip, p in first_preds.items():
        q = other_preds[clip]
        if p.label != q.label:
            raise error(f"runs {a} and {b} disagree on the label of clip {clip}", hint)
    def held_out(run, fold: int) -> list[str] | None:
        folds = run.folds
        return sorted(folds[fold]) if 0 <= fold < len(folds) else None

    moved = [c for c, p in first_preds.items()
             if held_out(first, p.fold) != held_out(other, other_preds[c].fold)]
    if moved:
        raise error(
            f"runs {a} and {b} are on different folds: {len(moved)} clips (e.g. {moved[0]}) are held out "
            "with different actors",
            "they need the same folds; rerun one of them with the other's protocol (--folds)",
        )


def compare_runs(registry, run_ids: list[int], *, alpha: float = 0.05) -> dict[str, Any]:
    """Cochran's Q (three or more runs) and pairwise McNemar with Bonferroni on the runs' clips.

    ``run_ids``: run ids (``"model@version"`` references work too, see :meth:`Registry.find_run`).

    Returns ``{"runs": [...], "n_clips", "cochran": {"q", "df", "p", "significant"} or None,
    "mcnemar": [{"a", "b", "n01", "n10", "statistic", "p", "p_bonferroni", "exact", ...}], "alpha"}``.
    Fewer than two distinct runs, an unfinished run, or runs on different clips or folds →
    CompareError; an unknown run → RegistryError.
    """
    if not 0 < alpha < 1:
        raise CompareError(f"alpha must be between 0 and 1, not {alpha}", "the usual level is --alpha 0.05")
    runs = [registry.find_run(ref) for ref in run_ids]
    ids = [r.run_id for r in runs]
    if len(ids) < 2:
        raise CompareError(f"compare needs two or more runs, got {len(ids)}",
                           "name the runs to compare, e.g. emokit compare 3 5 7 (emokit runs lists them)")
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise CompareError(f"run {repeated[0]} is named twice", "name each run once")
    for r in runs:
        if r.status != "finished":
            raise CompareError(f"run {r.run_id} ({r.ref}) is {r.status}, not finished",
                               "finish it first (rerun its command; it resumes) or compare finished runs")
    preds = [{p.clip_id: p for p in registry.predictions(rid)} for rid in ids]
    for r, p in zip(runs, preds):
        if not p:
            raise CompareError(f"run {r.run_id} ({r.ref}) has no stored predictions",
                               "only runs recorded by `emokit run` can be compared")
    for r, p in zip(runs[1:], preds[1:]):
        check_same_protocol(runs[0], preds[0], r, p)

    clips = sorted(preds[0])
    correct = np.array([[p[c].label == p[c].pred for p in preds] for c in clips], dtype=bool)
    n = len(clips)
    summary = [
        {"run_id": r.run_id, "ref": r.ref, "model": r.model, "version": r.version,
         "modality": r.modality, "corpus": r.corpus.name,
         "n_correct": int(correct[:, j].sum()), "accuracy": float(correct[:, j].mean()),
         # the paper reports each model's per-clip success as M and STD (e.g. M = 80, STD = 39.90)
         "correct_std": float(correct[:, j].std(ddof=1)) if n > 1 else 0.0}
        for j, r in enumerate(runs)
    ]
    omnibus = None
    if len(runs) >= 3:
        omnibus = cochran(correct)
        omnibus["significant"] = omnibus["p"] < alpha
    pairs = list(combinations(range(len(runs)), 2))
    tests = []
    for i, j in pairs:
        t = mcnemar_pair(correct[:, i], correct[:, j])
        p_bonferroni = min(1.0, t["p"] * len(pairs))
        tests.append({"a": ids[i], "b": ids[j], "a_ref": runs[i].ref, "b_ref": runs[j].ref, **t,
                      "p_bonferroni": p_bonferroni, "significant": p_bonferroni < alpha,
                      "better": (ids[i] if t["n10"] > t["n01"] else ids[j]) if t["n10"] != t["n01"] else None})
    return {"runs": summary, "n_clips": n, "cochran": omnibus, "mcnemar": tests, "alpha": alpha,
            "n_pairs": len(pairs), "exact_below": EXACT_BELOW}
