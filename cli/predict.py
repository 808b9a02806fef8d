"""``emokit predict``: a registered model's fold ensemble on new clips."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import JsonOption, QuietOption, RegistryOption, RichReporter, out, print_json


def timeline_paths(target: Path, clips: List[Path]) -> List[Path]:
    """One clip: ``target`` itself; several: ``target``'s stem plus each clip's (out-clip1.png, ...)."""
    if len(clips) == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{clip.stem}{target.suffix}") for clip in clips]


def predict_command(
    paths: List[Path] = typer.Argument(..., help="mp4 clips (wav/flac for speech-only models)"),
    model: str = typer.Option(..., "--model", "-m", help="NAME or NAME@VERSION, e.g. fuse.svm_linear@3"),
    timeline: Optional[Path] = typer.Option(None, "--timeline", help="plot per-frame face posteriors to this "
                                            "png (several clips: one file each, named after the clip)"),
    registry: Optional[str] = RegistryOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Label new clips with a registered model: the mean of its fold models' posteriors, per
    modality and fused."""
    from emokit_core.errors import EmokitError
    from emokit_core.predict import Predictor, save_timeline

    reporter = RichReporter(quiet=quiet)
    predictor = Predictor.load(model, registry)
    if timeline is not None and not predictor.has_face:
        raise EmokitError(f"--timeline plots per-frame face posteriors, and {predictor.name} has no face model",
                          "drop --timeline, or predict with a face or fusion model")
    results = []
    with reporter.task(f"predicting with {predictor.name}", len(paths)) as advance:
        for path in paths:
            results.append(predictor.predict(path))
            advance()
    if timeline is not None:
        for result, target in zip(results, timeline_paths(timeline, paths)):
            reporter.info(f"timeline of {result.path}: {save_timeline(result, target)}")
    if as_json:
        print_json({"model": predictor.name, "run_id": predictor.run.run_id, "classes": list(predictor.classes),
                    "predictions": [r.to_dict() for r in results]})
        return
    show_predictions(predictor, results)


def show_predictions(predictor, results) -> None:
    from rich.table import Table

    table = Table(title=f"{predictor.name} (run {predictor.run.run_id}): mean of each run's fold models",
                  title_justify="left")
    for column in ("clip", "model", "label", *(f"{c} %" for c in predictor.classes)):
        table.add_column(column, justify="right" if column.endswith(" %") else "left")

    def row(clip: str, name: str, label: str, posteriors: dict, bold: bool) -> None:
        cells = [f"{100 * posteriors[c]:.1f}" for c in predictor.classes]
        table.add_row(clip, name, f"[bold]{label}[/]" if bold else label, *cells)

    for i, result in enumerate(results):
        if i:
            table.add_section()
        clip = Path(result.path).name
        if predictor.fuser is not None:
            for m in result.modalities.values():
                row(clip, m.model, m.label, m.posteriors, False)
                clip = ""
        row(clip, result.model, result.label, result.posteriors, True)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
