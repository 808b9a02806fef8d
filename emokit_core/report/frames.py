"""The frames of the report's attention section: a clip's video found through the corpus reader
that read it, its frames decoded and thumbnailed, the attention plotted over time beside them,
and the sample clips chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import EmokitError

MOST_ATTENDED = 3  # thumbnails of the highest-weighted frames of a sample clip
LEAST_ATTENDED = 1  # and of the lowest-weighted ones
THUMB_HEIGHT = 150  # pixels of a stored thumbnail (the plot scales it)


def clip_videos(corpus, host: Any = None) -> tuple[dict[str, Path], str | None]:
    """Each clip's video file, as the reader that read the corpus (recorded with it in the
    registry) finds it under its recorded root; or ``({}, why)`` when it cannot be read again."""
    from ..plugins import get_host

    root = Path(corpus.root) if corpus.root else None
    if root is None or not root.exists():
        return {}, None  # every clip's video is missing, and each says so
    if not corpus.reader:
        return {}, (f"the registry does not say which reader read corpus {corpus.name} (it was recorded "
                    "before emokit kept that); rerun the pipeline to record it")
    try:
        again = (host or get_host()).read_corpus(corpus.reader, root, **(corpus.reader_options or {}))
    except EmokitError as exc:
        return {}, f"corpus {corpus.name} cannot be read again from {root} ({exc.message})"
    return {clip.id: clip.video_path for clip in again.clips if clip.video_path is not None}, None


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

    from ..media import decode

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

    from .. import plots

    weights = np.asarray(weights, dtype=float)
    n = len(weights)
    scale = 1.0 / fps if fps > 0 else 1.0
    thumbnails = thumbnails or {}
    shown = sorted(thumbnails)
    fig = plots.figure(9.0, 4.6 if shown else 2.6)
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
    return plots.save(fig, path, hint="choose a writable --out", format="png")


def sample_clips(attention: dict, predictions: Sequence[dict], classes: Sequence[str], count: int) -> list[str]:
    """``count`` clips with attention, spread over the true classes and over right and wrong
    predictions: one clip per class in the corpus's class order, round after round, the 1st,
    3rd, ... pick a correctly classified clip and the 2nd, 4th, ... a misclassified one where
    the class has one left (else the other kind); within a kind, clips go by id."""
    queues: dict[int, tuple[list[str], list[str]]] = {}
    for p in sorted(predictions, key=lambda p: p.clip_id):
        if p.clip_id in attention:
            right, wrong = queues.setdefault(int(p.label), ([], []))
            (right if p.label == p.pred else wrong).append(p.clip_id)
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
