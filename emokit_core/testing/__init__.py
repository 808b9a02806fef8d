"""Conformance checks and pytest fixtures for emokit plugins.

A plugin's tests check each component in one line, with what emokit's runner relies on::

    # conftest.py (the plugin's top-level one): emokit's fixtures
    pytest_plugins = ["emokit_core.testing"]

    # tests/test_plugin.py
    from emokit_core.testing import check_extractor, check_pipeline, check_plugin, check_recognizer

    def test_plugin():
        check_plugin("emokit_foo")                        # loads beside the built-ins, lazy imports

    def test_extractor():
        check_extractor(FooFeatures())                    # shapes, determinism, picklable, stable cache key

    def test_recognizer(emokit_registry):
        check_recognizer(build_foo(C=1.0).model, registry=emokit_registry)

    def test_pipeline(emokit_tiny_corpus, emokit_registry):
        check_pipeline("speech.foo", emokit_tiny_corpus, emokit_registry)   # the real protocol

A broken rule raises :class:`ContractError` (an ``AssertionError``) naming the component, the
rule and what to change.  Fixtures: ``emokit_registry`` (a registry in a temporary folder),
``emokit_home`` (``EMOKIT_HOME`` in a temporary folder), ``emokit_tiny_corpus`` (5 actors, one
per fold, 3 emotions, 50 audio-visual clips at 320x180 in RAVDESS layout, generated once and kept in
pytest's cache folder, or under ``--emokit-corpora DIR``).  The checks work without pytest; the
fixtures need it.
"""

from __future__ import annotations

from .components import ContractError, check_aggregator, check_extractor, check_fuser, check_recognizer
from .data import TINY_CORPUS, synthetic_audio, synthetic_features, synthetic_frames, synthetic_posteriors
from .pipelines import HEAVY_MODULES, check_corpus, check_pipeline, check_plugin

__all__ = ["ContractError", "HEAVY_MODULES", "TINY_CORPUS", "check_aggregator", "check_corpus", "check_extractor",
           "check_fuser", "check_pipeline", "check_plugin", "check_recognizer", "synthetic_audio", "synthetic_features",
           "synthetic_frames", "synthetic_posteriors"]

try:  # the fixtures, for `pytest_plugins = ["emokit_core.testing"]`
    from .fixtures import emokit_home, emokit_registry, emokit_tiny_corpus, pytest_addoption  # noqa: F401
except ModuleNotFoundError as missing:  # without pytest the checks still work
    if missing.name != "pytest":
        raise

