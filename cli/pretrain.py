"""``emokit pretrain``: a network trained on a source corpus of still face images, registered as weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from .common import JsonOption, QuietOption, RegistryOption, RichReporter, open_registry, out, pct, print_json


def pretrain_command(
    name: str = typer.Argument(..., help="what to pretrain: a pretrainer component, e.g. face.stn"),
    data: Path = typer.Option(..., "--data", help="image folder with train/<class>/* and test/<class>/* (e.g. FER-2013)"),
    weights_name: Optional[str] = typer.Option(None, "--name", help="the weights' name [default: NAME-<folder>]"),
    epochs: int = typer.Option(20, "--epochs", min=1, help="passes over the training images"),
    seed: int = typer.Option(0, "--seed", help="seeds the validation split, the batches and the initial weights"),
    device: str = typer.Option("auto", "--device", help="cuda, cpu, or auto (a GPU where there is one)"),
    workers: int = typer.Option(max(1, min(4, os.cpu_count() or 1)), "--workers", min=1,
                                help="processes decoding the images"),
    replace: bool = typer.Option(False, "--replace", help="register over weights of the same name"),
    registry: Optional[str] = RegistryOption,
    quiet: bool = QuietOption,
    as_json: bool = JsonOption,
) -> None:
    """Pretrain NAME on an image folder, report its test accuracy and per-class recall, and register it
    as weights (with its architecture, source corpus and fingerprint, seed, epochs and test accuracy).

    Interrupted, the same command continues from the last finished epoch.
    """
    from emokit_core.plugins import get_host
    from emokit_core.pretraining import pretrain

    outcome = pretrain(get_host(), name, data, open_registry(registry), weights_name=weights_name, epochs=epochs,
                       seed=seed, device=device, workers=workers, reporter=RichReporter(quiet=quiet), replace=replace)
    if as_json:
        print_json(outcome.to_dict())
        return
    from rich.table import Table

    record = outcome.weights
    out.print(f"{record.name}: test accuracy {pct(outcome.test_accuracy)} % on {outcome.n_test} images "
              f"({outcome.n_train} trained on; {outcome.seconds:.0f} s)", highlight=False)
    out.print("validation accuracy per epoch (%): " + " ".join(f"{100 * v:.1f}" for v in outcome.validation)
              + f"; kept epoch {outcome.best_epoch}", highlight=False)
    table = Table(title="test recall per class", title_justify="left")
    table.add_column("class")
    table.add_column("recall %", justify="right")
    for cls, value in outcome.recall.items():
        table.add_row(cls, pct(value))
    out.print(table)
    out.print(f"weights {record.name}: {record.path} (sha256 {record.sha256[:16]}…); use it as "
              f"-p face.stn_vote.weights={record.name}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain_command)
