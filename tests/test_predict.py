"""`emokit predict` and emokit_core.predict.Predictor: fold ensembles of trained models on new clips."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from emokit_core.errors import ArtifactCorruptedError, EmokitError, MediaError, RegistryError
from emokit_core.predict import Predictor
from emokit_core.registry import Registry

from .cli import emokit
from .conftest import copy_registry

CLIP = "Actor_03/01-01-05-01-02-01-03.mp4"  # angry


@pytest.fixture
def trained(demo_registry):
    """The session's cheap main pipelines on the tiny demo corpus (read only)."""
    return demo_registry


def out_of_fold(registry, run_id, clip_id):
    return next(p for p in registry.predictions(run_id) if p.clip_id == clip_id)


def test_two_lines_give_fused_and_per_modality_posteriors(trained, tiny_demo):
    db, runs = trained
    result = Predictor.load("fuse.svm_linear", registry=str(db)).predict(tiny_demo / CLIP)

    classes = Registry(db).get_run(runs["fuse.svm_linear"]).corpus.classes
    assert result.model == "fuse.svm_linear@1" and result.run_id == runs["fuse.svm_linear"]
    assert list(result.posteriors) == classes and result.label == max(result.posteriors, key=result.posteriors.get)
    assert abs(sum(result.posteriors.values()) - 1) < 1e-6
    assert set(result.modalities) == {"speech.mfcc_svm", "face.pixels_vote"}
    assert result.fold_posteriors.shape == (5, len(classes))
    np.testing.assert_allclose(result.fold_posteriors.mean(axis=0), list(result.posteriors.values()))

    # Each modality's fold model for the clip's own fold saw no clip of its actor in training, so it
    # must give exactly the out-of-fold posteriors the run recorded: the rebuilt extractor and the
    # loaded models are the trained ones.
    reg = Registry(db)
    clip_id = "01-05-01-02-01-03"
    for pipeline in ("speech.mfcc_svm", "face.pixels_vote"):
        recorded = out_of_fold(reg, runs[pipeline], clip_id)
        m = result.modalities[pipeline]
        assert m.model == f"{pipeline}@1" and m.run_id == runs[pipeline]
        np.testing.assert_allclose(m.fold_posteriors[recorded.fold], recorded.probs, atol=1e-9)
        np.testing.assert_allclose(m.fold_posteriors.mean(axis=0), [m.posteriors[c] for c in classes])

    frames = result.frames
    assert frames is result.modalities["face.pixels_vote"].frames and frames.unit == "s"
    # face.pixels_vote keeps every 3rd frame of a 30-fps clip: rows 0.1 s apart.
    assert frames.posteriors.shape == (len(frames.times), len(classes)) and len(frames.times) > 20
    np.testing.assert_allclose(np.diff(frames.times), 0.1, atol=0.01)
    np.testing.assert_allclose(frames.posteriors.sum(axis=1), 1, atol=1e-6)
    assert result.modalities["speech.mfcc_svm"].frames is None


def test_speech_model_on_a_wav_and_fusion_refusing_one(trained, tiny_demo, tmp_path):
    import soundfile as sf

    from emokit_core.media import SAMPLE_RATE, decode

    db, runs = trained
    wav = tmp_path / "clip.wav"
    sf.write(wav, decode(tiny_demo / CLIP, audio=True), SAMPLE_RATE, subtype="FLOAT")
    speech = Predictor.load("speech.mfcc_svm@1", registry=str(db))
    from_wav, from_mp4 = speech.predict(wav), speech.predict(tiny_demo / CLIP)
    assert from_wav.frames is None and from_wav.modality == "speech"
    np.testing.assert_allclose(from_wav.fold_posteriors, from_mp4.fold_posteriors, atol=1e-9)

    with pytest.raises(MediaError) as caught:
        Predictor.load("fuse.svm_linear", registry=str(db)).predict(wav)
    assert str(wav) in caught.value.message and "--model speech.mfcc_svm@1" in caught.value.hint
    with pytest.raises(MediaError, match="clip.wav"):
        Predictor.load("face.pixels_vote", registry=str(db)).predict(wav)


def test_cli_table_json_and_timeline(trained, tiny_demo, tmp_path):
    db, _ = trained
    clips = [str(tiny_demo / CLIP), str(tiny_demo / "Actor_01/01-01-01-01-01-01-01.mp4")]
    result = emokit("predict", *clips, "--model", "fuse.svm_linear@1", "--registry", db, "--json",
                    "--timeline", tmp_path / "t.png")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "fuse.svm_linear@1" and [p["path"] for p in data["predictions"]] == clips
    face = data["predictions"][0]["modalities"]["face.pixels_vote"]
    assert len(face["frames"]["times"]) == len(face["frames"]["posteriors"]) > 20
    for name in ("t-01-01-05-01-02-01-03.png", "t-01-01-01-01-01-01-01.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = emokit("predict", clips[0], "--model", "fuse.svm_linear", "--registry", db)
    assert table.returncode == 0, table.stderr
    label = data["predictions"][0]["label"]
    assert "face.pixels_vote@1" in table.stdout and "speech.mfcc_svm@1" in table.stdout and label in table.stdout

    speech_only = emokit("predict", clips[0], "--model", "speech.mfcc_svm", "--registry", db, "--timeline",
                         tmp_path / "s.png")
    assert speech_only.returncode == 1 and "--timeline" in speech_only.stderr and not (tmp_path / "s.png").exists()


def test_a_corrupt_fold_model_is_refused(trained, tiny_demo, tmp_path):
    db, runs = trained
    copy = copy_registry(db, tmp_path / "copy")
    reg = Registry(copy)
    artifact = next(a for a in reg.get_run(runs["face.pixels_vote"]).artifacts
                    if a.fold == 2 and a.name == "model")
    path = copy.with_name("registry.artifacts") / artifact.sha256[:2] / artifact.sha256
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    for model in ("face.pixels_vote@1", "fuse.svm_linear@1"):  # directly, and as the input of a fusion
        with pytest.raises(ArtifactCorruptedError) as caught:
            Predictor.load(model, registry=reg)
        assert f"run {runs['face.pixels_vote']}, fold 2, 'model'" in caught.value.message
    cli = emokit("predict", tiny_demo / CLIP, "--model", "fuse.svm_linear", "--registry", copy)
    assert cli.returncode == 1 and cli.stdout == "" and "corrupted" in cli.stderr and "Traceback" not in cli.stderr


def test_files_that_are_not_clips_are_named(trained, tmp_path):
    db, _ = trained
    predictor = Predictor.load("fuse.svm_linear", registry=str(db))
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 50)
    with pytest.raises(MediaError) as caught:
        predictor.predict(notes)
    assert str(notes) in caught.value.message and "cannot be opened as media" in caught.value.message
    with pytest.raises(MediaError, match="no such file"):
        predictor.predict(tmp_path / "missing.mp4")
    cli = emokit("predict", notes, "--model", "fuse.svm_linear", "--registry", db)
    assert cli.returncode == 1 and f"error: {notes}" in cli.stderr and "hint:" in cli.stderr


def test_unknown_models_and_versions(trained):
    db, _ = trained
    for ref, words in (("fuse.nothing", "no model 'fuse.nothing'"), ("fuse.svm_linear@9", "no version 9"),
                       ("fuse.svm_linear@x", "bad model reference")):
        with pytest.raises(RegistryError, match=words):
            Predictor.load(ref, registry=str(db))
    cli = emokit("predict", "x.mp4", "--model", "speech.mfcc_svm@7", "--registry", db)
    assert cli.returncode == 1 and "no version 7 of model speech.mfcc_svm" in cli.stderr


def test_a_model_whose_weights_changed_is_refused(tmp_path):
    """A run trained from a checkpoint predicts only with that same checkpoint."""
    from emokit_core.plugins import get_host
    from emokit_core.predict import _recorded_weights

    host = get_host()

    checkpoint = tmp_path / "net.pth"
    checkpoint.write_bytes(b"weights v1")
    reg = Registry(tmp_path / "registry.db")
    recorded = reg.add_weights("net", checkpoint)
    run = SimpleNamespace(ref="face.x@1", run_id=1, weights={"weights": {
        "name": recorded.name, "path": recorded.path, "sha256": recorded.sha256}})
    assert _recorded_weights(reg, host, run, "weights").sha256 == recorded.sha256
    random_init = SimpleNamespace(ref="face.x@1", run_id=1, weights={"weights": {"init": "random"}})
    assert _recorded_weights(reg, host, random_init, "weights") is None
    checkpoint.write_bytes(b"weights v2")
    with pytest.raises(EmokitError, match="was trained from weights 'net' with SHA-256"):
        _recorded_weights(reg, host, run, "weights")
    reg.add_weights("net", checkpoint, replace=True)  # the name now means the new file
    with pytest.raises(EmokitError, match="was trained from weights 'net' with SHA-256"):
        _recorded_weights(reg, host, run, "weights")
    checkpoint.write_bytes(b"weights v1")  # the original file back, under a name that no longer fits it
    assert _recorded_weights(reg, host, run, "weights").path == str(checkpoint.resolve())
    shipped = host.weights["stn-fer2013"]  # a run from the weights a plugin ships finds them by name
    from_shipped = SimpleNamespace(ref="face.x@1", run_id=1, weights={"weights": {
        "name": shipped.name, "path": "/elsewhere/stn-fer2013.pt", "sha256": shipped.sha256}})
    assert _recorded_weights(reg, host, from_shipped, "weights").sha256 == shipped.sha256
