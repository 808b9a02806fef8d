"""Folds in worker processes: the same records as folds run here, progress relayed, a dead worker
reported and resumed from, a failing fold failing its run only."""

import os
import signal
import types
from contextlib import contextmanager
from multiprocessing import parent_process

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from emokit_core import progress
from emokit_core.corpora import read_manifest
from emokit_core.errors import EmokitError
from emokit_core.executors import LocalExecutor
from emokit_core.hookspecs import hookimpl
from emokit_core.plugins import PluginHost, entry_point_sources, module_source
from emokit_core.predict import Predictor
from emokit_core.registry import Registry
from emokit_core.runner import Runner
from emokit_core.specs import PipelineSpec, Recipe

PIPELINE = "speech.torch_softmax"


class TorchSoftmax(ClassifierMixin, BaseEstimator):
    """Full-batch softmax regression in torch: a network that trains on a device, in miniature.

    Test switches come through the environment, which spawned workers inherit: ``FIT_LOG`` gets
    the fitting process's pid, ``KILL_FOLD_WORKER`` makes a worker process kill itself and
    ``FAIL_FIT`` makes every fit raise."""

    def __init__(self, epochs: int = 40, lr: float = 0.5, device: str = "cpu", seed: int = 0):
        self.epochs = epochs
        self.lr = lr
        self.device = device
        self.seed = seed

    def fit(self, X, y):
        import torch

        with open(os.environ["FIT_LOG"], "a") as log:
            log.write(f"{os.getpid()}\n")
        if os.environ.get("KILL_FOLD_WORKER") and parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("FAIL_FIT"):
            raise ValueError("this fit always fails")
        features = np.stack([np.ravel(x) for x in X]).astype(np.float32)
        self.mean_, self.scale_ = features.mean(axis=0), features.std(axis=0) + 1e-6
        self.classes_ = np.unique(y)
        generator = torch.Generator().manual_seed(self.seed)
        inputs = torch.from_numpy((features - self.mean_) / self.scale_)
        targets = torch.from_numpy(np.searchsorted(self.classes_, y))
        layer = torch.nn.Linear(inputs.shape[1], len(self.classes_))
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.01)
            layer.bias.zero_()
        optimiser = torch.optim.SGD(layer.parameters(), lr=self.lr)
        with progress.task("training TorchSoftmax (steps)", self.epochs) as advance:
            for _ in range(self.epochs):
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(layer(inputs), targets).backward()
                optimiser.step()
                advance()
        self.weight_ = layer.weight.detach().numpy().copy()
        self.bias_ = layer.bias.detach().numpy().copy()
        return self

    def predict_proba(self, X):
        features = (np.stack([np.ravel(x) for x in X]) - self.mean_) / self.scale_
        logits = features @ self.weight_.T + self.bias_
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _host() -> PluginHost:
    """The built-in plugins plus one whose pipeline trains TorchSoftmax on MFCC features."""
    builtin = PluginHost()

    def build():
        mfcc = builtin.pipeline("speech.mfcc_svm")
        return Recipe(mfcc.build(**mfcc.resolve(None, {})[1]).extractor, TorchSoftmax())

    plugin = types.ModuleType("torch_softmax_plugin")
    plugin.register_pipelines = hookimpl(lambda register: register(
        PipelineSpec(PIPELINE, "speech", "softmax regression in torch", build, profiles={"quick": {}})))
    return PluginHost([*entry_point_sources(), module_source(plugin)])


class Recorder(progress.Reporter):
    def __init__(self):
        self.opened: list[tuple[str, int]] = []
        self.done: dict[str, int] = {}

    @contextmanager
    def task(self, description, total):
        self.opened.append((description, total))
        self.done.setdefault(description, 0)

        def advance(n=1, total=None):
            self.done[description] += n

        yield advance


def _fits(log) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_folds_in_workers_record_what_folds_here_record(tmp_path, tone_manifest, feature_cache, monkeypatch):
    log = tmp_path / "fits.log"
    monkeypatch.setenv("FIT_LOG", str(log))
    corpus = read_manifest(tone_manifest)
    host = _host()
    here = Runner(host, Registry(tmp_path / "here.db"), feature_cache, executor=LocalExecutor(1))
    run_here = here.run([PIPELINE, "speech.mfcc_svm", "fuse.logreg"], corpus).runs
    assert set(_fits(log)) == {os.getpid()}
    log.unlink()

    reporter = Recorder()
    pooled = Runner(host, Registry(tmp_path / "pool.db"), feature_cache, reporter, workers=2)
    run_pooled = pooled.run([PIPELINE, "speech.mfcc_svm", "fuse.logreg"], corpus).runs
    pids = _fits(log)
    assert len(pids) == 3 and os.getpid() not in pids and len(set(pids)) == 2  # two workers shared the folds
    for a, b in zip(run_here, run_pooled):
        rows_a = Registry(tmp_path / "here.db").predictions(a.run_id)
        rows_b = Registry(tmp_path / "pool.db").predictions(b.run_id)
        assert [(r.clip_id, r.fold, r.pred) for r in rows_a] == [(r.clip_id, r.fold, r.pred)
                                                                           for r in rows_b]
        np.testing.assert_allclose([r.probs for r in rows_a], [r.probs for r in rows_b], atol=1e-6)
        assert a.pooled == b.pooled
    # Each worker's training loop reached this process's reporter, named by pipeline and fold.
    for k in range(3):
        assert (f"{PIPELINE} fold {k}: training TorchSoftmax (steps)", 40) in reporter.opened
        assert reporter.done[f"{PIPELINE} fold {k}: training TorchSoftmax (steps)"] == 40
    assert reporter.done[f"{PIPELINE} (run 1)"] == 3
    # The class lives in this test module, not in an installed plugin: prediction refuses to unpickle it.
    with pytest.raises(EmokitError, match=r"the model of fold 0 refers to tests\.test_executors\.TorchSoftmax"):
        Predictor.load(PIPELINE, Registry(tmp_path / "pool.db"), host=host)


def test_stored_models_load_only_from_known_packages():
    import pickle

    from sklearn.linear_model import LogisticRegression

    from emokit_core.registry.artifacts import dump_model, load_model

    class Shell:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    with pytest.raises(pickle.UnpicklingError, match="posix.system"):
        load_model(pickle.dumps(Shell()))
    fitted = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert load_model(dump_model(fitted)).predict([[0.9]]) == [1]
    with pytest.raises(pickle.UnpicklingError, match="tests.test_executors.TorchSoftmax"):
        load_model(dump_model(TorchSoftmax()))
    assert isinstance(load_model(dump_model(TorchSoftmax()), allowed=["tests"]), TorchSoftmax)


def test_a_dead_worker_is_reported_and_the_run_resumes(tmp_path, tone_manifest, feature_cache, monkeypatch):
    monkeypatch.setenv("FIT_LOG", str(tmp_path / "fits.log"))
    monkeypatch.setenv("KILL_FOLD_WORKER", "1")
    corpus = read_manifest(tone_manifest)
    reg = Registry(tmp_path / "r.db")
    runner = Runner(_host(), reg, feature_cache, workers=2)
    with pytest.raises(EmokitError, match="a fold worker process died") as raised:
        runner.run([PIPELINE], corpus)
    assert "run the same command again" in raised.value.hint
    (run,) = reg.list_runs()
    assert run.status == "failed"

    monkeypatch.delenv("KILL_FOLD_WORKER")
    outcome = runner.run([PIPELINE], corpus)
    assert outcome.runs[0].resumed and outcome.runs[0].run_id == run.run_id
    assert reg.get_run(run.run_id).status == "finished" and len(reg.predictions(run.run_id)) == 54


def test_a_failing_fold_fails_its_run_and_interrupts_the_others(tmp_path, tone_manifest, feature_cache,
                                                                monkeypatch):
    monkeypatch.setenv("FIT_LOG", str(tmp_path / "fits.log"))
    monkeypatch.setenv("FAIL_FIT", "1")
    reg = Registry(tmp_path / "r.db")
    runner = Runner(_host(), reg, feature_cache, workers=2)
    with pytest.raises(ValueError, match="this fit always fails"):
        runner.run(["speech.mfcc_svm", PIPELINE], read_manifest(tone_manifest))
    status = {r.model: r.status for r in reg.list_runs()}
    assert status == {PIPELINE: "failed", "speech.mfcc_svm": "finished"} or status == {
        PIPELINE: "failed", "speech.mfcc_svm": "interrupted"}
    failed = next(r for r in reg.list_runs() if r.model == PIPELINE)
    assert "ValueError: this fit always fails" in reg.get_run(failed.run_id).error


def test_the_papers_networks_train_in_worker_processes_and_svms_here():
    from emokit_core.folds import training_device

    host = PluginHost()
    placed = {}
    for name in ("speech.panns_ft", "face.stn_bilstm", "face.stn_vote", "speech.mfcc_svm", "speech.panns_svc"):
        spec = host.pipeline(name)
        placed[name] = training_device(spec.build(**spec.resolve("quick", {})[1]).model)
    assert placed == {"speech.panns_ft": "cpu", "face.stn_bilstm": "cpu", "face.stn_vote": "cpu",
                      "speech.mfcc_svm": None, "speech.panns_svc": None}
    executor = LocalExecutor(2)
    task = types.SimpleNamespace(device="cpu")
    assert executor.in_worker(task) and not executor.in_worker(types.SimpleNamespace(device="cuda:0"))
    assert not LocalExecutor(1).in_worker(task)
