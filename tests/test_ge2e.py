"""speech.ge2e_svc: emokit's own GE2E encoder held to resemblyzer's outputs, its weights, its
refusals, and a run through the protocol.

tests/data/ge2e_reference.npz holds what resemblyzer 0.1.4's own code computed on a synthetic
16 kHz signal (scripts/reference/ge2e.py says how it was made).  The weights come from the
Resemblyzer wheel installed with --no-deps (scripts/setup); without it these tests fail with
the install command, they do not skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "data" / "ge2e_reference.npz"
INSTALL = "pip install --no-deps resemblyzer==0.1.4"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def checkpoint():
    """The installed pretrained.pt as the runner hands it to the pipeline (a checked WeightsRef)."""
    from emokit_plugins.ge2e import locate_weights

    from emokit_core.cache import file_sha256
    from emokit_core.errors import WeightsError
    from emokit_core.specs import WeightsRef

    try:
        path = locate_weights()
    except WeightsError as exc:
        pytest.fail(f"{exc}: the GE2E tests need resemblyzer's weights file ({INSTALL}, as scripts/setup does)")
    return WeightsRef(str(path), file_sha256(path), "ge2e-resemblyzer")


@pytest.fixture(scope="module")
def encoder(checkpoint):
    from emokit_plugins.ge2e.network import load_encoder

    return load_encoder(checkpoint.path, sha256=checkpoint.sha256)


def reference_wave(reference) -> np.ndarray:
    return reference["wav_int16"].astype(np.float32) / 32768.0


# -- the weights -----------------------------------------------------------------------------
def test_the_plugin_declares_the_weights_with_the_installed_files_checksum(checkpoint, reference):
    import emokit_plugins.ge2e as plugin

    from emokit_core.registry.weights import packaged_record
    from emokit_core.testing import check_pipeline, check_plugin

    host = check_plugin(plugin)
    spec = host.weights["ge2e-resemblyzer"]
    assert spec.sha256 == checkpoint.sha256 == str(reference["sha256"])
    assert Path(checkpoint.path).stat().st_size == 17_090_379
    assert spec.licence.startswith("Apache-2.0") and "Resemble" in spec.source and "LSTM" in spec.architecture
    record = packaged_record(spec)
    assert record.sha256 == spec.sha256 and record.provenance["licence"] == spec.licence
    built = check_pipeline("speech.ge2e_svc", host=host)  # the declaration; it builds without weights
    assert built.extractor.volume_norm is True and host.pipeline("speech.ge2e_svc").default("weights") == spec.name


def test_a_state_dict_that_does_not_fit_is_refused_naming_the_file(checkpoint, tmp_path):
    import torch
    from emokit_plugins.ge2e.extractor import Ge2eStats
    from emokit_plugins.ge2e.network import load_encoder

    from emokit_core.errors import WeightsError

    state = torch.load(checkpoint.path, map_location="cpu", weights_only=True)["model_state"]
    renamed = {("lstm.weight_ih_l9" if k == "lstm.weight_ih_l0" else k): v for k, v in state.items()}
    bad = tmp_path / "renamed.pt"
    torch.save({"step": 1, "model_state": renamed}, bad)
    with pytest.raises(WeightsError) as caught:
        load_encoder(bad)
    message = str(caught.value)
    assert str(bad) in message and "lstm.weight_ih_l0" in message and "lstm.weight_ih_l9" in message
    assert "\n" not in message and "resemblyzer==0.1.4" in message
    narrow = tmp_path / "narrow.pt"
    torch.save({**state, "linear.weight": state["linear.weight"][:128]}, narrow)  # a bare state dict loads too...
    with pytest.raises(WeightsError, match=r"shape mismatch .*linear\.weight: file \[128, 256\] vs model \[256, 256\]"):
        load_encoder(narrow)  # ...but not one of another shape
    with pytest.raises(WeightsError, match="renamed.pt"):
        Ge2eStats(weights=str(bad), device="cpu").extract_audio(np.zeros(16000, np.float32), 16000)
    with pytest.raises(WeightsError, match="changed since"):
        load_encoder(checkpoint.path, sha256="0" * 64)


# -- the front end and the network against resemblyzer's own ----------------------------------
def test_the_mel_is_resemblyzers(reference):
    from emokit_plugins.ge2e.extractor import mel_spectrogram, normalise_volume

    wave = reference_wave(reference)
    normalised = normalise_volume(wave)
    gain = float(np.dot(normalised, wave) / np.dot(wave, wave))
    assert gain == pytest.approx(float(reference["gain"]), rel=1e-6) and gain > 3.9  # -42 dBFS raised to -30
    mel = mel_spectrogram(normalised)
    assert mel.shape == reference["mel"].shape == (161, 40) and mel.dtype == np.float32
    np.testing.assert_allclose(mel, reference["mel"], rtol=1e-5, atol=1e-9)
    assert np.array_equal(normalise_volume(normalised * 4), normalised * 4)  # louder than -30 dBFS: left alone
    assert np.array_equal(normalise_volume(np.zeros(800)), np.zeros(800, np.float32))
    assert mel_spectrogram(np.zeros(0)).shape == (1, 40) and mel_spectrogram(np.ones(159)).shape == (1, 40)


def test_the_last_lstm_layers_frames_and_the_embedding_are_resemblyzers(reference, encoder, checkpoint):
    import torch
    from emokit_plugins.ge2e.extractor import mel_spectrogram, normalise_volume

    mel = mel_spectrogram(normalise_volume(reference_wave(reference)))
    with torch.inference_mode():
        frames, embedding = encoder(torch.from_numpy(mel[None]))
        _, partial = encoder(torch.from_numpy(mel[None, :160]))  # embed_utterance's one 1.6-s partial
    np.testing.assert_allclose(frames[0].numpy(), reference["frames"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(embedding[0].numpy(), reference["embedding"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(partial[0].numpy(), reference["embedding_utterance"], rtol=0, atol=1e-5)
    # The module's state dict is the checkpoint's, key for key (loaded strictly).
    stored = torch.load(checkpoint.path, map_location="cpu", weights_only=True)["model_state"]
    assert set(encoder.state_dict()) == set(stored)


# -- the extractor -----------------------------------------------------------------------------
def test_the_extractor_pools_the_last_layers_frames_by_mean_and_std(reference, checkpoint, monkeypatch):
    from emokit_plugins.ge2e import network
    from emokit_plugins.ge2e.extractor import Ge2eStats

    from emokit_core.cache import extractor_key
    from emokit_core.specs import WeightsRef
    from emokit_core.testing import check_extractor, synthetic_audio

    extractor = Ge2eStats(weights=checkpoint, device="cpu")
    pooled = extractor.extract_audio(reference_wave(reference), 16000)
    frames = reference["frames"].astype(np.float64)
    assert pooled.shape == (512,) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, np.concatenate([frames.mean(0), frames.std(0)]), rtol=0, atol=1e-5)
    check_extractor(extractor)  # cache key, clone and pickle, lengths, batch mates

    # Long clips stream through the LSTM in pieces with its state carried: the same features.
    clips = [synthetic_audio(seconds, 150.0 + 40 * i, seed=i) for i, seconds in enumerate((2.3, 0.4, 1.1))]
    prepared = [extractor.prepare_audio(c, 16000) for c in clips]
    whole = extractor.extract_batch(prepared)
    monkeypatch.setattr(network, "STREAM_FRAMES", 17)
    for a, b in zip(whole, extractor.extract_batch(prepared)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)

    # The cache key follows the weights' content and the preprocessing, not the device or batch size.
    key = extractor_key("ge2e", extractor)
    assert key["weights"] == checkpoint.sha256 and key["params"]["weights"] == {"sha256": checkpoint.sha256}
    assert key == extractor_key("ge2e", Ge2eStats(weights=checkpoint, device="cuda", batch_size=3))
    other = WeightsRef(checkpoint.path, "f" * 64)
    assert extractor_key("ge2e", Ge2eStats(weights=other))["weights"] == "f" * 64
    assert key != extractor_key("ge2e", Ge2eStats(weights=checkpoint, volume_norm=False))


def test_weights_none_is_refused_before_any_clip_is_read(tiny_demo, tmp_path):
    from emokit_core.cache import FeatureCache
    from emokit_core.corpora import read_ravdess
    from emokit_core.errors import EmokitError
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner

    host = PluginHost()
    recipe = host.pipeline("speech.ge2e_svc").create({**host.pipeline("speech.ge2e_svc").resolve(None)[1],
                                                      "weights": None})
    with pytest.raises(EmokitError, match="random weights its features are meaningless"):
        _ = recipe.extractor.cache_version  # read when a run plans its extraction
    with Registry(tmp_path / "r.db") as registry:
        runner = Runner(host, registry, FeatureCache(tmp_path / "features"))
        with pytest.raises(EmokitError, match="needs the pretrained GE2E speaker encoder") as caught:
            runner.run(["speech.ge2e_svc"], read_ravdess(tiny_demo, folds="grouped"),
                       overrides={"speech.ge2e_svc": {"weights": "none"}})
        assert "weights=ge2e-resemblyzer" in caught.value.hint
        assert registry.list_runs() == [] and runner.cache.misses == 0


# -- the protocol --------------------------------------------------------------------------------
def test_a_run_on_the_tiny_demo_is_recorded_with_its_weights(tiny_demo, checkpoint, tmp_path):
    from emokit_core.corpora import read_ravdess
    from emokit_core.registry import Registry
    from emokit_core.testing import check_pipeline

    corpus = read_ravdess(tiny_demo, folds="grouped")
    with Registry(tmp_path / "r.db") as registry:
        run = check_pipeline("speech.ge2e_svc", corpus, registry, params={"device": "cpu"})
        recorded = registry.get_run(run.run_id)
    assert recorded.status == "finished" and len(recorded.fold_results) == len(corpus.folds)
    assert recorded.weights["weights"]["sha256"] == checkpoint.sha256
    assert recorded.weights["weights"]["name"] == "ge2e-resemblyzer"
    assert run.pooled["accuracy"] > run.zeror  # 0.80 against 0.40 when it was written
