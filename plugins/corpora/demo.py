"""The ``demo`` corpus: generated once into emokit's home folder, then read as RAVDESS."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from emokit_core.cache import default_home
from emokit_core.contracts import Corpus
from emokit_core.corpora import paper_folds, read_ravdess

from . import demo_synth

N_FOLDS = 5
#: The demo's frame height: 640x360, RAVDESS's 1280x720 halved.  The face models see 48x48 crops
#: either way, and a newcomer's first run generates and decodes a quarter of the pixels (the
#: corpus takes about half the time to make; see bench/bench_run.py); ``height=720`` gives the
#: RAVDESS size, for timing the decoding of real-size video.
DEMO_HEIGHT = 360


def demo_root(actors: int, repetitions: int, seed: int, height: int = DEMO_HEIGHT) -> Path:
    size = "" if height == DEMO_HEIGHT else f"-{height}p"
    return (default_home() / "demo"
            / f"v{demo_synth.GENERATOR_VERSION}-seed{seed}-actors{actors}-reps{repetitions}{size}")


def demo_folds(actors: int) -> list[list[str]]:
    """The paper's folds for a full-size corpus; otherwise actor a in fold (a - 1) % 5, which
    keeps each fold gender-balanced (odd actors are male, even female)."""
    ids = [f"{a:02d}" for a in range(1, actors + 1)]
    if actors == 24:
        return paper_folds(ids)
    return [[a for a in ids if (int(a) - 1) % N_FOLDS == k] for k in range(min(N_FOLDS, actors))]


def load_demo(path: Path | None = None, *, actors: int = 10, repetitions: int | None = None, seed: int = 0,
              progress: Callable[[int, int], None] | None = None, workers: int = 1,
              height: int = DEMO_HEIGHT, emotions: Sequence[str] | None = None) -> Corpus:
    """The demo corpus (generated on first use).  Another ``height`` (720: RAVDESS's size; less:
    quicker) gives the same clips at that size, and ``emotions`` a subset of the eight; each such
    corpus is a separate one on the leaderboard."""
    if actors < 2:
        from emokit_core.errors import CorpusError

        raise CorpusError(f"a demo corpus needs at least 2 actors, not {actors}", "use --actors 10 (default) or more")
    reps = repetitions or demo_synth.default_repetitions(actors)
    root = Path(path) if path else demo_root(actors, reps, seed, height)
    demo_synth.generate(root, actors=actors, repetitions=reps, seed=seed, progress=progress, workers=workers,
                        height=height, emotions=emotions)
    # Corpora of other sizes get their own leaderboard name (the default one is just "demo").
    name = "demo" if (actors, reps) == (10, 1) else f"demo-{actors}x{reps}"
    if height != DEMO_HEIGHT:
        name += f"-{height}p"
    if emotions:
        name += "-" + "-".join(emotions)
    return read_ravdess(root, name=name, folds=demo_folds(actors), strict=True)
