"""The paper's speech pipelines run end to end on a tiny demo corpus (random weights, CPU)."""

import numpy as np
import pytest
import torch

from emokit_core.corpora import read_ravdess
from emokit_core.errors import EmokitError
from emokit_core.plugins import PluginHost
from emokit_core.registry import Registry
from emokit_core.runner import Runner


@pytest.fixture(scope="module")
def corpus(tiny_demo):
    return read_ravdess(tiny_demo, folds="grouped")


@pytest.mark.parametrize("pipeline", ["speech.panns_svc", "speech.deepspectrum_svc"])
def test_speech_pipeline_runs_on_demo_clips(tmp_path, corpus, feature_cache, pipeline):
    reg = Registry(tmp_path / "r.db")
    runner = Runner(PluginHost(), reg, feature_cache, workers=1)
    outcome = runner.run([pipeline], corpus, seed=0)
    run = reg.get_run(outcome.runs[0].run_id)
    assert run.status == "finished" and len(run.fold_results) == 5
    assert run.weights == {"weights": {"init": "random"}}
    assert len(reg.predictions(run.run_id)) == len(corpus.clips)


def test_panns_svc_from_a_registered_checkpoint(tmp_path, corpus, feature_cache):
    from emokit_plugins.speech.cnn14 import Cnn14, save_panns_checkpoint

    torch.manual_seed(3)
    ckpt = save_panns_checkpoint(Cnn14(), tmp_path / "Cnn14_16k_test.pth")
    reg = Registry(tmp_path / "r.db")
    reg.add_weights("cnn14-test", ckpt, kind="panns-cnn14")
    runner = Runner(PluginHost(), reg, feature_cache, workers=1)
    clips = corpus.clips[:20]
    small = type(corpus)(corpus.name, corpus.root, clips, corpus.classes,
                         [sorted({c.actor for c in clips if c.actor == a}) for a in sorted({c.actor for c in clips})])
    with pytest.raises(EmokitError, match="need width=1.0"):
        runner.run(["speech.panns_svc"], small, overrides={"speech.panns_svc": {"weights": "cnn14-test"}})
    outcome = runner.run(["speech.panns_svc"], small, profile="paper",
                         overrides={"speech.panns_svc": {"weights": "cnn14-test"}})
    recorded = reg.get_run(outcome.runs[0].run_id).weights["weights"]
    assert recorded["name"] == "cnn14-test" and recorded["sha256"] == reg.resolve_weights("cnn14-test").sha256


def test_vad_changes_the_cache_key(tmp_path, corpus):
    from emokit_core.cache import extractor_key
    from emokit_plugins.speech.extractors import PannsEmbedding

    plain, trimmed = PannsEmbedding(vad="none"), PannsEmbedding(vad="silero")
    assert extractor_key("x", plain) != extractor_key("x", trimmed)
    # Where it runs and in what batches does not change the features; bf16 on a GPU does.
    assert extractor_key("x", PannsEmbedding(device="cpu", batch_size=4)) == \
        extractor_key("x", PannsEmbedding(device="cpu", batch_size=64))
    assert extractor_key("x", PannsEmbedding(device="cpu")) != extractor_key("x", PannsEmbedding(device="cuda"))


def test_validation_split_takes_whole_actors():
    from emokit_core.training import validation_split

    groups = np.repeat(["01", "02", "03", "04", "05"], 6)
    train, val = validation_split(groups, len(groups), 0.2, np.random.default_rng(0))
    assert len(val) == 6 and len(set(groups[val])) == 1
    assert not set(groups[train]) & set(groups[val]) and len(train) + len(val) == 30


def test_cnn14_fine_tuner_learns_and_round_trips(tmp_path):
    import pickle

    from emokit_plugins.speech.finetune import Cnn14FineTuner

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    X = [np.sin(2 * np.pi * (150 if k % 2 else 900) * t * (1 + 0.02 * rng.normal())).astype(np.float32) * 0.3
         for k in range(24)]
    y = np.array([k % 2 for k in range(24)])
    groups = np.repeat([f"{a:02d}" for a in range(6)], 4)
    model = Cnn14FineTuner(width=0.125, batch_size=8, max_iterations=30, eval_every=10, patience=5,
                           random_state=0).fit(X, y, groups=groups)
    assert model.n_steps_ == 30 and [it for it, _ in model.history_] == [10, 20, 30]
    proba = model.predict_proba(X)
    assert proba.shape == (24, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (model.predict(X) == y).mean() > 0.8  # two pitches are easy
    again = pickle.loads(pickle.dumps(model))  # the registry's artifact round trip
    np.testing.assert_allclose(again.predict_proba(X), proba, atol=1e-6)


def test_panns_ft_pipeline_runs_on_demo_clips(tmp_path, corpus, feature_cache):
    reg = Registry(tmp_path / "r.db")
    runner = Runner(PluginHost(), reg, feature_cache, workers=1)
    outcome = runner.run(["speech.panns_ft"], corpus, overrides={"speech.panns_ft": {
        "width": "0.125", "max_epochs": "1", "batch_size": "8", "device": "cpu"}})  # cpu: the quick profile
    run = reg.get_run(outcome.runs[0].run_id)
    assert run.status == "finished" and run.profile == "quick" and len(run.fold_results) == 5
    assert run.params["crop_seconds"] == 2.0 and run.weights == {"weights": {"init": "random"}}


def test_alexnet_fine_tuner_on_images(tmp_path):
    import pickle

    from emokit_plugins.speech.deepspectrum import spectrogram_image
    from emokit_plugins.speech.finetune import AlexNetFineTuner

    rng = np.random.default_rng(1)
    t = np.arange(8000) / 16000
    X = [spectrogram_image((np.sin(2 * np.pi * (200 if k % 2 else 3000) * t) * 0.3
                            + rng.normal(0, 0.01, t.size)).astype(np.float32)) for k in range(12)]
    y = np.array([k % 2 for k in range(12)])
    model = AlexNetFineTuner(batch_size=6, max_epochs=2, patience=5).fit(X, y, groups=np.repeat(list("abcdef"), 2))
    assert model.n_steps_ == 2 * 2 and len(model.history_) == 2  # 10 training clips, batch 6: 2 steps an epoch
    proba = model.predict_proba(X)
    assert proba.shape == (12, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(X), proba, atol=1e-5)


def test_alexnet_ft_pipeline_runs_on_demo_clips(tmp_path, corpus, feature_cache):
    # AlexNet is heavy on a CPU: the normal-intensity takes (two per emotion and actor) keep all five folds
    clips = [c for c in corpus.clips if c.id.split("-")[2] == "01"]
    assert len(clips) == 30 and {c.actor for c in clips} == {c.actor for c in corpus.clips}
    small = type(corpus)(corpus.name, corpus.root, clips, corpus.classes, corpus.folds)
    reg = Registry(tmp_path / "r.db")
    runner = Runner(PluginHost(), reg, feature_cache, workers=1)
    outcome = runner.run(["speech.alexnet_ft"], small, overrides={"speech.alexnet_ft": {"max_epochs": "1"}})
    run = reg.get_run(outcome.runs[0].run_id)
    assert run.status == "finished" and len(run.fold_results) == 5


def test_batched_embeddings_do_not_depend_on_the_batch():
    from emokit_core.contracts import Clip
    from emokit_plugins.speech.extractors import PannsEmbedding

    extractor = PannsEmbedding(width=0.125, batch_size=2)
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (12000, 16000, 20000, 15000, 31000)]
    prepared = [extractor.prepare_audio(c, 16000, Clip(str(i), "01", "happy")) for i, c in enumerate(clips)]
    assert [len(p) for p in prepared] == [16000, 16000, 32000, 16000, 32000]
    together = extractor.extract_batch(prepared)
    alone = [extractor.extract_batch([p])[0] for p in prepared]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
