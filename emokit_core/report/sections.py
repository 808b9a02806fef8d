"""The report's HTML pieces and its sections, one function per section."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import EmokitError
from .frames import attended_frames, clip_videos, plot_attention, read_frames, sample_clips

Progress = Callable[[str], None]


def escape(value) -> str:
    return html.escape(str(value), quote=True)


def percent(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 1) -> str:
    """An HTML table; cells are already-escaped HTML. Columns from ``numeric_from`` align right."""
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(f'<{tag}{" class=num" if i >= numeric_from else ""}>{v}</{tag}>' for i, v in enumerate(values))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


class Images:
    """Writes each PNG into the files folder and gives back an ``<img>`` with the same bytes inline."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: list[Path] = []

    def path(self, name: str) -> Path:
        return self.folder / name

    def tag(self, path: Path, alt: str) -> str:
        self.paths.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}" title="{escape(path.name)}">'


def when(moment) -> str:
    """A registry timestamp to the second, in UTC."""
    if moment is None:
        return "–"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def run_name(run) -> str:
    return f"run {run.run_id}: {run.ref}"


# --------------------------------------------------------------------------- sections


def results_section(evs) -> str:
    header = ["run", "model", "modality", "corpus", "profile", "inputs", "clips", "folds", "accuracy % (95% CI)",
              "fold mean ± sd %", "macro-F1 %", "UAR %", "ZeroR %"]
    rows = []
    for ev in evs:
        run = ev.run
        inputs = ", ".join(f"{m}: run {i}" for m, i in sorted(run.inputs.items())) or "–"
        rows.append([escape(run.run_id), escape(run.ref), escape(run.modality), escape(run.corpus.name),
                     escape(run.profile), escape(inputs), str(ev.n), str(len(ev.fold_accuracy)),
                     f"<b>{percent(ev.accuracy)}</b> ± {100 * ev.ci95:.2f}",
                     f"{percent(ev.fold_mean)} ± {100 * ev.fold_std:.2f}", percent(ev.macro_f1), percent(ev.uar),
                     percent(ev.zeror_accuracy)])
    text = ("Accuracy is pooled over every held-out clip, with its 95 % normal-approximation interval; "
            "the fold mean and standard deviation are over the subject-wise folds; ZeroR predicts the "
            "majority class of each fold's training clips.")
    return table(header, rows, numeric_from=6) + f"<p>{escape(text)}</p>"


def details_section(evs) -> str:
    import json

    blocks = []
    for ev in evs:
        run = ev.run
        facts = [("command", run.command or "–"), ("seed", run.seed),
                 ("config hash", run.config_hash),
                 ("finished", when(run.finished_at)),
                 ("seconds", f"{run.seconds:.1f}" if run.seconds is not None else "–"),
                 ("corpus root", run.corpus.root or "–"),
                 ("weights", json.dumps(run.weights, sort_keys=True) if run.weights else "–"),
                 ("tags", ", ".join(f"{k}={v}" for k, v in sorted(run.tags.items())) or "–"),
                 ("parameters", json.dumps(run.params or {}, sort_keys=True))]
        items = "".join(f"<dt>{escape(k)}</dt><dd><code>{escape(v)}</code></dd>" for k, v in facts)
        blocks.append(f"<details><summary>{escape(run_name(run))}</summary><dl>{items}</dl></details>")
    return "".join(blocks)


def confusion_section(evs, images: Images) -> str:
    from ..evaluation import plot_confusion

    figures = []
    for ev in evs:
        rid = ev.run.run_id
        path = plot_confusion(ev, images.path(f"confusion_run{rid}.png"))
        figures.append(f"<figure>{images.tag(path, f'confusion matrix of {run_name(ev.run)}')}"
                       f"<figcaption>{escape(run_name(ev.run))}: {ev.n} clips</figcaption></figure>")
    text = ("Rows are the true class, columns the prediction; each cell is the percentage of the true "
            "class, averaged over the folds (as in the paper's confusion figures).")
    return f"<p>{escape(text)}</p><div class=gallery>{''.join(figures)}</div>"


def folds_section(evs, images: Images, ids: str) -> str:
    from ..evaluation import plot_fold_accuracy

    path = plot_fold_accuracy(evs, images.path(f"fold_accuracy_runs{ids}.png"))
    fold_ids = sorted({f for ev in evs for f in ev.fold_ids})
    rows = []
    for fold in fold_ids:
        actors = sorted({a for ev in evs if 0 <= fold < len(ev.run.folds) for a in ev.run.folds[fold]})
        row = [escape(fold), escape(", ".join(actors))]
        for ev in evs:
            by_fold = dict(zip(ev.fold_ids, ev.fold_accuracy))
            row.append(percent(by_fold.get(fold)))
        rows.append(row)
    header = ["fold", "held-out actors"] + [escape(run_name(ev.run)) for ev in evs]
    return (f"<figure>{images.tag(path, 'accuracy per fold')}</figure>"
            + table(header, rows, numeric_from=2))


def classes_section(evs, images: Images, ids: str) -> str:
    from ..evaluation import plot_per_class_f1

    path = plot_per_class_f1(evs, images.path(f"per_class_f1_runs{ids}.png"))
    classes: list[str] = []
    for ev in evs:
        classes += [c for c in ev.classes if c not in classes]
    rows = []
    for name in classes:
        row = [escape(name)]
        for ev in evs:
            c = next((c for c in ev.per_class if c["class"] == name), None)
            row.append("–" if c is None else f"{percent(c['f1'])} <small>(R {percent(c['recall'])}, "
                                             f"P {percent(c['precision'])}, n {c['support']})</small>")
        rows.append(row)
    header = ["class"] + [escape(run_name(ev.run)) for ev in evs]
    return (f"<figure>{images.tag(path, 'F1 per class')}</figure>"
            + "<p>F1 % per class, with recall (R), precision (P) and the number of clips (n).</p>"
            + table(header, rows))


def _comparison_block(registry, runs: list[dict], alpha: float) -> tuple[str, str | None]:
    """The tests between runs of one corpus, or the reason they cannot be run."""
    from ..stats import CompareError, compare_runs

    try:
        result = compare_runs(registry, [r.run_id for r in runs], alpha=alpha)
    except CompareError as exc:
        message = f"No test between runs {', '.join(str(r.run_id) for r in runs)}: {exc.message}."
        return note(message + (f" {exc.hint}." if exc.hint else "")), message
    n = result["n_clips"]
    rows = [[escape(r["run_id"]), escape(r["ref"]), f"{r['n_correct']}/{n}", percent(r["accuracy"]), percent(r["correct_std"])]
            for r in result["runs"]]
    parts = [table(["run", "model", "right", "accuracy %", "sd of correctness %"], rows, numeric_from=2)]
    q = result["cochran"]
    if q is not None:
        verdict = "the runs differ" if q["significant"] else "no evidence that the runs differ"
        parts.append(f"<p>Cochran's Q = {q['q']:.3f}, df = {q['df']}, p = {q['p']:.3g}: "
                     f"<b>{escape(verdict)}</b> at α = {alpha}.</p>")
    refs = {r["run_id"]: r["ref"] for r in result["runs"]}
    pairs = []
    for t in result["mcnemar"]:
        test = "exact binomial" if t["exact"] else ("χ² (continuity corr.)" if t["correction"] else "χ²")
        verdict = (f"{refs[t['better']]} better" if t["significant"] and t["better"] is not None
                   else "not significant")
        pairs.append([escape(t["a"]), escape(t["b"]), str(t["n10"]), str(t["n01"]), escape(test), f"{t['statistic']:.3f}",
                      f"{t['p']:.3g}", f"{t['p_bonferroni']:.3g}", escape(verdict)])
    parts.append(f"<p>McNemar's test for each pair, Bonferroni-corrected over {result['n_pairs']} "
                 f"pair{'s' if result['n_pairs'] != 1 else ''} (exact binomial below {result['exact_below']} "
                 "discordant clips):</p>")
    parts.append(table(["a", "b", "only a right", "only b right", "test", "statistic", "p", "p Bonferroni",
                         "result"], pairs, numeric_from=0))
    return "".join(parts), None


def comparison_section(registry, evs, alpha: float, notes: list[str]) -> str:
    if len(evs) < 2:
        return note("One run: there is nothing to compare it with. Name two or more runs on the same clips.")
    groups: dict[int, list[dict]] = {}
    for ev in evs:
        groups.setdefault(ev.run.corpus.id, []).append(ev.run)
    parts = ["<p>Cochran's Q (three or more runs) and pairwise McNemar tests look at whether each clip "
             "was classified correctly, so they compare only runs that predicted the same clips.</p>"]
    if len(groups) > 1:
        corpora = "; ".join(f"{g[0].corpus.name}: runs {', '.join(str(r.run_id) for r in g)}"
                            for g in groups.values())
        message = f"These runs are on {len(groups)} different corpora ({corpora}); runs are only tested within a corpus."
        parts.append(note(message))
        notes.append(message)
    for runs in groups.values():
        title = f"corpus {runs[0].corpus.name}"
        if len(runs) < 2:
            parts.append(f"<h3>{escape(title)}</h3>" + note(f"Only {run_name(runs[0])} is on this corpus here."))
            continue
        block, problem = _comparison_block(registry, runs, alpha)
        if problem:
            notes.append(problem)
        parts.append(f"<h3>{escape(title)}</h3>{block}")
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


def attention_section(registry, evs, images: Images, samples: int, notes: list[str],
                       progress: Progress | None, host: Any) -> str:
    from ..explain import attention_weights

    parts = []
    videos_of: dict[int, tuple[dict[str, Path], str | None]] = {}  # per corpus id: read it once
    for ev in evs:
        run = ev.run
        attention = attention_weights(registry, run.run_id)
        if not attention:
            continue
        if run.corpus.id not in videos_of:
            videos_of[run.corpus.id] = clip_videos(run.corpus, host)
        videos, unreadable = videos_of[run.corpus.id]
        predictions = registry.predictions(run.run_id)
        by_clip = {p.clip_id: p for p in predictions}
        picked = sample_clips(attention, predictions, ev.classes, samples)
        parts.append(f"<h3>{escape(run_name(run))}</h3><p>{escape(_attention_summary(attention))}</p>")
        if not picked:
            parts.append(note("No sample clips asked for (samples = 0)."))
        for number, clip_id in enumerate(picked, start=1):
            weights = attention[clip_id]
            p = by_clip.get(clip_id)
            truth = ev.classes[p.label] if p else "?"
            guess = ev.classes[p.pred] if p else "?"
            verdict = "right" if p and p.label == p.pred else "wrong"
            fps, thumbnails, problem = 0.0, {}, None
            kinds = attended_frames(weights)
            video = videos.get(clip_id)
            if unreadable is not None:
                problem = f"{run_name(run)}, clip {clip_id}: {unreadable}, so the frames are not shown"
            elif video is None or not video.is_file():
                problem = (f"{run_name(run)}, clip {clip_id}: its video is not under the corpus root "
                           f"{run.corpus.root} any more (moved or deleted), so the frames are not shown")
            else:
                if progress:
                    progress(f"frames of clip {clip_id} ({video.name})")
                try:
                    fps, n_frames, thumbnails = read_frames(video, list(kinds))
                except EmokitError as exc:
                    problem = f"{run_name(run)}, clip {clip_id}: {exc.message}; the frames are not shown"
                else:
                    if n_frames != len(weights):
                        problem = (f"{run_name(run)}, clip {clip_id}: {video} now has {n_frames} frames but the "
                                   f"run attended over {len(weights)}: the video changed since the run, or the "
                                   "pipeline kept only some of its frames (e.g. cut to speech with vad=), so it is "
                                   "not known which frame each weight belongs to; the frames are not shown")
                        fps, thumbnails = 0.0, {}
            title = f"clip {clip_id}: true {truth}, predicted {guess} ({verdict})"
            path = plot_attention(weights, images.path(f"attention_run{run.run_id}_sample{number}.png"),
                                  title=title, fps=fps, thumbnails=thumbnails, kinds=kinds)
            caption = f"{title}; {len(weights)} frames" + (f" at {fps:.3g} fps" if fps > 0 else "")
            parts.append(f"<figure class=wide>{images.tag(path, f'attention over time of clip {clip_id}')}"
                         f"<figcaption>{escape(caption)}</figcaption></figure>")
            if problem:
                parts.append(note(problem + "."))
                notes.append(problem)
    if not parts:
        return note("None of these runs records attention over frames: only attention models "
                     "(such as face.stn_bilstm) do.")
    text = ("Attention weight of every frame of a held-out clip (the weights of a clip sum to 1; dashed: "
            "the uniform weight). Below, the most-attended frames (red) and the least-attended one (green), "
            "with their time in the clip.")
    return f"<p>{escape(text)}</p>" + "".join(parts)
