"""``--executor ray`` with a real local Ray (every server on 127.0.0.1): the small protocol of the
``demo_registry`` fixture (speech.mfcc_svm, face.pixels_vote, fuse.svm_linear on the tiny demo)
records exactly what the local executor recorded; a worker killed mid-fold is retried by Ray and
the run ends the same."""

from __future__ import annotations

import os
import signal
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from emokit_core.cache import FeatureCache
from emokit_core.corpora import read_ravdess
from emokit_core.executors import LocalExecutor, RayExecutor, make_executor
from emokit_core.hookspecs import hookimpl
from emokit_core.plugins import PluginHost, entry_point_sources, module_source
from emokit_core.registry import Registry
from emokit_core.runner import Runner
from emokit_core.specs import PipelineSpec, Recipe

PROTOCOL = ["speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear"]  # as demo_registry ran them


def _features(tmp_path_factory) -> FeatureCache:
    """The session's feature cache, which demo_registry filled: every clip is a hit."""
    return FeatureCache(tmp_path_factory.getbasetemp() / "emokit-home" / "features")


def _recorded(db, run_ids) -> dict[str, list[tuple]]:
    """What a run recorded that must not depend on the executor: each fold's scores and each
    held-out clip's prediction and posteriors."""
    out = {}
    with Registry(db) as reg:
        for run_id in run_ids:
            run = reg.get_run(run_id)
            folds = [(f.fold, f.n_train, f.n_test, f.scores) for f in run.fold_results]
            clips = [(p.clip_id, p.fold, p.label, p.pred, tuple(p.probs)) for p in reg.predictions(run_id)]
            out[run.model] = [run.status, run.scores, folds, clips]
    return out


def _listening_outside_loopback() -> list[str]:
    """Sockets this process's descendants (Ray's servers and workers) listen on, other than loopback."""
    import psutil

    family = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    loopback = ("127.", "::1", "::ffff:127.")
    return [f"{c.laddr.ip}:{c.laddr.port} (pid {c.pid})" for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in family and not c.laddr.ip.startswith(loopback)]


def test_a_local_ray_records_what_the_local_executor_recorded(demo_registry, tiny_demo, tmp_path, tmp_path_factory):
    local_db, local_runs = demo_registry
    corpus = read_ravdess(tiny_demo, folds="grouped")
    executor = RayExecutor(num_cpus=2)
    try:
        with Registry(tmp_path / "ray.db") as reg:
            outcome = Runner(PluginHost(), reg, _features(tmp_path_factory), executor=executor).run(PROTOCOL, corpus)
            import ray

            assert ray.is_initialized() and [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
            assert _listening_outside_loopback() == []
    finally:
        executor.close()
    assert not __import__("ray").is_initialized()
    ours = _recorded(tmp_path / "ray.db", [r.run_id for r in outcome.runs])
    assert ours == _recorded(local_db, list(local_runs.values()))
    assert outcome.cache_misses == 0  # features came from the shared cache


class DiesOnce(ClassifierMixin, BaseEstimator):
    """Logistic regression on per-clip vectors whose first fit anywhere kills its own process
    (SIGKILL, as the out-of-memory killer would), leaving ``marker`` behind."""

    def __init__(self, marker: str = ""):
        self.marker = marker

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        if self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        self.inner_ = LogisticRegression(max_iter=500).fit(np.stack([np.ravel(x) for x in X]), y)
        self.classes_ = self.inner_.classes_
        return self

    def predict_proba(self, X):
        return self.inner_.predict_proba(np.stack([np.ravel(x) for x in X]))


def _dies_once_plugin(marker: Path):
    def build() -> Recipe:
        from emokit_plugins.baselines.features import MfccStats

        return Recipe(MfccStats(), DiesOnce(str(marker)))

    module = types.ModuleType("emokit_test_dies_once")
    module.EMOKIT_PLUGIN_API = 1
    module.register_pipelines = hookimpl(lambda register: register(
        PipelineSpec("speech.dies_once", "speech", "MFCC statistics -> logistic regression; its first fit dies",
                     build, profiles={"quick": {}})))
    return PluginHost([*entry_point_sources(), module_source(module)])


def test_a_worker_killed_mid_fold_is_retried_and_the_run_ends_the_same(demo_registry, tiny_demo, tmp_path,
                                                                      tmp_path_factory, monkeypatch):
    # the workers Ray starts import this module (DiesOnce) as this process does
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    corpus = read_ravdess(tiny_demo, folds="grouped")
    marker = tmp_path / "killed-pid"
    executor = RayExecutor(num_cpus=2, max_retries=2)
    try:
        with Registry(tmp_path / "ray.db") as reg:
            outcome = Runner(_dies_once_plugin(marker), reg, _features(tmp_path_factory),
                             executor=executor).run(["speech.dies_once"], corpus)
    finally:
        executor.close()
    killed = int(marker.read_text())
    assert killed != os.getpid()  # a Ray worker died, not this process
    with Registry(tmp_path / "local.db") as reg:  # the marker is there now: nothing dies
        local = Runner(_dies_once_plugin(marker), reg, _features(tmp_path_factory),
                       executor=LocalExecutor(1)).run(["speech.dies_once"], corpus)
    ray_run = _recorded(tmp_path / "ray.db", [outcome.runs[0].run_id])
    assert ray_run["speech.dies_once"][0] == "finished" and len(ray_run["speech.dies_once"][2]) == len(corpus.folds)
    assert ray_run == _recorded(tmp_path / "local.db", [local.runs[0].run_id])


def test_ray_missing_is_one_line_with_the_extra(monkeypatch):
    from emokit_core.errors import EmokitError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(EmokitError) as info:
        RayExecutor().run([object()], lambda task, result: None)
    assert "needs Ray" in info.value.message and "pip install 'emokit[ray]'" in info.value.hint
    with pytest.raises(EmokitError, match="unknown executor 'dask'"):
        make_executor("dask")
