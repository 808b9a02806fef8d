"""`emokit pretrain face.stn` on real faces (a FER-2013 subset): the image-folder reader, the
registered weights and their provenance, loading them into the face pipelines' network, and a
training that continues after an interruption as if it never stopped."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from emokit_core.errors import CorpusError
from emokit_core.plugins import get_host
from emokit_core.registry import Registry

from .cli import emokit

FER_CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def test_image_folder_reader(fer_subset, tmp_path):
    corpus = get_host().read_corpus("imagefolder", fer_subset)
    assert list(corpus.classes) == FER_CLASSES  # alphabetical: the posterior columns' order
    assert len(corpus.clips) == 280 and corpus.modalities == {"face"}
    clip = next(c for c in corpus.clips if c.meta["split"] == "test")
    assert clip.id == clip.video_path.relative_to(fer_subset).with_suffix("").as_posix() and clip.audio_path is None
    assert sorted(a for fold in corpus.folds for a in fold) == sorted(c.actor for c in corpus.clips)
    only_test = get_host().read_corpus("imagefolder", fer_subset, split="test")
    assert {c.meta["split"] for c in only_test.clips} == {"test"} and len(only_test.clips) == 70
    with pytest.raises(CorpusError, match="no split 'val'"):
        get_host().read_corpus("imagefolder", fer_subset, split="val")
    flat = tmp_path / "flat" / "happy"
    flat.mkdir(parents=True)
    for image in sorted((fer_subset / "train" / "happy").iterdir())[:5]:
        (flat / image.name).write_bytes(image.read_bytes())
    (flat / "notes.txt").write_text("not a face")
    corpus = get_host().read_corpus("imagefolder", flat.parent, n_folds=2)
    assert [c.meta["split"] for c in corpus.clips] == [""] * 5 and "notes.txt: not an image" in corpus.problems[0]


def test_pretrain_registers_weights_that_the_face_pipelines_load(fer_subset, tmp_path):
    from emokit_plugins.face.stn import SaliencyGuidedSTN, load_stn_checkpoint

    db = tmp_path / "registry.db"
    shown = emokit("pretrain", "face.stn", "--data", fer_subset, "--epochs", "2", "--name", "stn-fer", "--registry",
                   db, "--json", "--quiet").check()
    result = json.loads(shown.stdout)
    assert 0 <= result["test_accuracy"] <= 1 and result["n_train"] == 210 and result["n_test"] == 70
    assert sorted(result["recall"]) == FER_CLASSES
    assert len(result["validation"]) == 2 and result["best_epoch"] in (1, 2)  # one check an epoch
    corpus = get_host().read_corpus("imagefolder", fer_subset)
    (weights,) = Registry(db).list_weights()
    assert weights.name == "stn-fer" and weights.kind == "saliency-stn"
    assert weights.sha256 == hashlib.sha256(open(weights.path, "rb").read()).hexdigest()
    record = weights.provenance
    assert record["source_fingerprint"] == corpus.fingerprint() and record["classes"] == FER_CLASSES
    assert (record["seed"], record["epochs"], record["test_accuracy"]) == (0, 2, result["test_accuracy"])
    assert "Table A1" in record["architecture"] and record["command"].startswith("emokit pretrain face.stn")
    seven = load_stn_checkpoint(SaliencyGuidedSTN(n_classes=7), weights.path, n_classes=7)
    assert seven["file_classes"] == 7 and not seven["head_replaced"]
    eight = load_stn_checkpoint(SaliencyGuidedSTN(n_classes=8), weights.path, n_classes=8)
    assert eight["head_replaced"]  # RAVDESS's 8 emotions get a fresh class layer
    listed = emokit("weights", "list", "--registry", db).check().stdout
    assert "fer2013" in listed and "2 epochs" in listed  # where the weights come from
    again = emokit("pretrain", "face.stn", "--data", fer_subset, "--epochs", "2", "--name", "stn-fer", "--registry", db)
    assert again.returncode == 1 and "already registered" in again.stderr and "--replace" in again.stderr


def test_an_interrupted_pretraining_continues_where_it_stopped(fer_subset, tmp_path, monkeypatch):
    from emokit_core.pretraining import pretrain
    from emokit_plugins.face.recognizer import STNFrameClassifier

    def run(name):
        with Registry(tmp_path / f"{name}.db") as registry:
            return pretrain(get_host(), "face.stn", fer_subset, registry, weights_name=name, epochs=3,
                            out_dir=tmp_path / "out")

    whole = run("whole")
    make_batch = STNFrameClassifier.make_batch
    drawn = []

    def killed_in_the_third_epoch(self, items, device, rng):
        if rng is not None:
            drawn.append(1)
            if len(drawn) == 2 * 1 + 1:  # 189 training images, batch 128: one step an epoch
                raise KeyboardInterrupt
        return make_batch(self, items, device, rng)

    monkeypatch.setattr(STNFrameClassifier, "make_batch", killed_in_the_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        run("again")
    assert list((tmp_path / "out").glob("again-*.ckpt"))  # the last finished epoch, on disk
    monkeypatch.setattr(STNFrameClassifier, "make_batch", make_batch)
    resumed = run("again")
    assert resumed.resumed and not list((tmp_path / "out").glob("again-*.ckpt"))
    assert resumed.weights.sha256 == whole.weights.sha256  # the same network as an uninterrupted training
    assert resumed.test_accuracy == whole.test_accuracy and resumed.recall == whole.recall
    assert np.isclose(sum(whole.recall.values()) / 7, np.mean(list(whole.recall.values())))


def test_pretraining_needs_train_and_test_splits(fer_subset, tmp_path):
    from emokit_core.pretraining import pretrain

    with pytest.raises(CorpusError, match="needs train/ and test/"), Registry(tmp_path / "r.db") as registry:
        pretrain(get_host(), "face.stn", fer_subset / "train", registry, epochs=1)
