"""``emokit report``: one self-contained HTML file about finished runs.

The file holds the result table, the fold-averaged confusion matrix of every run, accuracy per
fold, F1 per class, the significance tests between runs on the same clips, and, for models that
attend over frames (``face.stn_bilstm``), the attention over time of a few held-out clips next
to their most- and least-attended frames. Every image is embedded as a ``data:`` URI, so the
HTML works alone when moved; the same PNGs are also written to ``<name>_files/`` beside it.

Nothing here fails because of one section: runs that cannot be compared, a video no longer on
disk or one that changed since the run are said so in their section.

>>> report = write_report(Registry("registry.db"), [1, 2, 3], Path("report.html"))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from string import Template
from typing import Any, Sequence

from ..errors import EmokitError
from .frames import attended_frames, clip_videos, plot_attention, read_frames, sample_clips
from .sections import (Images, Progress, attention_section, classes_section, comparison_section, confusion_section,
                       details_section, escape, folds_section, results_section)

__all__ = ["Report", "SECTIONS", "attended_frames", "clip_videos", "default_report_name", "plot_attention",
           "read_frames", "sample_clips", "write_report"]


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    files_dir: Path
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sections that could not show everything, and why


def default_report_name(run_ids: Sequence[int]) -> str:
    """``emokit-report-3-5-7.html``."""
    return "emokit-report-" + "-".join(str(i) for i in run_ids) + ".html"


_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2430;
       background: #fff; margin: 0 auto; max-width: 1240px; padding: 24px 32px; line-height: 1.45; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #dfe3ea; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.meta { color: #5a6473; font-size: 0.9em; margin: 0; }
nav { margin: 12px 0 0; font-size: 0.92em; }
nav a { margin-right: 14px; color: #2457a6; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.88em; }
th, td { border: 1px solid #d5dae2; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tbody tr:nth-child(even) { background: #f8f9fb; }
figure { margin: 8px 0 16px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6eb; }
figcaption { font-size: 0.85em; color: #5a6473; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { flex: 0 1 auto; max-width: 600px; }
.note { background: #fff6e0; border-left: 4px solid #e0a100; padding: 6px 10px; font-size: 0.92em; }
details { margin: 4px 0; } summary { cursor: pointer; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 0.85em; margin: 6px 0 10px 16px; }
dt { color: #5a6473; } dd { margin: 0; word-break: break-all; }
footer { margin-top: 36px; color: #7a8391; font-size: 0.8em; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="meta">$meta</p>
<nav>$nav</nav>
$sections
<footer>$footer</footer>
</body>
</html>
""")

SECTIONS = (("results", "Results"), ("confusion", "Confusion matrices"), ("folds", "Accuracy per fold"),
            ("classes", "F1 per class"), ("comparison", "Comparison tests"),
            ("attention", "Attention over time"), ("details", "Run details"))


def write_report(registry, runs: Sequence[int | str], out: str | os.PathLike[str] | None = None, *,
                 samples: int = 3, alpha: float = 0.05, progress: Progress | None = None,
                 host: Any = None) -> Report:
    """Write the HTML report of ``runs`` (ids, ``model@version`` or model names) to ``out``
    (default :func:`default_report_name` in the current folder) and its PNGs to
    ``<out stem>_files/``; ``samples`` clips per attention model, whose frames come from the
    corpus read again by its recorded reader (``host``: the plugin host, by default emokit's).

    An unknown run → RegistryError; an unfinished one → EvaluationError; no runs, a run named
    twice or negative ``samples`` → EmokitError. Everything else is reported inside the page.
    """
    from .. import __version__
    from ..evaluation import evaluate_run

    if not runs:
        raise EmokitError("no runs to report on", "name the runs, e.g. emokit report 3 5 7 (emokit runs lists them)")
    if samples < 0:
        raise EmokitError(f"--samples must be 0 or more, not {samples}", "e.g. --samples 3")
    resolved = [registry.find_run(ref) for ref in runs]
    ids = [r.run_id for r in resolved]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise EmokitError(f"run {repeated[0]} is named twice", "name each run once")
    evs = []
    for rid in ids:
        if progress:
            progress(f"evaluating run {rid}")
        evs.append(evaluate_run(registry, rid))
    html_path = Path(out) if out is not None else Path(default_report_name(ids))
    if html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_name(html_path.name + ".html")
    files_dir = html_path.with_name(html_path.stem + "_files")
    try:
        files_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmokitError(f"cannot create {files_dir}: {exc.strerror or exc}", "choose a writable --out") from exc
    images = Images(files_dir)
    notes: list[str] = []
    joined = "_".join(str(i) for i in ids)
    if progress:
        progress("plotting")
    bodies = {
        "results": results_section(evs),
        "confusion": confusion_section(evs, images),
        "folds": folds_section(evs, images, joined),
        "classes": classes_section(evs, images, joined),
        "comparison": comparison_section(registry, evs, alpha, notes),
        "attention": attention_section(registry, evs, images, samples, notes, progress, host),
        "details": details_section(evs),
    }
    title = "emokit report: " + ", ".join(f"{r.ref} (run {r.run_id})" for r in resolved)
    corpora = sorted({r.corpus.name for r in resolved})
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = (f"{len(ids)} run{'s' if len(ids) != 1 else ''} on {', '.join(corpora)} · registry {registry.label} · "
            f"generated {generated} by emokit {__version__}")
    page = _PAGE.substitute(
        title=escape(title),
        meta=escape(meta),
        nav="".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS),
        sections="\n".join(f'<section id="{key}"><h2>{escape(name)}</h2>{bodies[key]}</section>' for key, name in SECTIONS),
        footer=escape(f"Images are embedded in this file; the same PNGs are in {files_dir.name}/ beside it."),
    )
    partial = html_path.with_name(html_path.name + ".partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(html_path)
    except OSError as exc:
        raise EmokitError(f"cannot write {html_path}: {exc.strerror or exc}", "choose a writable --out") from exc
    return Report(html=html_path, files_dir=files_dir, images=images.paths, notes=notes)
