"""``emokit runs`` and ``emokit leaderboard``: reading the registry."""

from __future__ import annotations

from typing import Optional

import typer

from .common import JsonOption, RegistryOption, err, open_registry, out, pct, print_json

runs_app = typer.Typer(help="Runs in the registry: list them, or show one.", invoke_without_command=True)


@runs_app.callback()
def runs_command(
    ctx: typer.Context,
    corpus: Optional[str] = typer.Option(None, "--corpus", help="only runs on this corpus"),
    model: Optional[str] = typer.Option(None, "--model", help="only runs of this pipeline"),
    limit: int = typer.Option(50, "--limit", help="newest N runs"),
    tag: Optional[str] = typer.Option(None, "--tag", help="only runs tagged KEY or KEY=VALUE"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """List runs, newest first."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = registry
        return
    runs = open_registry(registry).list_runs(corpus=corpus, model=model, limit=limit, tag=tag)
    if as_json:
        print_json([r.as_dict() for r in runs])
        return
    from rich.table import Table

    table = Table(title="runs", title_justify="left")
    for column in ("run", "model", "version", "corpus", "profile", "seed", "status", "folds", "accuracy %", "macro-F1 %",
                   "started"):
        table.add_column(column, justify="right" if column in ("run", "version", "seed", "folds") else "left")
    for r in runs:
        s = r.scores
        acc = f"{pct(s.get('accuracy'))} ± {100 * s['ci95']:.2f}" if "ci95" in s else pct(s.get("accuracy"))
        table.add_row(str(r.run_id), r.model, str(r.version), r.corpus.name, r.profile or "-", str(r.seed),
                      r.status, str(r.n_folds), acc, pct(s.get("macro_f1")), str(r.started_at or "")[:19])
    out.print(table)


@runs_app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="run id (see `emokit runs`)"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """Everything recorded about one run: parameters, folds, scores, artifacts, libraries."""
    run = open_registry(registry or ctx.obj).get_run(run_id)
    if as_json:
        print_json(run.as_dict())
        return
    from rich.table import Table

    head = Table(show_header=False, title=f"run {run_id}: {run.model} v{run.version}", title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    facts = {"status": run.status, "corpus": run.corpus.name, "profile": run.profile, "seed": run.seed,
             "config_hash": run.config_hash, "started_at": run.started_at, "finished_at": run.finished_at,
             "seconds": run.seconds, "weights": run.weights, "inputs": run.inputs, "command": run.command,
             "error": run.error}
    for key, value in facts.items():
        if value not in (None, "", {}):
            head.add_row(key, str(value))
    head.add_row("params", ", ".join(f"{k}={v!r}" for k, v in run.params.items()) or "-")
    head.add_row("libraries", ", ".join(f"{k} {v}" for k, v in run.library_versions.items()))
    head.add_row("tags", ", ".join(f"{k}={v}" for k, v in run.tags.items()) or "-")
    out.print(head)
    folds = Table(title="folds", title_justify="left")
    for column in ("fold", "held-out actors", "train", "test", "accuracy %", "macro-F1 %", "seconds", "artifacts"):
        folds.add_column(column)
    artifacts: dict = {}
    for a in run.artifacts:
        artifacts.setdefault(a.fold, []).append(a)
    for f in run.fold_results:
        folds.add_row(str(f.fold), " ".join(f.held_out) if f.held_out is not None else "-", str(f.n_train),
                      str(f.n_test), pct(f.scores.get("accuracy")), pct(f.scores.get("macro_f1")), f"{f.seconds:.1f}",
                      ", ".join(f"{a.name} {a.sha256[:12]}" for a in artifacts.get(f.fold, [])))
    pooled = run.scores
    if pooled:
        folds.add_section()
        folds.add_row("pooled", "", "", str(int(pooled.get("n", 0))),
                      f"{pct(pooled.get('accuracy'))} ± {100 * pooled.get('ci95', 0):.2f}", pct(pooled.get("macro_f1")),
                      "", "")
    out.print(folds)


def leaderboard_command(
    corpus: Optional[str] = typer.Option(None, "--corpus", help="only this corpus (demo, ravdess, ...)"),
    modality: Optional[str] = typer.Option(None, "--modality", help="speech, face or fusion"),
    metric: str = typer.Option("accuracy", "--metric", help="pooled metric to rank by: accuracy, macro_f1, uar, ..."),
    all_versions: bool = typer.Option(False, "--all-versions",
                                      help="every finished version, with its config hash and the parameters "
                                           "in which versions of the same model differ"),
    tag: Optional[str] = typer.Option(None, "--tag", help="only runs tagged KEY or KEY=VALUE"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """Best version of each model, ranked, with its 95% interval, per-fold mean ± sd and number of folds."""
    rows = open_registry(registry).leaderboard(corpus=corpus, modality=modality, metric=metric,
                                               all_versions=all_versions, tag=tag)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        err.print(f"no finished run with a pooled {metric!r} score matches", highlight=False)
        err.print("hint: emokit runs lists the runs; --metric takes accuracy, macro_f1, uar or zeror_accuracy",
                  highlight=False)
        return
    from rich.table import Table

    title = f"leaderboard by {metric}" + (", every version" if all_versions else ", best version per model")
    table = Table(title=title, title_justify="left")
    columns = ["#", "corpus", "model@version", "run", "profile", "accuracy %", "fold mean ± sd %", "macro-F1 %",
               "UAR %", "folds", "clips"]
    if metric not in ("accuracy", "macro_f1", "uar"):
        columns.insert(5, metric)
    if all_versions:
        columns.append("config (differing parameters)")
    for column in columns:
        table.add_column(column)
    for rank, r in enumerate(rows, 1):
        cells = [str(rank), r.corpus, f"{r.model}@{r.version}", str(r.run_id), r.profile or "-",
                 f"{pct(r.accuracy)} ± {100 * (r.ci95 or 0):.2f}",
                 "-" if r.fold_mean is None else f"{pct(r.fold_mean)} ± {100 * r.fold_std:.2f}",
                 pct(r.macro_f1), pct(r.uar), str(r.n_folds), str(r.n_clips)]
        if metric not in ("accuracy", "macro_f1", "uar"):
            cells.insert(5, f"{r.value:.4g}")
        if all_versions:
            differs = ", ".join(f"{k}={v!r}" for k, v in r.differs.items())
            cells.append(r.config_hash[:10] + (f" ({differs})" if differs else ""))
        table.add_row(*cells)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("leaderboard")(leaderboard_command)
