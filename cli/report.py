"""``emokit report``: one self-contained HTML file (with its PNGs beside it) about finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import JsonOption, RegistryOption, err, open_registry, out, print_json


def report_command(
    runs: List[str] = typer.Argument(..., help="run ids (see `emokit runs`), or MODEL@VERSION, or a model name (its "
                                               "newest finished version)"),
    out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default "
                                                                      "emokit-report-<ids>.html); its PNGs go to "
                                                                      "<name>_files/ beside it"),
    samples: int = typer.Option(3, "--samples", help="held-out clips whose attention over time is shown, per "
                                                     "attention model"),
    alpha: float = typer.Option(0.05, "--alpha", help="significance level of the comparison tests"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
) -> None:
    """Write an HTML report of finished runs: results, confusion matrices, accuracy per fold,
    F1 per class, significance tests and, for attention models, attention over time next to frames.

    Images are embedded, so the file works alone when moved.
    """
    from emokit_core.report import write_report

    report = write_report(open_registry(registry), runs, out_path, samples=samples, alpha=alpha,
                          progress=lambda message: err.print(message, highlight=False, markup=False))
    if as_json:
        print_json({"html": str(report.html), "files_dir": str(report.files_dir),
                    "images": [str(p) for p in report.images], "notes": report.notes})
        return
    for note in report.notes:
        err.print(f"[yellow]note:[/] {note}", markup=True, highlight=False, soft_wrap=True)
    out.print(f"wrote {report.html} ({len(report.images)} images, also in {report.files_dir}/)", highlight=False,
              markup=False)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
