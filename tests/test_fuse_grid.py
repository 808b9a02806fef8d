"""`emokit fuse-grid`: the paper's fusion grid on recorded out-of-fold posteriors (synthetic runs)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from emokit_core.errors import EmokitError
from emokit_core.fusion_grid import declared_grid, run_grid
from emokit_core.metrics import scores
from emokit_core.plugins import PluginHost
from emokit_core.registry import Registry

from .cli import emokit

CLASSES = ["calm", "angry"]
ACTORS = [f"{a:02d}" for a in range(1, 9)]
FOLDS = [ACTORS[i:i + 2] for i in range(0, 8, 2)]


def xor_clips(seed: int = 0):
    """8 actors x 8 clips.  Each clip has a hidden speech bit and face bit and is 'angry' when
    exactly one is set: each modality alone says nothing about the label (about 50 %), together
    they decide it, but only a non-linear fuser can read an exclusive or."""
    rng = np.random.default_rng(seed)
    clips = []
    for actor in ACTORS:
        for i in range(8):
            s, f = (i >> 1) & 1, i & 1
            clips.append((f"{actor}-{i}", actor, s ^ f, s, f))
    return clips, rng


def record_modality_run(reg, corpus_id, pipeline, clips, bit, rng, folds=FOLDS, finish=True, drop=()):
    info = reg.start_run(pipeline=pipeline, modality=pipeline.split(".")[0], params={}, config_hash=pipeline,
                         profile="quick", seed=0, corpus_id=corpus_id, folds=folds, library_versions={}, resume=False)
    y, pred = [], []
    for k, held_out in enumerate(folds):
        rows = []
        for clip_id, actor, label, s, f in clips:
            if actor not in held_out or clip_id in drop:
                continue
            p = float(np.clip((0.8 if (s, f)[bit] else 0.2) + rng.uniform(-0.05, 0.05), 0, 1))
            guess = int(p > 0.5)
            rows.append((clip_id, actor, label, guess, [1 - p, p]))
            y.append(label)
            pred.append(guess)
        reg.record_fold(info.run_id, k, n_train=48, n_test=len(rows), seconds=0.0, scores={}, predictions=rows)
    if finish:
        reg.finish_run(info.run_id, scores=scores(y, pred, 2), seconds=0.0)
    return info.run_id


@pytest.fixture
def two_runs(tmp_path):
    reg = Registry(tmp_path / "registry.db")
    corpus_id = reg.upsert_corpus(name="synthetic", fingerprint="fp", classes=CLASSES, n_clips=64, root=str(tmp_path))
    clips, rng = xor_clips()
    speech = record_modality_run(reg, corpus_id, "speech.mfcc_svm", clips, 0, rng)
    face = record_modality_run(reg, corpus_id, "face.pixels_vote", clips, 1, rng)
    return reg, corpus_id, clips, rng, speech, face


def test_the_grid_has_the_papers_points():
    grid = [(p.pipeline, dict(p.params)) for p in declared_grid(PluginHost())]
    svm_c = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
    assert grid == ([("fuse.svm_linear", {"C": c}) for c in svm_c] + [("fuse.svm_rbf", {"C": c}) for c in svm_c]
                    + [("fuse.logreg", {"C": c}) for c in [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]]
                    + [("fuse.knn", {"k": k}) for k in (10, 20, 30, 40, 50)])


def test_grid_registers_every_point_and_tags_the_best(two_runs):
    reg, _, clips, _, speech, face = two_runs
    outcome = run_grid(PluginHost(), reg, [str(speech), "face.pixels_vote@1"], command="test")

    skipped = [e for e in outcome.entries if e.skipped]
    # 6 of 8 actors train each fold: 48 clips, too few for 50 neighbours.
    assert [(e.point.pipeline, e.point.params["k"]) for e in skipped] == [("fuse.knn", 50)]
    runs = [reg.get_run(e.run.run_id) for e in outcome.entries if e.run]
    assert len(runs) == 26
    for entry, run in zip([e for e in outcome.entries if e.run], runs):
        assert run.model == entry.point.pipeline and run.modality == "fusion" and run.status == "finished"
        assert {k: run.params[k] for k in entry.point.params} == dict(entry.point.params)
        assert run.inputs == {"speech.mfcc_svm": speech, "face.pixels_vote": face}
        assert run.folds == FOLDS and run.n_predictions == len(clips)
        assert run.tags["fuse_grid"] == outcome.grid_id
    assert {r.run_id for r in reg.list_runs(tag=f"fuse_grid={outcome.grid_id}")} == {r.run_id for r in runs}

    # The best is the highest pooled accuracy (then macro-F1, then grid order), and only it is tagged.
    order = {r.run_id: i for i, r in enumerate(runs)}
    expected = max(runs, key=lambda r: (r.scores["accuracy"], r.scores["macro_f1"], -order[r.run_id]))
    assert [r.run_id for r in runs if r.tags.get("fuse_grid_best") == "true"] == [expected.run_id]
    assert outcome.best.run.run_id == expected.run_id

    # An exclusive or of the modalities: each input is at chance; a linear fuser gets at most three
    # of the four (speech bit, face bit) clusters right; a non-linear one (RBF SVM or k-NN) wins
    # with nearly every clip right.
    inputs = [reg.get_run(r).scores["accuracy"] for r in (speech, face)]
    assert max(inputs) < 0.65
    assert outcome.best.point.pipeline in ("fuse.svm_rbf", "fuse.knn")
    assert outcome.best.run.pooled["accuracy"] > 0.95
    linear = [r.scores["accuracy"] for r in runs if r.model in ("fuse.svm_linear", "fuse.logreg")]
    assert max(linear) <= 0.75


def test_grid_is_the_fuser_code_path_of_emokit_run(two_runs):
    """A grid point scores exactly what the same fuser gives through the runner's fusion."""
    reg, _, _, _, speech, face = two_runs
    point = next(p for p in declared_grid(PluginHost()) if p.pipeline == "fuse.logreg" and p.params["C"] == 1e3)
    first = run_grid(PluginHost(), reg, [speech, face], points=[point]).entries[0].run
    again = run_grid(PluginHost(), reg, [speech, face], points=[point]).entries[0].run
    assert again.version == first.version + 1
    assert reg.predictions(first.run_id) == reg.predictions(again.run_id)


def test_bad_inputs_are_refused(two_runs, tmp_path):
    reg, corpus_id, clips, rng, speech, face = two_runs
    host = PluginHost()

    def refused(refs, *words):
        with pytest.raises(EmokitError) as caught:
            run_grid(host, reg, refs, points=declared_grid(PluginHost())[:1])
        for word in words:
            assert word in caught.value.message, caught.value.message
        return caught.value

    refused([speech], "two or more")
    fused = run_grid(host, reg, [speech, face], points=declared_grid(PluginHost())[:1]).entries[0].run.run_id
    error = refused([speech, fused], f"run {fused}", "fusion run")
    assert str(speech) in error.hint and str(face) in error.hint  # it names the fused run's inputs
    unfinished = record_modality_run(reg, corpus_id, "face.stn_vote", clips, 1, rng, finish=False)
    refused([speech, unfinished], f"run {unfinished}", "not finished")
    refused([speech, "speech.mfcc_svm"], "both speech.mfcc_svm")
    other_folds = [ACTORS[:4], ACTORS[4:]]
    regrouped = record_modality_run(reg, corpus_id, "face.stn_bilstm", clips, 1, rng, folds=other_folds)
    refused([speech, regrouped], "on different folds", "held out with different actors")
    fewer = record_modality_run(reg, corpus_id, "face.zeror", clips, 1, rng, drop={"03-5"})
    refused([speech, fewer], "not on the same clips", "03-5")
    other_corpus = reg.upsert_corpus(name="other", fingerprint="fp2", classes=CLASSES, n_clips=64, root="/x")
    elsewhere = record_modality_run(reg, other_corpus, "speech.zeror", clips, 0, rng)
    refused([elsewhere, face], "different corpora")
    refused([speech, "face.nothing"], "face.nothing")
    refused([speech, 999], "no run 999")


def test_cli_table_json_and_errors(two_runs):
    reg, _, _, _, speech, face = two_runs
    env = {**os.environ, "EMOKIT_REGISTRY": reg.url}
    result = emokit("fuse-grid", speech, face, "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["points"]) == 27 and data["best"]["best"] is True
    assert [p["pipeline"] for p in data["points"] if p["skipped"]] == ["fuse.knn"]
    assert "fusion grid" in result.stderr  # progress on stderr
    table = emokit("fuse-grid", "speech.mfcc_svm", "face.pixels_vote", env=env)
    assert table.returncode == 0, table.stderr
    assert "fuse.svm_rbf" in table.stdout and "best" in table.stdout and "skipped" in table.stdout
    bad = emokit("fuse-grid", speech, data["best"]["run_id"], env=env)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("error: run ") and "hint:" in bad.stderr and "Traceback" not in bad.stderr


def test_a_plugins_fuser_joins_the_grid_by_declaring_one():
    import types

    from emokit_core.hookspecs import hookimpl
    from emokit_core.plugins import entry_point_sources, module_source
    from emokit_core.specs import Param, PipelineSpec

    plugin = types.ModuleType("vote_fuser")
    plugin.register_pipelines = hookimpl(lambda register: register(PipelineSpec(
        "fuse.weighted_vote", "fusion", "weighted vote", lambda weight, temperature: None,
        {"weight": Param(0.5), "temperature": Param(1.0)}, {"quick": {}},
        grid={"weight": (0.25, 0.75), "temperature": (1.0, 2.0)})))
    grid = declared_grid(PluginHost([*entry_point_sources(), module_source(plugin)]))
    assert len(grid) == 27 + 4
    assert [(p.pipeline, dict(p.params)) for p in grid[-4:]] == [
        ("fuse.weighted_vote", {"weight": w, "temperature": t}) for w in (0.25, 0.75) for t in (1.0, 2.0)]
    with pytest.raises(ValueError, match="only fusers declare a fusion grid"):
        PipelineSpec("speech.x", "speech", "x", lambda C: None, {"C": Param(1.0)}, grid={"C": (1.0,)})
