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

import base64
import html
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from string import Template
from typing import Callable, Sequence

from .errors import EmokitError

__all__ = ["Report", "default_report_name", "write_report", "sample_clips", "find_video", "read_frames",
           "plot_attention"]

MOST_ATTENDED = 3  # thumbnails of the highest-weighted frames of a sample clip
LEAST_ATTENDED = 1  # and of the lowest-weighted ones
THUMB_HEIGHT = 150  # pixels of a stored thumbnail (the plot scales it)
_RAVDESS_CLIP = re.compile(r"^(\d\d-){5}(\d\d)$")  # corpora.RavdessName.clip_id: codes without the modality

Progress = Callable[[str], None]


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


# --------------------------------------------------------------------------- frames


def find_video(root: str | os.PathLike[str] | None, clip_id: str) -> Path | None:
    """The video file of a clip under its corpus root, or None when it is not on disk.

    RAVDESS and demo clip ids are the file name's codes without the modality
    (``Actor_AA/01-<id>.mp4``, or ``02-`` for video-only files); a manifest's default clip id is
    the media path relative to the manifest without its suffix.
    """
    if not root:
        return None
    root = Path(root)
    candidates = []
    if _RAVDESS_CLIP.match(clip_id):
        folder = root / f"Actor_{clip_id[-2:]}"
        candidates += [folder / f"{modality}-{clip_id}.mp4" for modality in ("01", "02")]
    candidates.append(root / f"{clip_id}.mp4")
    for path in candidates:
        if path.is_file():
            return path
    if _RAVDESS_CLIP.match(clip_id) and root.is_dir():  # a RAVDESS copy not split into Actor_XX folders
        for path in sorted(root.rglob(f"0[12]-{clip_id}.mp4")):
            return path
    return None


def _trim_white_border(image):
    """Cut near-white bands around the picture (RAVDESS frames a 720-px square between white sides)."""
    import numpy as np

    ink = (image < 240).any(axis=2)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return image
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def read_frames(path: Path, indices: Sequence[int]) -> tuple[float, int, dict]:
    """Decode ``path`` once: ``(fps, frame count, {index: RGB thumbnail})`` for the wanted frame
    indices (white borders trimmed, THUMB_HEIGHT pixels high); only those frames are kept."""
    import cv2

    from .media import decode

    wanted = set(int(i) for i in indices)
    kept: dict[int, object] = {}
    state = {"fps": 0.0, "seen": 0}

    def keep(frame) -> None:
        index = state["seen"]
        state["seen"] += 1
        if index in wanted:
            picture = _trim_white_border(frame)
            height, width = picture.shape[:2]
            size = (max(1, round(width * THUMB_HEIGHT / height)), THUMB_HEIGHT)
            kept[index] = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)

    def on_video(info):
        state["fps"] = info.fps
        return [("rgb24", keep)]

    decode(path, audio=False, on_video=on_video)
    return state["fps"], state["seen"], kept


def attended_frames(weights) -> dict[int, str]:
    """The frames a sample shows, in time order, each ``"most"`` or ``"least"`` attended: the
    MOST_ATTENDED highest weights, at least a tenth of the clip apart (neighbouring frames look
    alike), and the LEAST_ATTENDED lowest (a clip shorter than that shows every frame)."""
    import numpy as np

    weights = np.asarray(weights)
    order = np.argsort(-weights, kind="stable").tolist()
    if len(weights) <= MOST_ATTENDED + LEAST_ATTENDED:
        return {i: "most" if order.index(i) < MOST_ATTENDED else "least" for i in range(len(weights))}
    gap = max(1, len(weights) // 10)
    most: list[int] = []
    for index in order:
        if all(abs(index - other) >= gap for other in most):
            most.append(index)
            if len(most) == MOST_ATTENDED:
                break
    least = [i for i in reversed(order) if i not in most][:LEAST_ATTENDED]
    kinds = {**{i: "most" for i in most}, **{i: "least" for i in least}}
    return {i: kinds[i] for i in sorted(kinds)}


def plot_attention(weights, path: Path, *, title: str, fps: float = 0.0, thumbnails: dict | None = None,
                   kinds: dict | None = None) -> Path:
    """Attention over time (seconds when ``fps`` is known, else frame index) with the uniform
    weight 1/n for reference; below it the thumbnails ``{frame index: RGB image}``, each with its
    time and weight, marked on the curve in red (``kinds[index] == "most"`` attended) or green."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    scale = 1.0 / fps if fps > 0 else 1.0
    thumbnails = thumbnails or {}
    shown = sorted(thumbnails)
    fig = Figure(figsize=(9.0, 4.6 if shown else 2.6), dpi=120)
    FigureCanvasAgg(fig)  # the Agg canvas: no display, no global backend change
    grid = fig.add_gridspec(2 if shown else 1, max(1, len(shown)), height_ratios=[1.0, 1.1] if shown else None,
                            hspace=0.55)
    ax = fig.add_subplot(grid[0, :])
    times = np.arange(n) * scale
    ax.plot(times, weights, color="#1f77b4", linewidth=1.5, label="attention weight")
    ax.axhline(1.0 / n, color="grey", linestyle="--", linewidth=1, label=f"uniform 1/{n}")
    kinds = kinds or {}
    colours = {"most": "#d62728", "least": "#2ca02c"}
    for index in shown:
        ax.plot(times[index], weights[index], "o", color=colours[kinds.get(index, "most")], markersize=6)
    pad = 0.015 * max(times[-1], scale)  # markers at the first and last frame stay whole
    ax.set_xlim(-pad, max(times[-1], scale) + pad)
    ax.set_ylim(0, 1.15 * max(float(weights.max()), 1.0 / n))
    ax.set_xlabel("time (s)" if fps > 0 else "frame")
    ax.set_ylabel("weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the curve, never over it
    ax.set_title(title, fontsize=9)
    for column, index in enumerate(shown):
        thumb = fig.add_subplot(grid[1, column])
        thumb.imshow(thumbnails[index])
        thumb.set_xticks([])
        thumb.set_yticks([])
        kind = kinds.get(index, "most")
        colour = colours[kind]
        for spine in thumb.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2)
        when = f"{times[index]:.2f} s" if fps > 0 else f"frame {index}"
        thumb.set_title(f"{when}, weight {weights[index]:.3f}\n({kind} attended)", fontsize=8, color=colour)
    try:
        fig.savefig(path, format="png", bbox_inches="tight")
    except OSError as exc:
        raise EmokitError(f"cannot write {path}: {exc.strerror or exc}", "choose a writable --out") from exc
    return path


def sample_clips(attention: dict, predictions: Sequence[dict], classes: Sequence[str], count: int) -> list[str]:
    """``count`` clips with attention, spread over the true classes and over right and wrong
    predictions: one clip per class in the corpus's class order, round after round, the 1st,
    3rd, ... pick a correctly classified clip and the 2nd, 4th, ... a misclassified one where
    the class has one left (else the other kind); within a kind, clips go by id."""
    queues: dict[int, tuple[list[str], list[str]]] = {}
    for p in sorted(predictions, key=lambda p: p["clip_id"]):
        if p["clip_id"] in attention:
            right, wrong = queues.setdefault(int(p["label"]), ([], []))
            (right if p["label"] == p["pred"] else wrong).append(p["clip_id"])
    order = [queues[k] for k in range(len(classes)) if k in queues]
    picked: list[str] = []
    while len(picked) < count and any(right or wrong for right, wrong in order):
        for right, wrong in order:
            if len(picked) == count:
                break
            first, second = (right, wrong) if len(picked) % 2 == 0 else (wrong, right)
            if first or second:
                picked.append((first or second).pop(0))
    return picked


# --------------------------------------------------------------------------- HTML pieces


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML. Columns from ``numeric_from`` align right."""
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f'<{tag}{" class=num" if i >= numeric_from else ""}>{v}</{tag}>' for i, v in enumerate(values))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


class _Images:
    """Writes each PNG into the files folder and gives back an ``<img>`` with the same bytes inline."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: list[Path] = []

    def path(self, name: str) -> Path:
        return self.folder / name

    def tag(self, path: Path, alt: str) -> str:
        self.paths.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}" title="{_e(path.name)}">'


def _when(moment) -> str:
    """A registry timestamp to the second, in UTC."""
    if moment is None:
        return "–"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _run_name(run: dict) -> str:
    return f"run {run['run_id']}: {run['ref']}"


# --------------------------------------------------------------------------- sections


def _results_section(evs) -> str:
    header = ["run", "model", "modality", "corpus", "profile", "inputs", "clips", "folds", "accuracy % (95% CI)",
              "fold mean ± sd %", "macro-F1 %", "UAR %", "ZeroR %"]
    rows = []
    for ev in evs:
        run = ev.run
        inputs = ", ".join(f"{m}: run {i}" for m, i in sorted(run.get("inputs", {}).items())) or "–"
        rows.append([_e(run["run_id"]), _e(run["ref"]), _e(run["modality"]), _e(run["corpus"]["name"]),
                     _e(run["profile"]), _e(inputs), str(ev.n), str(len(ev.fold_accuracy)),
                     f"<b>{_pct(ev.accuracy)}</b> ± {100 * ev.ci95:.2f}",
                     f"{_pct(ev.fold_mean)} ± {100 * ev.fold_std:.2f}", _pct(ev.macro_f1), _pct(ev.uar),
                     _pct(ev.zeror_accuracy)])
    text = ("Accuracy is pooled over every held-out clip, with its 95 % normal-approximation interval; "
            "the fold mean and standard deviation are over the subject-wise folds; ZeroR predicts the "
            "majority class of each fold's training clips.")
    return _table(header, rows, numeric_from=6) + f"<p>{_e(text)}</p>"


def _details_section(evs) -> str:
    import json

    blocks = []
    for ev in evs:
        run = ev.run
        facts = [("command", run.get("command") or "–"), ("seed", run.get("seed")),
                 ("config hash", run.get("config_hash")),
                 ("finished", _when(run.get("finished_at"))),
                 ("seconds", f"{run['seconds']:.1f}" if run.get("seconds") is not None else "–"),
                 ("corpus root", run["corpus"].get("root") or "–"),
                 ("weights", json.dumps(run.get("weights"), sort_keys=True) if run.get("weights") else "–"),
                 ("tags", ", ".join(f"{k}={v}" for k, v in sorted(run.get("tags", {}).items())) or "–"),
                 ("parameters", json.dumps(run.get("params") or {}, sort_keys=True))]
        items = "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>" for k, v in facts)
        blocks.append(f"<details><summary>{_e(_run_name(run))}</summary><dl>{items}</dl></details>")
    return "".join(blocks)


def _confusion_section(evs, images: _Images) -> str:
    from .evaluation import plot_confusion

    figures = []
    for ev in evs:
        rid = ev.run["run_id"]
        path = plot_confusion(ev, images.path(f"confusion_run{rid}.png"))
        figures.append(f"<figure>{images.tag(path, f'confusion matrix of {_run_name(ev.run)}')}"
                       f"<figcaption>{_e(_run_name(ev.run))}: {ev.n} clips</figcaption></figure>")
    text = ("Rows are the true class, columns the prediction; each cell is the percentage of the true "
            "class, averaged over the folds (as in the paper's confusion figures).")
    return f"<p>{_e(text)}</p><div class=gallery>{''.join(figures)}</div>"


def _folds_section(evs, images: _Images, ids: str) -> str:
    from .evaluation import plot_fold_accuracy

    path = plot_fold_accuracy(evs, images.path(f"fold_accuracy_runs{ids}.png"))
    fold_ids = sorted({f for ev in evs for f in ev.fold_ids})
    rows = []
    for fold in fold_ids:
        actors = sorted({a for ev in evs if 0 <= fold < len(ev.run["folds"]) for a in ev.run["folds"][fold]})
        row = [_e(fold), _e(", ".join(actors))]
        for ev in evs:
            by_fold = dict(zip(ev.fold_ids, ev.fold_accuracy))
            row.append(_pct(by_fold.get(fold)))
        rows.append(row)
    header = ["fold", "held-out speakers"] + [_e(_run_name(ev.run)) for ev in evs]
    return (f"<figure>{images.tag(path, 'accuracy per fold')}</figure>"
            + _table(header, rows, numeric_from=2))


def _classes_section(evs, images: _Images, ids: str) -> str:
    from .evaluation import plot_per_class_f1

    path = plot_per_class_f1(evs, images.path(f"per_class_f1_runs{ids}.png"))
    classes: list[str] = []
    for ev in evs:
        classes += [c for c in ev.classes if c not in classes]
    rows = []
    for name in classes:
        row = [_e(name)]
        for ev in evs:
            c = next((c for c in ev.per_class if c["class"] == name), None)
            row.append("–" if c is None else f"{_pct(c['f1'])} <small>(R {_pct(c['recall'])}, "
                                             f"P {_pct(c['precision'])}, n {c['support']})</small>")
        rows.append(row)
    header = ["class"] + [_e(_run_name(ev.run)) for ev in evs]
    return (f"<figure>{images.tag(path, 'F1 per class')}</figure>"
            + "<p>F1 % per class, with recall (R), precision (P) and the number of clips (n).</p>"
            + _table(header, rows))


def _comparison_block(registry, runs: list[dict], alpha: float) -> tuple[str, str | None]:
    """The tests between runs of one corpus, or the reason they cannot be run."""
    from .stats import CompareError, compare_runs

    try:
        result = compare_runs(registry, [r["run_id"] for r in runs], alpha=alpha)
    except CompareError as exc:
        message = f"No test between runs {', '.join(str(r['run_id']) for r in runs)}: {exc.message}."
        return _note(message + (f" {exc.hint}." if exc.hint else "")), message
    n = result["n_clips"]
    rows = [[_e(r["run_id"]), _e(r["ref"]), f"{r['n_correct']}/{n}", _pct(r["accuracy"]), _pct(r["correct_std"])]
            for r in result["runs"]]
    parts = [_table(["run", "model", "right", "accuracy %", "sd of correctness %"], rows, numeric_from=2)]
    q = result["cochran"]
    if q is not None:
        verdict = "the runs differ" if q["significant"] else "no evidence that the runs differ"
        parts.append(f"<p>Cochran's Q = {q['q']:.3f}, df = {q['df']}, p = {q['p']:.3g}: "
                     f"<b>{_e(verdict)}</b> at α = {alpha}.</p>")
    refs = {r["run_id"]: r["ref"] for r in result["runs"]}
    pairs = []
    for t in result["mcnemar"]:
        test = "exact binomial" if t["exact"] else ("χ² (continuity corr.)" if t["correction"] else "χ²")
        verdict = (f"{refs[t['better']]} better" if t["significant"] and t["better"] is not None
                   else "not significant")
        pairs.append([_e(t["a"]), _e(t["b"]), str(t["n10"]), str(t["n01"]), _e(test), f"{t['statistic']:.3f}",
                      f"{t['p']:.3g}", f"{t['p_bonferroni']:.3g}", _e(verdict)])
    parts.append(f"<p>McNemar's test for each pair, Bonferroni-corrected over {result['n_pairs']} "
                 f"pair{'s' if result['n_pairs'] != 1 else ''} (exact binomial below {result['exact_below']} "
                 "discordant clips):</p>")
    parts.append(_table(["a", "b", "only a right", "only b right", "test", "statistic", "p", "p Bonferroni",
                         "result"], pairs, numeric_from=0))
    return "".join(parts), None


def _comparison_section(registry, evs, alpha: float, notes: list[str]) -> str:
    if len(evs) < 2:
        return _note("One run: there is nothing to compare it with. Name two or more runs on the same clips.")
    groups: dict[int, list[dict]] = {}
    for ev in evs:
        groups.setdefault(ev.run["corpus"]["id"], []).append(ev.run)
    parts = ["<p>Cochran's Q (three or more runs) and pairwise McNemar tests look at whether each clip "
             "was classified correctly, so they compare only runs that predicted the same clips.</p>"]
    if len(groups) > 1:
        corpora = "; ".join(f"{g[0]['corpus']['name']}: runs {', '.join(str(r['run_id']) for r in g)}"
                            for g in groups.values())
        message = f"These runs are on {len(groups)} different corpora ({corpora}); runs are only tested within a corpus."
        parts.append(_note(message))
        notes.append(message)
    for runs in groups.values():
        title = f"corpus {runs[0]['corpus']['name']}"
        if len(runs) < 2:
            parts.append(f"<h3>{_e(title)}</h3>" + _note(f"Only {_run_name(runs[0])} is on this corpus here."))
            continue
        block, problem = _comparison_block(registry, runs, alpha)
        if problem:
            notes.append(problem)
        parts.append(f"<h3>{_e(title)}</h3>{block}")
    return "".join(parts)


def _attention_summary(attention: dict) -> str:
    import numpy as np

    peaks, thirds = [], [0, 0, 0]
    for weights in attention.values():
        weights = np.asarray(weights, dtype=float)
        peaks.append(float(weights.max()) * len(weights))
        thirds[min(2, int(3 * int(np.argmax(weights)) / len(weights)))] += 1
    share = [100 * t / len(attention) for t in thirds]
    return (f"Over all {len(attention)} held-out clips the most-attended frame holds on average "
            f"{np.mean(peaks):.2f}× the uniform weight 1/n (1× would be no preference); it lies in the first, "
            f"middle and last third of the clip in {share[0]:.0f} %, {share[1]:.0f} % and {share[2]:.0f} % of them.")


def _attention_section(registry, evs, images: _Images, samples: int, notes: list[str],
                       progress: Progress | None) -> str:
    from .explain import attention_weights

    parts = []
    for ev in evs:
        run = ev.run
        attention = attention_weights(registry, run["run_id"])
        if not attention:
            continue
        root = run["corpus"].get("root")
        predictions = registry.predictions(run["run_id"])
        by_clip = {p["clip_id"]: p for p in predictions}
        picked = sample_clips(attention, predictions, ev.classes, samples)
        parts.append(f"<h3>{_e(_run_name(run))}</h3><p>{_e(_attention_summary(attention))}</p>")
        if not picked:
            parts.append(_note("No sample clips asked for (samples = 0)."))
        for number, clip_id in enumerate(picked, start=1):
            weights = attention[clip_id]
            p = by_clip.get(clip_id)
            truth = ev.classes[p["label"]] if p else "?"
            guess = ev.classes[p["pred"]] if p else "?"
            verdict = "right" if p and p["label"] == p["pred"] else "wrong"
            fps, thumbnails, problem = 0.0, {}, None
            kinds = attended_frames(weights)
            video = find_video(root, clip_id)
            if video is None:
                problem = (f"{_run_name(run)}, clip {clip_id}: its video is not under the corpus root {root} "
                           "any more (moved or deleted), so the frames are not shown")
            else:
                if progress:
                    progress(f"frames of clip {clip_id} ({video.name})")
                try:
                    fps, n_frames, thumbnails = read_frames(video, list(kinds))
                except EmokitError as exc:
                    problem = f"{_run_name(run)}, clip {clip_id}: {exc.message}; the frames are not shown"
                else:
                    if n_frames != len(weights):
                        problem = (f"{_run_name(run)}, clip {clip_id}: {video} now has {n_frames} frames but the "
                                   f"run attended over {len(weights)}: the video changed since the run, or the "
                                   "pipeline kept only some of its frames (e.g. cut to speech with vad=), so it is "
                                   "not known which frame each weight belongs to; the frames are not shown")
                        fps, thumbnails = 0.0, {}
            title = f"clip {clip_id}: true {truth}, predicted {guess} ({verdict})"
            path = plot_attention(weights, images.path(f"attention_run{run['run_id']}_sample{number}.png"),
                                  title=title, fps=fps, thumbnails=thumbnails, kinds=kinds)
            caption = f"{title}; {len(weights)} frames" + (f" at {fps:.3g} fps" if fps > 0 else "")
            parts.append(f"<figure class=wide>{images.tag(path, f'attention over time of clip {clip_id}')}"
                         f"<figcaption>{_e(caption)}</figcaption></figure>")
            if problem:
                parts.append(_note(problem + "."))
                notes.append(problem)
    if not parts:
        return _note("None of these runs records attention over frames: only attention models "
                     "(such as face.stn_bilstm) do.")
    text = ("Attention weight of every frame of a held-out clip (the weights of a clip sum to 1; dashed: "
            "the uniform weight). Below, the most-attended frames (red) and the least-attended one (green), "
            "with their time in the clip.")
    return f"<p>{_e(text)}</p>" + "".join(parts)


# --------------------------------------------------------------------------- page


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
                 samples: int = 3, alpha: float = 0.05, progress: Progress | None = None) -> Report:
    """Write the HTML report of ``runs`` (ids, ``model@version`` or model names) to ``out``
    (default :func:`default_report_name` in the current folder) and its PNGs to
    ``<out stem>_files/``; ``samples`` clips per attention model.

    An unknown run → RegistryError; an unfinished one → EvaluationError; no runs, a run named
    twice or negative ``samples`` → EmokitError. Everything else is reported inside the page.
    """
    from . import __version__
    from .evaluation import evaluate_run, resolve_run

    if not runs:
        raise EmokitError("no runs to report on", "name the runs, e.g. emokit report 3 5 7 (emokit runs lists them)")
    if samples < 0:
        raise EmokitError(f"--samples must be 0 or more, not {samples}", "e.g. --samples 3")
    resolved = [resolve_run(registry, ref) for ref in runs]
    ids = [r["run_id"] for r in resolved]
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
    images = _Images(files_dir)
    notes: list[str] = []
    joined = "_".join(str(i) for i in ids)
    if progress:
        progress("plotting")
    bodies = {
        "results": _results_section(evs),
        "confusion": _confusion_section(evs, images),
        "folds": _folds_section(evs, images, joined),
        "classes": _classes_section(evs, images, joined),
        "comparison": _comparison_section(registry, evs, alpha, notes),
        "attention": _attention_section(registry, evs, images, samples, notes, progress),
        "details": _details_section(evs),
    }
    title = "emokit report: " + ", ".join(f"{r['ref']} (run {r['run_id']})" for r in resolved)
    corpora = sorted({r["corpus"]["name"] for r in resolved})
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = (f"{len(ids)} run{'s' if len(ids) != 1 else ''} on {', '.join(corpora)} · registry {registry.label} · "
            f"generated {generated} by emokit {__version__}")
    page = _PAGE.substitute(
        title=_e(title),
        meta=_e(meta),
        nav="".join(f'<a href="#{key}">{_e(name)}</a>' for key, name in SECTIONS),
        sections="\n".join(f'<section id="{key}"><h2>{_e(name)}</h2>{bodies[key]}</section>' for key, name in SECTIONS),
        footer=_e(f"Images are embedded in this file; the same PNGs are in {files_dir.name}/ beside it."),
    )
    partial = html_path.with_name(html_path.name + ".partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(html_path)
    except OSError as exc:
        raise EmokitError(f"cannot write {html_path}: {exc.strerror or exc}", "choose a writable --out") from exc
    return Report(html=html_path, files_dir=files_dir, images=images.paths, notes=notes)
