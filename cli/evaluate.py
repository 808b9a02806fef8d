"""``emokit evaluate`` and ``emokit compare``: scores and significance tests on stored
out-of-fold predictions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import JsonOption, RegistryOption, err, open_registry, out, pct, print_json

RunsArgument = typer.Argument(..., help="run ids (see `emokit runs`), or MODEL@VERSION, or a model name (its newest "
                                        "finished version)")


def _metrics_table(ev):
    from rich.table import Table

    run = ev.run
    table = Table(show_header=False, title_justify="left",
                  title=f"run {run.run_id}: {run.ref} on {run.corpus.name} "
                        f"({ev.n} clips, {len(ev.fold_accuracy)} folds)")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("accuracy % (pooled, 95% CI)", f"{pct(ev.accuracy)} ± {100 * ev.ci95:.2f}")
    table.add_row("fold accuracy % (mean ± sd)", f"{pct(ev.fold_mean)} ± {100 * ev.fold_std:.2f}")
    # the paper's tables: mean over folds with the interval of the pooled proportion
    table.add_row("as in the paper (fold mean, 95% CI)", f"{pct(ev.fold_mean)} ± {100 * ev.ci95:.2f}")
    table.add_row("per fold %", "  ".join(f"{f}: {pct(a)}" for f, a in zip(ev.fold_ids, ev.fold_accuracy)))
    table.add_row("macro-F1 %", pct(ev.macro_f1))
    table.add_row("UAR %", pct(ev.uar))
    table.add_row("ZeroR accuracy %", pct(ev.zeror_accuracy))
    return table


def _per_class_table(ev):
    from rich.table import Table

    table = Table(title="per class", title_justify="left")
    for column in ("class", "clips", "recall %", "precision %", "F1 %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for c in ev.per_class:
        table.add_row(c["class"], str(c["support"]), pct(c["recall"]), pct(c["precision"]), pct(c["f1"]))
    return table


def evaluate_command(
    runs: List[str] = RunsArgument,
    png_dir: Optional[Path] = typer.Option(None, "--png-dir", help="also write confusion, per-fold and per-class "
                                                                   "plots (PNG) into this folder"),
    counts: bool = typer.Option(False, "--counts", help="confusion matrix in clips per fold (as the paper's figure 5) "
                                                        "instead of row percentages"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """Metrics of finished runs from their stored out-of-fold predictions.

    Pooled accuracy with its 95% interval, per-fold mean and sd, macro-F1, UAR, ZeroR, per-class
    recall, precision and F1, and the confusion matrix averaged over folds.
    """
    from emokit_core.evaluation import (confusion_text, evaluate_run, plot_confusion, plot_fold_accuracy,
                                        plot_per_class_f1)

    reg = open_registry(registry)
    evs = [evaluate_run(reg, reg.find_run(ref).run_id) for ref in runs]
    pngs: dict[int | str, list[str]] = {}
    if png_dir is not None:
        for ev in evs:
            path = plot_confusion(ev, png_dir / f"confusion_run{ev.run.run_id}.png")
            pngs[ev.run.run_id] = [str(path)]
        ids = "_".join(str(ev.run.run_id) for ev in evs)
        pngs["all"] = [str(plot_fold_accuracy(evs, png_dir / f"fold_accuracy_runs{ids}.png")),
                       str(plot_per_class_f1(evs, png_dir / f"per_class_f1_runs{ids}.png"))]
        for paths in pngs.values():
            for path in paths:
                err.print(f"wrote {path}", highlight=False)
    if as_json:
        print_json([{**ev.to_dict(), "png": pngs.get(ev.run.run_id, []) + pngs.get("all", [])} for ev in evs])
        return
    for ev in evs:
        out.print(_metrics_table(ev))
        out.print(_per_class_table(ev))
        out.print(confusion_text(ev, counts=counts), highlight=False, markup=False)
        out.print()


def compare_command(
    runs: List[str] = RunsArgument,
    alpha: float = typer.Option(0.05, "--alpha", help="significance level (Bonferroni-corrected over the pairs)"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """Significance tests between runs on the same clips (Cochran's Q, pairwise McNemar).

    Cochran's Q over three or more runs, then McNemar's test for each pair (exact binomial when the
    pair disagrees on fewer than 25 clips), Bonferroni-corrected.
    """
    from emokit_core.stats import compare_runs

    result = compare_runs(open_registry(registry), runs, alpha=alpha)
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=f"runs on the same {result['n_clips']} clips", title_justify="left")
    for column in ("run", "model", "right", "accuracy %", "sd of correctness %"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in result["runs"]:
        table.add_row(str(r["run_id"]), r["ref"], f"{r['n_correct']}/{result['n_clips']}", pct(r["accuracy"]),
                      pct(r["correct_std"]))
    out.print(table)
    q = result["cochran"]
    if q is not None:
        verdict = "the runs differ" if q["significant"] else "no evidence that the runs differ"
        out.print(f"Cochran's Q = {q['q']:.3f}, df = {q['df']}, p = {q['p']:.3g}: {verdict} at alpha {alpha}",
                  highlight=False)
    pairs = Table(title=f"McNemar, pairwise (Bonferroni over {result['n_pairs']} pairs, alpha {alpha})",
                  title_justify="left")
    for column in ("a", "b", "only a right", "only b right", "test", "statistic", "p", "p Bonferroni", "result"):
        pairs.add_column(column, justify="right" if column not in ("test", "result") else "left")
    refs = {r["run_id"]: r["ref"] for r in result["runs"]}
    for t in result["mcnemar"]:
        test = "exact binomial" if t["exact"] else ("chi² (continuity c.)" if t["correction"] else "chi²")
        if t["significant"] and t["better"] is not None:
            verdict = f"{refs[t['better']]} better"
        else:
            verdict = "not significant"
        pairs.add_row(str(t["a"]), str(t["b"]), str(t["n10"]), str(t["n01"]), test, f"{t['statistic']:.3f}",
                      f"{t['p']:.3g}", f"{t['p_bonferroni']:.3g}", verdict)
    out.print(pairs)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
    app.command("compare")(compare_command)
