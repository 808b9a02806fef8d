"""What every command shares: consoles, the registry option, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

from emokit_core.progress import Reporter, format_seconds

# Results go to stdout, progress and warnings to stderr; piped output is not squeezed to 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

RegistryOption = typer.Option(None, "--registry", envvar="EMOKIT_REGISTRY",
                              help="SQLAlchemy URL or path of the registry [default: ./registry.db]")
JsonOption = typer.Option(False, "--json", help="print JSON instead of a table")
QuietOption = typer.Option(False, "--quiet", "-q", help="no progress bars or progress lines (warnings still shown)")
ExecutorOption = typer.Option("local", "--executor", help="where folds run: local (this machine) or ray (Ray tasks: "
                                                          "a local Ray on 127.0.0.1, or --ray-address)")
RayAddressOption = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS",
                                help="a running Ray cluster for --executor ray (e.g. auto, or HEAD:6379)")


def open_registry(url: Optional[str]):
    from emokit_core.registry import Registry

    return Registry(url)


def corpus_reader(data: Optional[Path]) -> str:
    """The corpus reader for a ``--data`` path when none is named: the demo corpus without one, a
    manifest for a CSV, RAVDESS for a folder."""
    if data is None:
        return "demo"
    return "manifest" if data.suffix.lower() == ".csv" else "ravdess"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


class RichReporter(Reporter):
    """Progress and messages on stderr.

    On a terminal: one live display of bars with counts, elapsed time and an ETA; a step opened
    while another is open (a training loop inside a fold, a second pipeline's folds) gets its own
    bar, indented and removed when it ends.  On a non-interactive stderr (a log file, CI): a line
    per step every ``interval`` seconds and one when it ends, never a frozen bar.  ``quiet``: no
    progress and no info messages, warnings only.  Steps may be opened from several threads (fold
    workers' progress is replayed on one), so the shared state is guarded by a lock.
    """

    def __init__(self, quiet: bool = False, interactive: Optional[bool] = None, interval: float = 5.0,
                 console: Optional[Console] = None):
        self.quiet = quiet
        self.console = console or err
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self.interval = interval
        self._live: Any = None  # the shared rich Progress while a bar is open
        self._depth = 0
        self._lock = threading.RLock()

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Any]:
        if self.quiet or total == 0:
            yield lambda n=1, total=None: None
            return
        with self._lock:
            self._depth += 1
            indent = "  " if self._depth > 1 else ""
        try:
            with (self._bar if self.interactive else self._lines)(indent + description, total) as advance:
                yield advance
        finally:
            with self._lock:
                self._depth -= 1

    @contextmanager
    def _bar(self, description: str, total: int) -> Iterator[Any]:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        with self._lock:
            if self._live is None:
                self._live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      console=self.console)
                self._live.start()
                owner = True
            else:
                owner = False
            live = self._live
            task = live.add_task(description, total=total)
        try:
            yield lambda n=1, total=None: live.update(task, advance=n, total=total)
        finally:
            with self._lock:
                if owner:  # the first bar opened holds the display; the others come and go within it
                    live.stop()
                    self._live = None
                else:
                    live.remove_task(task)

    @contextmanager
    def _lines(self, description: str, total: int) -> Iterator[Any]:
        started = last = time.monotonic()
        state = {"done": 0, "total": total}

        def advance(n: int = 1, total: Optional[int] = None) -> None:
            nonlocal last
            state["done"] += n
            if total is not None:
                state["total"] = total
            now = time.monotonic()
            if now - last >= self.interval and state["done"] < state["total"]:
                last = now
                elapsed = now - started
                left = elapsed / state["done"] * (state["total"] - state["done"]) if state["done"] else None
                self.console.print(f"{description}: {state['done']}/{state['total']}, "
                                   f"{format_seconds(elapsed)} elapsed"
                                   + (f", about {format_seconds(left)} left" if left is not None else ""),
                                   highlight=False, soft_wrap=True)

        try:
            yield advance
        finally:
            self.console.print(f"{description}: {state['done']}/{state['total']} in "
                               f"{format_seconds(time.monotonic() - started)}", highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, soft_wrap=True)
