"""Progress of long steps, reported from wherever they run.

A caller (the CLI, through the runner) installs a :class:`Reporter` for the duration of a call
with :func:`reporting`; code deep inside it (a training loop, the demo generator, feature
extraction) opens :func:`task` and advances it without knowing who draws it.  With no reporter
installed nothing is drawn, so library use stays silent.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

#: ``advance(n=1, total=None)``: ``n`` more done; ``total`` corrects the expected count.
Advance = Callable[..., None]


class Reporter:
    """Progress and messages; the CLI passes one that draws bars (or timed lines) on stderr."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        yield _ignore

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def info(self, message: str) -> None:
        pass


def _ignore(n: int = 1, total: int | None = None) -> None:
    pass


_current: ContextVar[Reporter | None] = ContextVar("emokit_reporter", default=None)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Make ``reporter`` the one :func:`task` reports to inside the block."""
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def task(description: str, total: int) -> Iterator[Advance]:
    """A step of ``total`` units on the installed reporter (a no-op without one)."""
    reporter = _current.get()
    if reporter is None:
        yield _ignore
        return
    with reporter.task(description, total) as advance:
        yield advance


def current() -> Reporter | None:
    return _current.get()


def format_seconds(seconds: Any) -> str:
    """``75`` -> ``1m15s``, for progress lines."""
    seconds = int(round(float(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
