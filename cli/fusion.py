"""``emokit fuse-grid``: the paper's late-fusion grid (Table A3) on recorded runs."""

from __future__ import annotations

import shlex
import sys
from typing import List, Optional

import typer

from .common import (
    ExecutorOption,
    JsonOption,
    QuietOption,
    RayAddressOption,
    RegistryOption,
    RichReporter,
    open_registry,
    out,
    pct,
    print_json,
)


def fuse_grid_command(
    runs: List[str] = typer.Argument(..., help="finished modality runs to fuse: run ids or NAME[@VERSION], "
                                               "e.g. a speech and a face run"),
    seed: int = typer.Option(0, "--seed", help="random seed of the fusers"),
    executor: str = ExecutorOption,
    ray_address: Optional[str] = RayAddressOption,
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Every fuser of the paper's grid (SVM linear/RBF, logistic regression, k-NN) on the runs'
    stored out-of-fold posteriors: one registered fusion run per point, the best tagged."""
    from emokit_core.executors import make_executor
    from emokit_core.fusion_grid import run_grid
    from emokit_core.plugins import get_host

    reporter = RichReporter(quiet=quiet)
    host = get_host()
    for problem in host.problems():
        reporter.warn(problem)
    folds_on = make_executor(executor, ray_address=ray_address)
    try:
        outcome = run_grid(host, open_registry(registry), runs, seed=seed, reporter=reporter,
                           command=shlex.join(["emokit", *sys.argv[1:]]), executor=folds_on)
    finally:
        folds_on.close()
    if as_json:
        print_json(outcome.to_dict())
        return
    show_grid(outcome)


def show_grid(outcome) -> None:
    from rich.table import Table

    inputs = " + ".join(f"{r['ref']} (run {r['run_id']}, {pct(r['accuracy'])} %)" for r in outcome.inputs)
    table = Table(title=f"fusion grid {outcome.grid_id}: {inputs}; corpus {outcome.corpus}, {outcome.n_clips} clips, "
                        f"{outcome.n_folds} folds", title_justify="left")
    for column in ("fuser", "parameters", "run", "version", "accuracy %", "macro-F1 %", ""):
        table.add_column(column, justify="right" if column in ("run", "version") else "left")
    previous = None
    for entry in outcome.entries:
        if previous is not None and entry.point.pipeline != previous:
            table.add_section()
        previous = entry.point.pipeline
        if entry.run is None:
            table.add_row(entry.point.pipeline, entry.point.label, "-", "-", "-", "-", f"skipped: {entry.skipped}")
            continue
        pooled = entry.run.pooled
        accuracy = f"{pct(pooled.get('accuracy'))} ± {100 * pooled.get('ci95', 0):.2f}"
        table.add_row(entry.point.pipeline, entry.point.label, str(entry.run.run_id), str(entry.run.version),
                      f"[bold]{accuracy}[/]" if entry.best else accuracy, pct(pooled.get("macro_f1")),
                      "[bold green]best[/]" if entry.best else "")
    out.print(table)
    best = outcome.best
    out.print(f"best: {best.point.pipeline}@{best.run.version} ({best.point.label}, run {best.run.run_id}); "
              f"emokit runs --tag fuse_grid={outcome.grid_id} lists the grid's runs", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("fuse-grid")(fuse_grid_command)
