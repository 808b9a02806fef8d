"""``emokit weights``: local pretrained checkpoints registered by name with their SHA-256."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import JsonOption, RegistryOption, open_registry, out, print_json

weights_app = typer.Typer(no_args_is_help=True,
                  help="Pretrained checkpoints: register a local file by name; pipelines take weights=NAME|PATH.")


@weights_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="name to use in pipelines, e.g. cnn14-16k"),
    path: Path = typer.Argument(..., help="the checkpoint file, e.g. Cnn14_16k_mAP=0.438.pth"),
    kind: Optional[str] = typer.Option(None, "--kind", help="what it is, e.g. panns-cnn14, torchvision-alexnet"),
    replace: bool = typer.Option(False, "--replace", help="re-register a name (e.g. after the file changed)"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """Register a local checkpoint under NAME, recording its SHA-256 (checked at every use)."""
    row = open_registry(registry).add_weights(name, path, kind=kind, replace=replace)
    if as_json:
        print_json(row.as_dict())
    else:
        out.print(f"weights {row.name}: {row.path} ({row.size / 2**20:.1f} MiB, sha256 {row.sha256[:16]}…)",
                  highlight=False)


@weights_app.command("list")
def list_command(registry: Optional[str] = RegistryOption, as_json: bool = JsonOption) -> None:
    """Registered checkpoints."""
    rows = open_registry(registry).list_weights()
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    from rich.table import Table

    table = Table(title="weights", title_justify="left")
    for column in ("name", "kind", "source", "path", "MiB", "sha256"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.name, r.kind or "-", _source(r.provenance), r.path, f"{r.size / 2**20:.1f}", r.sha256[:16] + "…")
    out.print(table)


def _source(provenance: dict | None) -> str:
    """Where weights come from, in a few words: their source corpus, epochs and test accuracy."""
    if not provenance:
        return "-"
    parts = [provenance.get("source_corpus") or "?"]
    if provenance.get("epochs") is not None:
        parts.append(f"{provenance['epochs']} epochs")
    if provenance.get("test_accuracy") is not None:
        parts.append(f"test {100 * provenance['test_accuracy']:.1f} %")
    return ", ".join(parts)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
