"""DeepSpectrum front-end (mel spectrogram pictures) and the AlexNet fc7 extractor.

No ImageNet weights are downloaded: the tests build seeded random state dicts in
torchvision's layout and save them with ``torch.save``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torchvision

from emokit_core.errors import EmokitError
from emokit_plugins.speech import deepspectrum as ds
from emokit_plugins.speech.deepspectrum import (
    AlexNetFeatures,
    WeightsError,
    alexnet_classifier,
    fc7_features,
    load_alexnet_weights,
    spectrogram_image,
)

SR = 16000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5, noise: float = 0.003, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    return amp * np.sin(2 * np.pi * freq * t) + noise * rng.normal(size=t.size)


def viridis_table() -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return np.round(cmap(np.arange(cmap.N))[:, :3] * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------
# spectrogram pictures
# --------------------------------------------------------------------------------------

def test_image_shape_dtype_and_determinism():
    audio = tone(440.0, seconds=1.5) + tone(1800.0, seconds=1.5, amp=0.1, seed=1)
    first = spectrogram_image(audio, SR)
    assert first.shape == (227, 227, 3) and first.dtype == np.uint8
    assert np.array_equal(first, spectrogram_image(audio.copy(), SR))
    assert np.mean(first != spectrogram_image(audio.astype(np.float32), SR)) < 0.01  # float32 input: same picture
    assert spectrogram_image(audio, SR, size=100).shape == (100, 100, 3)
    assert first.std() > 0  # not a flat picture


def _brightest_row(image: np.ndarray) -> int:
    return int(np.argmax(image.astype(np.float64).sum(axis=(1, 2))))


def test_high_tone_lights_top_rows_low_tone_bottom_rows():
    size = 227
    high = spectrogram_image(tone(6000.0, amp=0.8), SR)
    low = spectrogram_image(tone(200.0, amp=0.8), SR)
    # viridis gets lighter towards its end: the tone's band is the brightest row
    assert _brightest_row(high) < size // 4
    assert _brightest_row(low) > 3 * size // 4
    top, bottom = slice(0, size // 3), slice(2 * size // 3, size)
    assert high[top].astype(float).mean() > high[bottom].astype(float).mean()
    assert low[bottom].astype(float).mean() > low[top].astype(float).mean()


def test_colours_are_viridis_from_darkest_to_lightest():
    table = viridis_table()
    image = spectrogram_image(tone(300.0) + tone(2500.0, amp=0.2, seed=3), SR)
    codes = lambda a: (a[..., 0].astype(np.int64) << 16) | (a[..., 1].astype(np.int64) << 8) | a[..., 2]
    assert np.isin(codes(image.reshape(-1, 3)), codes(table)).all()
    pixels = image.reshape(-1, 3).astype(int)
    darkest = pixels[np.argmin(pixels.sum(axis=1))]
    lightest = pixels[np.argmax(pixels.sum(axis=1))]
    assert np.abs(darkest - table[0]).max() <= 1       # the clip's minimum dB -> viridis(0)
    assert np.abs(lightest - table[-1]).max() <= 1     # its maximum -> viridis(1)
    assert np.array_equal(table[0], [68, 1, 84])


def test_short_and_silent_clips_are_padded_not_errors():
    table = viridis_table()
    for samples in (int(0.05 * SR), 100, 1, 0):
        image = spectrogram_image(tone(500.0, seconds=1.0)[:samples], SR)
        assert image.shape == (227, 227, 3) and image.dtype == np.uint8
    assert spectrogram_image(tone(500.0, seconds=0.05), SR).std() > 0
    silent = spectrogram_image(np.zeros(SR), SR)
    assert (silent == table[0]).all()
    pcm = (tone(500.0) * 32767).astype(np.int16)
    assert np.mean(spectrogram_image(pcm, SR) != spectrogram_image(pcm / 32767.0, SR)) < 0.01


def test_deepspectrum_framing_and_mel_defaults():
    db = ds.log_mel_spectrogram(tone(440.0, seconds=4.0), SR)
    # n_fft = next power of two of 25 ms = 512, hop 256, no centring: 1 + (64000 - 512) // 256 frames
    assert db.shape == (128, 249)
    assert db.max() == 0.0
    fb = ds.slaney_mel_filterbank(SR, 512, 128, 0.0, 8000.0)
    assert fb.shape == (128, 257) and (fb >= 0).all() and (fb.sum(axis=1) > 0).all()


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    audio = tone(440.0, seconds=2.0) + tone(3100.0, seconds=2.0, amp=0.05, seed=4)
    assert np.allclose(ds.slaney_mel_filterbank(SR, 512, 128, 0.0, 8000.0),
                       librosa.filters.mel(sr=SR, n_fft=512, n_mels=128, fmax=8000.0), atol=1e-7)
    power = np.abs(librosa.stft(audio, n_fft=512, hop_length=256, center=False)) ** 2
    reference = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=SR, n_mels=128),
                                    ref=np.max, top_db=None)
    assert np.abs(ds.log_mel_spectrogram(audio, SR) - reference).max() < 1e-3


def test_matches_a_matplotlib_figure_rendering():
    """The fast renderer draws what DeepSpectrum's 1x1-inch, axis-free figure at dpi=227 draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    audio = tone(330.0, seconds=2.0) + tone(2200.0, seconds=2.0, amp=0.1, seed=5)
    db = ds.log_mel_spectrogram(audio, SR)
    fig = plt.figure(frameon=False)
    fig.set_size_inches(1, 1)
    ax = plt.Axes(fig, [0.0, 0.0, 1.0, 1.0])
    ax.set_axis_off()
    fig.add_axes(ax)
    y = ds._mel_points(db.shape[0] + 2, 0.0, 8000.0)[1:]        # librosa 0.7's mel coordinates
    x = np.arange(db.shape[1] + 1) * 256 / SR                    # frame times
    ax.pcolormesh(x, y, db, cmap="viridis", shading="flat", rasterized=True, edgecolors="None")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(y.min(), y.max())
    ax.set_yscale("symlog", linthresh=1000.0, base=2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=227)
    plt.close(fig)
    buf.seek(0)
    rendered = np.array(Image.open(buf))[..., :3]
    assert rendered.shape == (227, 227, 3)
    agree = np.all(np.abs(rendered.astype(int) - spectrogram_image(audio, SR)) <= 1, axis=-1).mean()
    assert agree > 0.98


# torchvision's alexnet layout, written out so the test fails if the module drifts.
EXPECTED_SHAPES = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


@pytest.fixture(scope="module")
def tv_alexnet():
    """A torchvision alexnet from a seeded random initialisation (stands in for ImageNet weights)."""
    torch.manual_seed(7)
    return torchvision.models.alexnet(weights=None).eval()


@pytest.fixture(scope="module")
def weights_file(tv_alexnet, tmp_path_factory):
    """The seeded alexnet saved as torchvision's ImageNet file is: a bare state dict."""
    path = tmp_path_factory.mktemp("alexnet") / "alexnet-test.pth"
    torch.save(tv_alexnet.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def fc7_model(weights_file):
    model = AlexNetFeatures()
    load_alexnet_weights(model, weights_file)
    return model


@pytest.fixture(scope="module")
def images():
    return np.stack([spectrogram_image(tone(f, seconds=1.5, seed=i)) for i, f in enumerate((220.0, 880.0, 3000.0))])


def _reference_fc7(net, images_nhwc: np.ndarray) -> torch.Tensor:
    """fc7 after ReLU computed by hand from torchvision's modules."""
    x = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x - mean) / std
    with torch.no_grad():
        x = torch.flatten(net.avgpool(net.features(x)), 1)
        for index in range(6):  # dropout, fc6, relu, dropout, fc7, relu
            x = net.classifier[index](x)
    return x


def test_state_dict_layout_is_torchvisions():
    model = AlexNetFeatures()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == EXPECTED_SHAPES
    theirs = {k: tuple(v.shape) for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
    assert list(ours) == list(theirs) and ours == theirs
    assert not model.training  # created in eval mode: dropout off
    assert isinstance(model.classifier[5], torch.nn.ReLU) and isinstance(model.classifier[4], torch.nn.Linear)


def test_saved_weights_round_trip_to_the_same_fc7(tv_alexnet, fc7_model, images):
    reference = _reference_fc7(tv_alexnet, images)
    with torch.inference_mode():
        ours = fc7_model(torch.from_numpy(images).permute(0, 3, 1, 2))
        ours_float = fc7_model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)
    assert ours.shape == (3, 4096)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_float, reference, rtol=1e-4, atol=1e-5)
    for key, value in tv_alexnet.state_dict().items():
        assert torch.equal(fc7_model.state_dict()[key], value)


def test_fc7_features_are_4096_non_negative_and_batched(tv_alexnet, fc7_model, images):
    features = fc7_features(images, fc7_model, batch_size=2)
    assert features.shape == (3, 4096) and features.dtype == np.float32
    assert (features >= 0).all() and (features > 0).any()
    np.testing.assert_allclose(features, _reference_fc7(tv_alexnet, images).numpy(), rtol=1e-4, atol=1e-5)
    assert fc7_features(images[:0], fc7_model).shape == (0, 4096)
    with pytest.raises(TypeError):
        fc7_features(images.astype(np.float32), fc7_model)


def test_pre_relu_and_deepspectrum_preprocessing_options(tv_alexnet, fc7_model, images):
    x = torch.from_numpy(images[:1]).permute(0, 3, 1, 2)
    try:
        fc7_model.relu, fc7_model.preprocessing = False, "deepspectrum"
        with torch.inference_mode():
            ours = fc7_model(x)
    finally:
        fc7_model.relu, fc7_model.preprocessing = True, "imagenet"
    with torch.no_grad():  # DeepSpectrum's PyTorch extractor: /255, BGR, classifier[:-2]
        h = torch.flatten(tv_alexnet.avgpool(tv_alexnet.features(x.float().flip(1) / 255.0)), 1)
        reference = tv_alexnet.classifier[:-2](h)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    assert (ours < 0).any()


def test_resnet_state_dict_is_refused_with_key_lists(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    model = AlexNetFeatures()
    with pytest.raises(WeightsError) as info:
        load_alexnet_weights(model, state)
    message = str(info.value)
    assert "16 missing keys" in message and "features.0.weight" in message
    assert f"{len(state)} unexpected keys" in message and "conv1.weight" in message and "more" in message
    assert "alexnet-owt-7be5be79.pth" in info.value.hint
    assert isinstance(info.value, EmokitError)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="resnet18.pth"):
        load_alexnet_weights(model, path)


def test_ten_class_alexnet_is_refused_naming_the_shape_mismatch(tmp_path):
    state = torchvision.models.alexnet(weights=None, num_classes=10).state_dict()
    path = tmp_path / "alexnet10.pth"
    torch.save(state, path)
    model = AlexNetFeatures()
    before = model.features[0].weight.clone()
    with pytest.raises(WeightsError) as info:
        load_alexnet_weights(model, path)
    message = str(info.value)
    assert str(path) in message and "2 shape mismatches" in message
    assert "classifier.6.weight: file [10, 4096] vs model [1000, 4096]" in message
    assert "missing" not in message and "unexpected" not in message
    assert "alexnet_classifier" in info.value.hint
    assert torch.equal(model.features[0].weight, before)  # nothing loaded


def test_truncated_corrupt_and_absent_files_name_the_file(tmp_path):
    small = tmp_path / "small.pth"
    torch.save({"features.0.bias": torch.arange(64.0)}, small)
    data = small.read_bytes()
    truncated = tmp_path / "alexnet-truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    model = AlexNetFeatures()
    for path in (truncated, garbage):
        with pytest.raises(WeightsError, match=path.name) as info:
            load_alexnet_weights(model, path)
        assert "truncated or corrupt" in str(info.value)
    with pytest.raises(WeightsError, match="does not exist"):
        load_alexnet_weights(model, tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="small.pth"):  # readable but incomplete
        load_alexnet_weights(model, small)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "epoch": 3}, wrapped)
    with pytest.raises(WeightsError, match="not a state dict of tensors"):
        load_alexnet_weights(model, wrapped)


def test_alexnet_classifier_replaces_only_the_last_layer(tv_alexnet, weights_file, images):
    torch.manual_seed(0)
    model = alexnet_classifier(8, weights_file)
    assert isinstance(model, torchvision.models.AlexNet)
    assert model.classifier[6].weight.shape == (8, 4096) and model.classifier[6].bias.shape == (8,)
    state, reference = model.state_dict(), tv_alexnet.state_dict()
    for key in reference:
        if not key.startswith("classifier.6."):
            assert torch.equal(state[key], reference[key]), key
    x = ds.normalise_images(torch.from_numpy(images[:2]).permute(0, 3, 1, 2))
    assert model.eval()(x).shape == (2, 8)
    assert alexnet_classifier(3).classifier[6].out_features == 3
    with pytest.raises(WeightsError, match="conv1.weight"):
        alexnet_classifier(8, torchvision.models.resnet18(weights=None).state_dict())
    with pytest.raises(ValueError):
        alexnet_classifier(0)
    # a fine-tuned model's own state restores strictly
    restored = load_alexnet_weights(alexnet_classifier(8), state)
    assert torch.equal(restored.classifier[6].weight, model.classifier[6].weight)


def test_pickled_module_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "whole-model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError, match="pickled Python objects") as info:
        load_alexnet_weights(AlexNetFeatures(), path)
    assert "whole-model.pth" in str(info.value)
