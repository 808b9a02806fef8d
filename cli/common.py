"""What every command shares: consoles, the registry option, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

# Results go to stdout, progress and warnings to stderr; piped output is not squeezed to 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

RegistryOption = typer.Option(None, "--registry", envvar="EMOKIT_REGISTRY",
                              help="SQLAlchemy URL or path of the registry [default: ./registry.db]")
JsonOption = typer.Option(False, "--json", help="print JSON instead of a table")


def open_registry(url: Optional[str]):
    from emokit_core.registry import Registry

    return Registry(url)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


class RichReporter:
    """Progress bars and messages on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Any]:
        if self.quiet or total == 0:
            yield lambda n=1, total=None: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=False) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1, total=None: progress.update(task, advance=n, total=total)

    def warn(self, message: str) -> None:
        err.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            err.print(message, highlight=False, soft_wrap=True)
