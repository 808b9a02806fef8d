"""Progress a person can read: bars with an ETA on a terminal, timed lines elsewhere, nothing with
--quiet, and training loops that report their steps inside the fold that runs them."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager

import numpy as np
from rich.console import Console

from emokit_cli.common import RichReporter
from emokit_core import progress

from .cli import emokit


class Recorder(progress.Reporter):
    """Every task opened, with its total and how far it was advanced."""

    def __init__(self):
        self.tasks: list[dict] = []

    @contextmanager
    def task(self, description, total):
        entry = {"description": description, "total": total, "done": 0}
        self.tasks.append(entry)

        def advance(n=1, total=None):
            entry["done"] += n

        yield advance


def test_without_a_reporter_nothing_is_drawn_and_with_one_tasks_reach_it():
    with progress.task("nobody listens", 3) as advance:
        advance()  # a no-op, not an error
    recorder = Recorder()
    with progress.reporting(recorder):
        with progress.task("step", 2) as advance:
            advance()
            advance()
    assert recorder.tasks == [{"description": "step", "total": 2, "done": 2}]
    assert progress.current() is None  # uninstalled after the block


def test_lines_on_a_non_interactive_stream_nested_and_timed():
    stream = io.StringIO()
    reporter = RichReporter(console=Console(file=stream, width=200), interval=0.0)
    assert not reporter.interactive
    with reporter.task("folds", 2) as folds:
        with reporter.task("training (steps)", 3) as steps:
            for _ in range(3):
                steps()
        folds()
        folds()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("  training (steps): 1/3, 0s elapsed, about 0s left")
    assert lines[2].startswith("  training (steps): 3/3 in ")  # the final line of the inner step
    assert lines[3].startswith("folds: 1/2, ") and "left" in lines[3]
    assert lines[-1].startswith("folds: 2/2 in ")


def test_lines_come_every_interval_not_every_step():
    stream = io.StringIO()
    reporter = RichReporter(console=Console(file=stream, width=200), interval=3600.0)
    with reporter.task("training (steps)", 1000) as advance:
        for _ in range(1000):
            advance()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert stream.getvalue().startswith("training (steps): 1000/1000 in ")


def test_bars_on_a_terminal_nest_show_an_eta_and_drop_inner_bars():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    reporter = RichReporter(console=console)
    assert reporter.interactive
    with reporter.task("speech.panns_ft (run 1)", 2) as folds:
        for _ in range(2):
            with reporter.task("training Cnn14FineTuner (steps)", 4) as steps:
                for _ in range(4):
                    steps()
            folds()
    shown = stream.getvalue()
    assert "speech.panns_ft (run 1)" in shown and "2/2" in shown and "eta" in shown
    assert "training Cnn14FineTuner (steps)" in shown  # drawn while it ran
    assert reporter._live is None  # the display is closed with the outer bar


def test_quiet_shows_nothing_but_warnings():
    stream = io.StringIO()
    reporter = RichReporter(quiet=True, console=Console(file=stream, width=200), interval=0.0)
    with reporter.task("folds", 2) as advance:
        advance(2)
    reporter.info("chosen profile quick")
    reporter.warn("no pretrained weights")
    assert stream.getvalue().strip() == "warning: no pretrained weights"


def test_a_training_loop_reports_its_steps():
    from emokit_plugins.face.bilstm import BiLSTMAggregator

    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(6, 4)).astype(np.float32) for _ in range(12)]
    y = np.array([0, 1] * 6)
    recorder = Recorder()
    with progress.reporting(recorder):
        model = BiLSTMAggregator(layers=1, hidden=4, batch_size=4, max_epochs=3, patience=0, val_fraction=0.0,
                                 device="cpu").fit(sequences, y)
    [training] = [t for t in recorder.tasks if t["description"].startswith("training BiLSTMAggregator")]
    assert training["total"] == 3 * 3 and training["done"] == model.n_steps_ == 9


def test_run_prints_progress_lines_on_a_pipe_and_none_with_quiet(tmp_path, tone_manifest):
    args = ["run", "speech.mfcc_svm", "--data", tone_manifest, "--workers", "1", "--json"]
    loud = emokit(*args, "--registry", tmp_path / "a.db").check()
    assert "extracting features:" in loud.stderr or "fingerprinting clips:" in loud.stderr
    assert "speech.mfcc_svm (run 1): 3/3 in " in loud.stderr
    assert "\x1b[" not in loud.stderr  # no terminal escape codes in a log
    quiet = emokit(*args, "--registry", tmp_path / "b.db", "--quiet").check()
    assert quiet.stderr.strip() == ""
    assert json.loads(quiet.stdout)["runs"][0]["pooled"] == json.loads(loud.stdout)["runs"][0]["pooled"]
