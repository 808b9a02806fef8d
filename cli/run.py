"""``emokit run``: subject-wise cross-validation of pipelines into the registry."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import typer

from .common import (ExecutorOption, JsonOption, QuietOption, RayAddressOption, RegistryOption, RichReporter,
                     corpus_reader, err, open_registry, out, pct, print_json)


def parse_params(items: List[str], pipelines: List[str]) -> dict[str, dict[str, str]]:
    """``PIPELINE.PARAM=VALUE`` (or ``PARAM=VALUE`` for every pipeline that declares it)."""
    from emokit_core.errors import EmokitError

    overrides: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise EmokitError(f"--param {item!r} is not NAME=VALUE", "e.g. -p speech.mfcc_svm.C=10")
        target, dot, name = key.rpartition(".")
        if dot and target in pipelines:
            overrides.setdefault(target, {})[name] = value
        elif not dot:
            from emokit_core.plugins import get_host

            owners = [p for p in pipelines if key in get_host().pipeline(p).params]
            if not owners:
                raise EmokitError(f"no pipeline in this run has a parameter {key!r}",
                                  "qualify it, e.g. -p speech.mfcc_svm.C=10; see `emokit pipelines`")
            for p in owners:
                overrides.setdefault(p, {})[key] = value
        else:
            raise EmokitError(f"--param {item!r} names {target!r}, which is not in this run",
                              f"pipelines in this run: {', '.join(pipelines)}")
    return overrides


def load_corpus(corpus: Optional[str], data: Optional[Path], *, folds: Optional[str], actors: Optional[int],
                workers: int, reporter: RichReporter):
    """Read (or, for a generated corpus such as ``demo``, generate on first use) the corpus."""
    from emokit_core.errors import EmokitError
    from emokit_core.plugins import get_host

    if corpus is None:
        corpus = corpus_reader(data)
    host = get_host()
    spec = host.corpus(corpus)
    if spec.needs_path:
        if data is None:
            raise EmokitError(f"corpus {corpus} needs --data PATH", "e.g. emokit run ... --data ~/RAVDESS")
        if actors is not None:
            raise EmokitError("--actors applies to the generated demo corpus only", "drop --actors")
        return host.read_corpus(corpus, data, **({"folds": folds} if folds else {}))
    if folds:
        raise EmokitError(f"the {corpus} corpus brings its own folds", "drop --folds")
    return host.read_corpus(corpus, data, progress=generation_progress(reporter, f"generating the {corpus} corpus"),
                     workers=workers, **({"actors": actors} if actors else {}))


def generation_progress(reporter: RichReporter, description: str):
    """A ``progress(done, total)`` callback that opens its bar on the first call, so nothing is
    drawn when the corpus already exists."""
    import atexit
    from contextlib import ExitStack

    stack = ExitStack()
    state: dict[str, Any] = {"done": 0, "advance": None}

    def progress(done: int, total: int) -> None:
        if state["advance"] is None:
            state["advance"] = stack.enter_context(reporter.task(description, total))
            atexit.register(stack.close)
        state["advance"](done - state["done"], total=total)
        state["done"] = done
        if done >= total:
            stack.close()

    return progress


def run_command(
    pipelines: List[str] = typer.Argument(..., help="pipelines to run, e.g. speech.mfcc_svm face.pixels_vote fuse.svm_linear"),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="corpus folder (RAVDESS layout) or manifest CSV [default: the demo corpus]"),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="corpus reader: ravdess, manifest, demo, or a plugin's"),
    profile: Optional[str] = typer.Option(None, "--profile", help="parameter profile: quick (CPU, default) or paper"),
    param: List[str] = typer.Option([], "--param", "-p", help="override a parameter: PIPELINE.NAME=VALUE (repeatable)"),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed, same scores)"),
    folds: Optional[str] = typer.Option(None, "--folds", help="paper (RAVDESS default) or grouped"),
    actors: Optional[int] = typer.Option(None, "--actors", help="demo corpus: number of actors [10]"),
    workers: int = typer.Option(min(os.cpu_count() or 1, 8), "--workers", help="processes for decoding and "
                                "features, and for folds that train a network on the CPU"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="EMOKIT_CACHE", help="feature cache folder [default: $EMOKIT_HOME/features]"),
    device: Optional[str] = typer.Option(None, "--device", help="cuda, cuda:1, cpu ... for every pipeline with a "
                                         "device parameter [default: auto, a GPU where there is one]"),
    fresh: bool = typer.Option(False, "--fresh", help="start new versions instead of resuming unfinished runs"),
    executor: str = ExecutorOption,
    ray_address: Optional[str] = RayAddressOption,
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Cross-validate pipelines subject-wise, fuse their out-of-fold posteriors, record everything."""
    from emokit_core.cache import FeatureCache
    from emokit_core.executors import make_executor
    from emokit_core.plugins import get_host
    from emokit_core.runner import Runner

    reporter = RichReporter(quiet=quiet)
    host = get_host()
    for problem in host.problems():
        reporter.warn(problem)
    for name in pipelines:
        host.pipeline(name)  # unknown names fail before any work
    overrides = parse_params(param, pipelines)
    if device:  # an explicit -p PIPELINE.device=... still wins
        for name in pipelines:
            if "device" in host.pipeline(name).params:
                overrides.setdefault(name, {}).setdefault("device", device)
    for name in pipelines:  # bad parameters fail before the corpus is read
        host.pipeline(name).resolve(profile, overrides.get(name, {}))
    corpus_started = time.perf_counter()
    loaded = load_corpus(corpus, data, folds=folds, actors=actors, workers=workers, reporter=reporter)
    corpus_seconds = time.perf_counter() - corpus_started
    for problem in loaded.problems:
        reporter.warn(problem)
    reg = open_registry(registry)
    reporter.info(f"corpus {loaded.name}: {len(loaded.clips)} clips, {len(loaded.folds)} folds, "
                  f"{loaded.root}; registry {reg.url}")
    folds_on = make_executor(executor, workers, ray_address=ray_address)
    runner = Runner(host, reg, FeatureCache(cache_dir), reporter, workers=workers, executor=folds_on)
    try:
        outcome = runner.run(pipelines, loaded, profile=profile, overrides=overrides, seed=seed,
                             resume=not fresh, command=shlex.join(["emokit", *sys.argv[1:]]))
    finally:
        folds_on.close()
    if as_json:
        print_json({"corpus": {"name": loaded.name, "root": str(loaded.root), "clips": len(loaded.clips)},
                    "skipped_clips": outcome.skipped_clips,
                    "cache": {"hits": outcome.cache_hits, "misses": outcome.cache_misses},
                    # where the time went: reading (or generating) the corpus, features, the modality
                    # pipelines' folds (side by side in worker processes); each run's own below
                    "seconds": {"corpus": round(corpus_seconds, 2),
                                "extraction": round(outcome.extraction_seconds, 2),
                                "cross_validation": round(outcome.cv_seconds, 2)},
                    "runs": [vars(r) for r in outcome.runs]})
        return
    show_outcome(outcome)


def show_outcome(outcome: Any) -> None:
    from rich.table import Table

    n_folds = len(outcome.corpus.folds)
    for r in outcome.runs:
        title = (f"{r.pipeline} v{r.version} (run {r.run_id}, profile {r.profile}"
                 f"{', resumed' if r.resumed else ''})")
        table = Table(title=title, title_justify="left")
        table.add_column("fold", justify="right")
        table.add_column("held-out actors")
        table.add_column("clips", justify="right")
        table.add_column("accuracy %", justify="right")
        table.add_column("macro-F1 %", justify="right")
        table.add_column("ZeroR %", justify="right")
        for k in range(n_folds):
            s = r.fold_scores[k] if k < len(r.fold_scores) else {}
            table.add_row(str(k), " ".join(outcome.corpus.folds[k]), str(int(s.get("n", 0))), pct(s.get("accuracy")),
                          pct(s.get("macro_f1")), pct(s.get("zeror_accuracy")))
        p = r.pooled
        table.add_section()
        table.add_row("pooled", "all", str(int(p.get("n", 0))),
                      f"[bold]{pct(p.get('accuracy'))} ± {100 * p.get('ci95', 0):.2f}[/]", pct(p.get("macro_f1")),
                      pct(r.zeror))
        out.print(table)
    skipped = len(outcome.skipped_clips)
    err.print(f"feature cache: {outcome.cache_hits} hits, {outcome.cache_misses} misses"
              + (f"; {skipped} clips skipped (see warnings)" if skipped else ""), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
