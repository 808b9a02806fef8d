"""The CV runner: determinism, fusion on out-of-fold posteriors, resume after a kill."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emokit_core.cache import FeatureCache
from emokit_core.corpora import read_manifest
from emokit_core.errors import EmokitError
from emokit_core.plugins import PluginHost
from emokit_core.registry import Registry
from emokit_core.runner import Runner

SLOW_PLUGIN = '''
import os, time
from emokit_core.hookspecs import hookimpl
from emokit_core.specs import Param, PipelineSpec, Recipe
from emokit_core.estimators import ZeroR


class SlowZeroR(ZeroR):
    def fit(self, X, y):
        with open(os.environ["SLOW_LOG"], "a") as fh:
            fh.write("fit\\n")
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        return super().fit(X, y)


@hookimpl
def register_pipelines(register):
    register(PipelineSpec("speech.slow", "speech", "ZeroR that takes its time", lambda: Recipe(None, SlowZeroR()),
                          profiles={"quick": {}}))
'''


def install_fake_dist(site: Path, module: str, code: str, dist="emokit-slow", version="1.0"):
    """An installed distribution as importlib.metadata sees it: a module and a dist-info with an entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[emokit]\n{module} = {module}\n")


def run(tone_manifest, registry, pipelines, seed=0, **kwargs):
    host = PluginHost()
    runner = Runner(host, registry, FeatureCache(Path(os.environ["EMOKIT_HOME"]) / "features"))
    return runner.run(pipelines, read_manifest(tone_manifest), seed=seed, **kwargs)


def test_same_seed_same_scores(tmp_path, tone_manifest):
    outcomes = [run(tone_manifest, Registry(tmp_path / f"r{i}.db"), ["speech.mfcc_svm", "speech.zeror", "fuse.svm_rbf"])
                for i in range(2)]
    a, b = ([Registry(tmp_path / f"r{i}.db").predictions(r.run_id) for r in o.runs] for i, o in enumerate(outcomes))
    assert a == b
    assert [r.pooled for r in outcomes[0].runs] == [r.pooled for r in outcomes[1].runs]


def test_out_of_fold_and_fusion_inputs(tmp_path, tone_manifest):
    reg = Registry(tmp_path / "r.db")
    outcome = run(tone_manifest, reg, ["speech.mfcc_svm", "speech.zeror", "fuse.logreg"])
    corpus = read_manifest(tone_manifest)
    fold_of = corpus.fold_of()
    for r in outcome.runs:
        preds = reg.predictions(r.run_id)
        assert len(preds) == len(corpus.clips)  # every clip predicted once, out of fold
        assert all(p.fold == fold_of[p.actor] for p in preds)
        assert all(abs(sum(p.probs) - 1) < 1e-6 for p in preds)
    fused = reg.get_run(outcome.runs[2].run_id)
    assert fused.inputs == {"speech.mfcc_svm": outcome.runs[0].run_id, "speech.zeror": outcome.runs[1].run_id}
    assert len(fused.fold_results) == 3 and fused.status == "finished"
    # A rerun makes version 2 of every model and reads features from the cache.
    again = run(tone_manifest, reg, ["speech.mfcc_svm", "speech.zeror", "fuse.logreg"])
    assert [r.version for r in again.runs] == [2, 2, 2]
    assert again.cache_misses == 0 and again.cache_hits == len(corpus.clips)


def test_plan_refuses_what_cannot_run(tmp_path, tone_manifest):
    reg = Registry(tmp_path / "r.db")
    with pytest.raises(EmokitError, match="has no face media, so face.pixels_vote cannot run"):
        run(tone_manifest, reg, ["speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear"])
    with pytest.raises(EmokitError, match="fuses two or more"):
        run(tone_manifest, reg, ["speech.mfcc_svm", "fuse.svm_linear"])
    with pytest.raises(EmokitError, match="did you mean 'speech.mfcc_svm'"):
        run(tone_manifest, reg, ["speech.mfcc_svn"])
    assert reg.list_runs() == []  # nothing recorded for a refused run


def test_resume_after_a_killed_run(tmp_path, tone_manifest):
    site = tmp_path / "site"
    install_fake_dist(site, "emokit_slow_plugin", SLOW_PLUGIN)
    log = tmp_path / "fits.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "SLOW_LOG": str(log), "SLOW_SECONDS": "1.5"}
    db = tmp_path / "reg.db"
    cmd = [sys.executable, "-m", "emokit_cli", "run", "speech.slow", "--data", str(tone_manifest),
           "--registry", str(db), "--workers", "1", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline and done < 1:
        time.sleep(0.2)
        if db.exists():
            with sqlite3.connect(db) as con:
                try:
                    done = con.execute("select count(*) from fold_results").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done >= 1
    with sqlite3.connect(db) as con:
        status, = con.execute("select status from runs").fetchone()
        recorded = {f for f, in con.execute("select fold from fold_results")}
    assert status == "running" and 1 <= len(recorded) < 3
    fits_before = len(log.read_text().splitlines())

    env["SLOW_SECONDS"] = "0"
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)["runs"][0]
    assert out["resumed"] and out["version"] == 1 and out["folds_done_before"] == sorted(recorded)
    fits_after = len(log.read_text().splitlines())
    assert fits_after - fits_before == 3 - len(recorded)  # finished folds were not redone
    with sqlite3.connect(db) as con:
        assert con.execute("select status, count(*) from runs").fetchone() == ("finished", 1)
        assert con.execute("select count(*) from predictions").fetchone()[0] == 54


def test_weights_params_are_resolved_checked_and_recorded(tmp_path, tone_manifest):
    import types

    from emokit_core.estimators import ZeroR
    from emokit_core.hookspecs import hookimpl
    from emokit_core.plugins import module_source
    from emokit_core.specs import Param, PipelineSpec, Recipe

    seen = []

    def build(weights):
        seen.append(weights)
        return Recipe(None, ZeroR())

    plugin = types.ModuleType("weights_plugin")
    plugin.register_pipelines = hookimpl(lambda register: register(PipelineSpec(
        "speech.pretrained", "speech", "t", build, {"weights": Param(None, weights=True)}, {"quick": {}})))
    host = PluginHost([module_source(plugin)])
    reg = Registry(tmp_path / "r.db")
    runner = Runner(host, reg, FeatureCache(tmp_path / "cache"))
    corpus = read_manifest(tone_manifest)

    outcome = runner.run(["speech.pretrained"], corpus)
    assert seen[-1] is None
    assert reg.get_run(outcome.runs[0].run_id).weights == {"weights": {"init": "random"}}

    ckpt = tmp_path / "w.pth"
    ckpt.write_bytes(b"pretend checkpoint")
    reg.add_weights("w1", ckpt)
    outcome = runner.run(["speech.pretrained"], corpus, overrides={"speech.pretrained": {"weights": "w1"}})
    assert seen[-1].path == str(ckpt.resolve()) and seen[-1].name == "w1"
    recorded = reg.get_run(outcome.runs[0].run_id).weights["weights"]
    assert recorded["name"] == "w1" and len(recorded["sha256"]) == 64
    with pytest.raises(EmokitError, match="no weights named 'w2'"):
        runner.run(["speech.pretrained"], corpus, overrides={"speech.pretrained": {"weights": "w2"}})
