"""The kit's pytest fixtures and its command-line option (``pytest_plugins = ["emokit_core.testing"]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..contracts import Corpus
from .data import TINY_CORPUS


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--emokit-corpora", default=None, metavar="DIR",
                     help="where emokit's fixtures keep generated corpora [default: pytest's cache folder]")


@pytest.fixture
def emokit_home(tmp_path: Path, monkeypatch: Any) -> Path:
    """``EMOKIT_HOME`` (feature cache, demo corpora) in a temporary folder; no registry from the environment."""
    home = tmp_path / "emokit-home"
    monkeypatch.setenv("EMOKIT_HOME", str(home))
    for variable in ("EMOKIT_REGISTRY", "EMOKIT_CACHE", "EMOKIT_ARTIFACTS"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def emokit_registry(tmp_path: Path):
    """An empty registry (SQLite and artifact store) in a temporary folder."""
    from ..registry import Registry

    registry = Registry(tmp_path / "registry.db")
    yield registry
    registry.close()


@pytest.fixture(scope="session")
def emokit_tiny_corpus(request: Any, tmp_path_factory: Any) -> Corpus:
    """The tiny demo corpus (``TINY_CORPUS``: 5 actors, one per fold, 3 emotions, 50 audio-visual
    clips at 320x180), generated on first use (seconds) and kept between sessions."""
    from ..plugins import get_host

    chosen = request.config.getoption("--emokit-corpora")
    cache = getattr(request.config, "cache", None)
    folder = (Path(chosen) if chosen else cache.mkdir("emokit-corpora") if cache else tmp_path_factory.mktemp("corpora"))
    # The demo corpus reader regenerates a folder made by another generator version.
    return get_host().read_corpus("demo", folder / "tiny", **TINY_CORPUS, workers=2)
