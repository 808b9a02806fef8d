"""Figures for the command line and the report: matplotlib on its Agg canvas (no display, no
global backend change), written with one error for a path that cannot be written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import EmokitError


def figure(width: float, height: float, **options: Any):
    """A ``width`` x ``height`` inch figure at 120 dpi on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, **options)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: str | os.PathLike[str], *, hint: str = "choose a writable folder", **options: Any) -> Path:
    """Write ``fig`` (the format from the suffix; tight bounding box unless told otherwise)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, **{"bbox_inches": "tight", **options})
    except (OSError, ValueError) as exc:  # ValueError: a suffix matplotlib cannot write
        raise EmokitError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}", hint) from exc
    return path
