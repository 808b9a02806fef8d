"""``emokit data``: the demo generator and a look at any corpus."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from .common import JsonOption, QuietOption, RichReporter, corpus_reader, err, out, print_json
from .run import generation_progress

data_app = typer.Typer(no_args_is_help=True, help="Corpora: generate the demo corpus, inspect a corpus.")


@data_app.command("demo")
def demo_command(
    actors: int = typer.Option(10, "--actors", help="actors (odd male, even female); 24 = full RAVDESS size, 1440 clips"),
    repetitions: Optional[int] = typer.Option(None, "--repetitions",
                                              help="repetitions per take [1; 2 for 24 or more actors, as RAVDESS]"),
    seed: int = typer.Option(0, "--seed", help="generator seed"),
    height: Optional[int] = typer.Option(None, "--height", help="frame height, a multiple of 36 (16:9) [360; 720 = "
                                                                "RAVDESS's 1280x720, less for quick tests]"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="folder to write [default: $EMOKIT_HOME/demo/...]"),
    workers: int = typer.Option(min(os.cpu_count() or 1, 8), "--workers", help="processes"),
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Generate (once; deterministic from the seed) the synthetic demo corpus in RAVDESS layout."""
    from emokit_core.plugins import get_host

    started = time.perf_counter()
    progress = generation_progress(RichReporter(quiet=quiet), "generating the demo corpus")
    options = {"repetitions": repetitions, "height": height}
    corpus = get_host().read_corpus("demo", out_dir, actors=actors, seed=seed, progress=progress, workers=workers,
                                    **{k: v for k, v in options.items() if v is not None})
    seconds = time.perf_counter() - started
    summary = {"root": str(corpus.root), "clips": len(corpus.clips), "actors": len({c.actor for c in corpus.clips}),
               "folds": corpus.folds, "seconds": round(seconds, 2)}
    if as_json:
        print_json(summary)
    else:
        out.print(f"{summary['clips']} clips of {summary['actors']} actors in {corpus.root} ({seconds:.1f} s)",
                  highlight=False)


@data_app.command("info")
def info_command(
    data: Path = typer.Argument(..., help="corpus folder (RAVDESS layout) or manifest CSV"),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="reader [ravdess for a folder, manifest for a CSV]"),
    as_json: bool = JsonOption,
) -> None:
    """Summarise a corpus: clips per class and actor, folds, files that were not used."""
    from emokit_core.plugins import get_host

    name = corpus or corpus_reader(data)
    loaded = get_host().read_corpus(name, data)
    summary = {"name": loaded.name, "root": str(loaded.root), "clips": len(loaded.clips),
               "modalities": sorted(loaded.modalities), "classes": dict(Counter(c.label for c in loaded.clips)),
               "actors": len({c.actor for c in loaded.clips}), "folds": loaded.folds, "problems": loaded.problems}
    if as_json:
        print_json(summary)
        return
    out.print(f"{name}: {summary['clips']} clips, {summary['actors']} actors, modalities "
              f"{', '.join(summary['modalities'])}", highlight=False)
    out.print("classes: " + ", ".join(f"{k} {v}" for k, v in summary["classes"].items()), highlight=False)
    for k, fold in enumerate(loaded.folds):
        out.print(f"fold {k}: actors {' '.join(fold)}", highlight=False)
    for problem in loaded.problems:
        err.print(f"[yellow]warning:[/] {problem}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
