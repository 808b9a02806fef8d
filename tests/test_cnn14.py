"""PANNs CNN14: upstream state-dict layout, checkpoint loading and errors, front-end equivalence."""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

try:
    import emokit_plugins.speech.cnn14 as cnn14
except ImportError:  # the speech package's __init__ not importable yet: load the file itself
    _path = Path(__file__).resolve().parents[1] / "plugins" / "speech" / "cnn14.py"
    _spec = importlib.util.spec_from_file_location("emokit_plugins.speech.cnn14", _path)
    cnn14 = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(cnn14)

from emokit_core.errors import EmokitError
from emokit_core.melscale import mel_filterbank

Cnn14 = cnn14.Cnn14
WeightsError = cnn14.WeightsError

SR = 16000


def upstream_cnn14_keys() -> dict[str, tuple[int, ...]]:
    """Key → shape of ``Cnn14(16000, 512, 160, 64, 50, 8000, 527).state_dict()`` in upstream PANNs.

    Written from ``audioset_tagging_cnn/pytorch/models.py`` (Cnn14, ConvBlock) and torchlibrosa's
    ``Spectrogram``/``STFT``/``LogmelFilterBank``, in registration order; a BatchNorm2d contributes
    weight, bias, running_mean, running_var and num_batches_tracked.
    """
    n_bins, n_fft, mels = 257, 512, 64

    def bn(prefix, n):
        return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
                f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}

    table = {
        "spectrogram_extractor.stft.conv_real.weight": (n_bins, 1, n_fft),
        "spectrogram_extractor.stft.conv_imag.weight": (n_bins, 1, n_fft),
        "logmel_extractor.melW": (n_bins, mels),
        **bn("bn0", mels),
    }
    channels = [1, 64, 128, 256, 512, 1024, 2048]
    for i in range(1, 7):
        cin, cout = channels[i - 1], channels[i]
        table[f"conv_block{i}.conv1.weight"] = (cout, cin, 3, 3)
        table[f"conv_block{i}.conv2.weight"] = (cout, cout, 3, 3)
        table.update(bn(f"conv_block{i}.bn1", cout))
        table.update(bn(f"conv_block{i}.bn2", cout))
    table.update({"fc1.weight": (2048, 2048), "fc1.bias": (2048,),
                  "fc_audioset.weight": (527, 2048), "fc_audioset.bias": (527,)})
    return table


def _randomise_bn(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial batch-norm statistics, so a load that skipped buffers would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=g) * (5.0 if name.startswith("bn0") else 0.1)
                          - (40.0 if name.startswith("bn0") else 0.0))
            elif name.endswith("running_var"):
                buf.copy_((100.0 if name.startswith("bn0") else 1.0) * (0.5 + torch.rand(buf.shape, generator=g)))
            elif name.endswith("num_batches_tracked"):
                buf.fill_(1234)


class Opaque:  # an arbitrary pickled object: refused by the loader, never instantiated
    pass


def _clips(seconds: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = int(SR * seconds)
    t = torch.arange(n) / SR
    tone = 0.3 * torch.sin(2 * math.pi * 220 * t) * torch.hann_window(n, periodic=False)
    return torch.stack([tone + 0.01 * torch.randn(n, generator=g), 0.1 * torch.randn(n, generator=g)])


@pytest.fixture(scope="module")
def upstream_ckpt(tmp_path_factory):
    """A checkpoint in the upstream layout made from a seeded random initialisation."""
    torch.manual_seed(1234)
    model = Cnn14().eval()
    _randomise_bn(model, seed=1)
    path = cnn14.save_panns_checkpoint(model, tmp_path_factory.mktemp("panns") / "Cnn14_random.pth")
    x = _clips(0.5)
    with torch.no_grad():
        out = model(x)
    return path, x, out


# --------------------------------------------------------------------------------------
# Layout and checkpoints
# --------------------------------------------------------------------------------------

def test_state_dict_keys_and_shapes_match_upstream(upstream_ckpt):
    path, _, _ = upstream_ckpt
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert list(state) == ["model"]
    got = {k: tuple(v.shape) for k, v in state["model"].items()}
    expected = upstream_cnn14_keys()
    assert got == expected
    assert list(got) == list(expected)  # same registration order as upstream
    assert len(expected) == 84
    n_params = sum(math.prod(s) for k, s in expected.items() if not k.endswith("num_batches_tracked"))
    assert n_params == 81_049_487  # ≈ 80.7 M in the network + 0.3 M frozen STFT/mel weights


def test_checkpoint_round_trip_gives_identical_outputs(upstream_ckpt):
    path, x, out = upstream_ckpt
    torch.manual_seed(999)  # a different initialisation, overwritten by the load
    fresh = Cnn14().eval()
    info = cnn14.load_panns_checkpoint(fresh, path)
    assert info["n_tensors"] == 84 and len(info["sha256"]) == 64 and str(path) in info["source"]
    with torch.no_grad():
        again = fresh(x)
    assert again["embedding"].shape == (2, 2048)
    assert again["clipwise_output"].shape == (2, 527)
    assert torch.equal(again["embedding"], out["embedding"])
    assert torch.equal(again["clipwise_output"], out["clipwise_output"])
    assert fresh.bn0.num_batches_tracked.item() == 1234
    # a dict with "model" and a bare state dict load the same way; old files without
    # num_batches_tracked are accepted
    state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    cnn14.load_panns_checkpoint(fresh, {"model": state, "iteration": 10})
    bare = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert cnn14.load_panns_checkpoint(fresh, bare)["sha256"] is None
    # embed(): one clip → [2048], numpy accepted, training mode restored
    fresh.train()
    emb = fresh.embed(x[0].numpy())
    assert fresh.training and emb.shape == (2048,)
    torch.testing.assert_close(emb, out["embedding"][0], rtol=1e-5, atol=1e-6)


def test_wrong_architecture_names_mismatching_keys(upstream_ckpt, tmp_path):
    path, _, _ = upstream_ckpt
    model128 = Cnn14(mel_bins=128)
    with pytest.raises(WeightsError) as err:
        cnn14.load_panns_checkpoint(model128, path)
    msg = str(err.value)
    assert isinstance(err.value, EmokitError)
    assert str(path) in msg and "shape mismatch" in msg
    assert "logmel_extractor.melW: file [257, 64] vs model [257, 128]" in msg
    assert "bn0.weight" in msg and "5 shape mismatches" in msg
    assert "Cnn14_16k_mAP=0.438.pth" in err.value.hint

    # a Cnn6-like state dict: 5x5 single-conv blocks, four of them, 512-d fc1
    cnn6 = {"logmel_extractor.melW": torch.zeros(257, 64)}
    channels = [1, 64, 128, 256, 512]
    for i in range(1, 5):
        cnn6[f"conv_block{i}.conv1.weight"] = torch.zeros(channels[i], channels[i - 1], 5, 5)
        for part in ("weight", "bias", "running_mean", "running_var"):
            cnn6[f"conv_block{i}.bn1.{part}"] = torch.zeros(channels[i])
    cnn6.update({"fc1.weight": torch.zeros(512, 512), "fc1.bias": torch.zeros(512),
                 "fc_audioset.weight": torch.zeros(527, 512), "fc_audioset.bias": torch.zeros(527),
                 "fc_extra.weight": torch.zeros(3, 3)})
    cnn6_path = tmp_path / "Cnn6.pth"
    torch.save({"model": cnn6}, cnn6_path)
    with pytest.raises(WeightsError) as err:
        cnn14.load_panns_checkpoint(Cnn14(width=0.0625), cnn6_path)
    msg = str(err.value)
    assert str(cnn6_path) in msg
    assert "missing keys (spectrogram_extractor.stft.conv_real.weight" in msg
    assert "1 unexpected key (fc_extra.weight)" in msg
    assert "conv_block1.conv1.weight: file [64, 1, 5, 5] vs model [4, 1, 3, 3]" in msg
    assert "more)" in msg  # long lists are cut, with a count


def test_unreadable_checkpoints_raise_weights_error(upstream_ckpt, tmp_path):
    path, _, _ = upstream_ckpt
    model = Cnn14(width=0.0625)
    truncated = tmp_path / "Cnn14_16k_truncated.pth"
    truncated.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="cannot be read as a torch checkpoint") as err:
        cnn14.load_panns_checkpoint(model, truncated)
    assert str(truncated) in str(err.value)

    garbage = tmp_path / "notes.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read as a torch checkpoint"):
        cnn14.load_panns_checkpoint(model, garbage)

    pickled = tmp_path / "pickled.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "obj": Opaque()}, pickled, pickle_module=pickle)
    with pytest.raises(WeightsError, match="other than tensors.*Opaque"):
        cnn14.load_panns_checkpoint(model, pickled)

    # numpy extras beside the weights (a training sampler's state) are fine
    extras = tmp_path / "with_sampler.pth"
    torch.save({"model": model.state_dict(), "iteration": 5,
                "sampler": {"indexes": [np.arange(4)], "random_state": np.random.RandomState(0).get_state()}}, extras)
    assert cnn14.load_panns_checkpoint(model, extras)["extra_keys"] == ["iteration", "sampler"]

    with pytest.raises(WeightsError, match="cannot be opened"):
        cnn14.load_panns_checkpoint(model, tmp_path / "absent.pth")
    with pytest.raises(WeightsError, match="not a state dict of tensors"):
        cnn14.load_panns_checkpoint(model, {"model": {"fc1.weight": [1, 2]}})


# --------------------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------------------

def test_short_clips_are_padded_not_crashing():
    torch.manual_seed(0)
    model = Cnn14(width=0.125).eval()
    assert model.min_samples == 4960  # 31 hops: 32 frames survive five 2x2 poolings (0.31 s at 16 kHz)
    with torch.no_grad():
        short = model(_clips(0.1))
        assert short["embedding"].shape == (2, 256) and short["clipwise_output"].shape == (2, 527)
        assert torch.isfinite(short["embedding"]).all()
        # repeat padding = the tiled clip at exactly min_samples
        x = _clips(0.1)
        tiled = x.repeat(1, 4)[:, : model.min_samples]
        torch.testing.assert_close(model(x)["embedding"], model(tiled)["embedding"])
        for n in (0, 1, 100, 300):
            assert torch.isfinite(model(torch.zeros(2, n) + 0.01)["embedding"]).all()
        assert model.embed(torch.zeros(0)).shape == (256,)
    zeros = Cnn14(width=0.125, pad_mode="zeros").eval()
    with torch.no_grad():
        assert torch.isfinite(zeros(_clips(0.05))["embedding"]).all()
    with pytest.raises(ValueError):
        Cnn14(mel_bins=16)


def test_width_channels_last_and_eval_determinism():
    torch.manual_seed(0)
    model = Cnn14(width=0.25).eval()
    assert model.channels == (16, 32, 64, 128, 256, 512) and model.embedding_dim == 512
    x = _clips(0.4)
    with torch.no_grad():
        ref = model(x)
        model.to(memory_format=torch.channels_last)
        assert model.conv_block3.conv2.weight.is_contiguous(memory_format=torch.channels_last)
        cl = model(x)
    torch.testing.assert_close(cl["embedding"], ref["embedding"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cl["clipwise_output"], ref["clipwise_output"], rtol=1e-4, atol=1e-5)


def test_replace_head_log_softmax_nll_and_freezing():
    torch.manual_seed(0)
    model = Cnn14(width=0.125)
    cnn14.replace_head(model, 8)
    keys = set(model.state_dict())
    assert {"fc_transfer.weight", "fc_transfer.bias"} <= keys and not any(k.startswith("fc_audioset") for k in keys)
    assert "conv_block6.conv2.weight" in keys and "logmel_extractor.melW" in keys
    cnn14.freeze_lower_blocks(model, 4)
    assert not model.conv_block4.conv2.weight.requires_grad and model.conv_block5.conv1.weight.requires_grad
    assert not model.spectrogram_extractor.stft.conv_real.weight.requires_grad
    model.train()
    out = model(_clips(0.4))
    assert out["log_probs"].shape == (2, 8)
    torch.testing.assert_close(out["log_probs"].exp().sum(-1), torch.ones(2))
    loss = F.nll_loss(out["log_probs"], torch.tensor([1, 5]))
    loss.backward()
    assert model.fc_transfer.weight.grad is not None and model.conv_block5.conv1.weight.grad is not None
    assert model.conv_block1.conv1.weight.grad is None


# --------------------------------------------------------------------------------------
# Front-end equivalence
# --------------------------------------------------------------------------------------

def test_stft_front_end_matches_torch_stft():
    torch.manual_seed(0)
    model = Cnn14(width=0.0625).eval()
    x = torch.randn(2, 8000, dtype=torch.float64)
    window = torch.hann_window(512, periodic=True, dtype=torch.float64)
    spec = torch.stft(x, n_fft=512, hop_length=160, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    power_ref = (spec.abs() ** 2).transpose(1, 2)[:, None]            # [batch, 1, frames, 257]
    with torch.no_grad():
        power = model.spectrogram_extractor(x.float()).double()
    assert power.shape == power_ref.shape == (2, 1, 51, 257)
    assert (power - power_ref).abs().max() / power_ref.max() < 1e-5
    mel = power_ref.float() @ model.logmel_extractor.melW
    logmel_ref = 10 * torch.log10(mel.clamp(min=1e-10))
    with torch.no_grad():
        torch.testing.assert_close(model.logmel(x.float()), logmel_ref, rtol=0, atol=1e-3)


def _slaney_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(hz < 1000, hz * 3 / 200, 15 + 27 * np.log(np.maximum(hz, 1e-9) / 1000) / np.log(6.4))


def test_mel_filterbank_properties():
    melw = Cnn14(width=0.0625).logmel_extractor.melW
    assert melw.shape == (257, 64) and melw.dtype == torch.float32 and not melw.requires_grad
    fb = mel_filterbank(16000, 512, 64, 50, 8000).astype(np.float32)
    np.testing.assert_array_equal(fb.T, melw.numpy())
    assert (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    # Slaney's scale: 15 mel at 1 kHz, 27 more per factor 6.4
    assert np.isclose(_slaney_mel(1000.0), 15.0) and np.isclose(_slaney_mel(6400.0), 42.0)
    edges_mel = np.linspace(_slaney_mel(50.0), _slaney_mel(8000.0), 66)
    # a fine frequency grid: filter i peaks at the centre edge i+1 and has unit area in Hz
    fine = mel_filterbank(16000, 2 ** 16, 64, 50, 8000)
    freqs = np.fft.rfftfreq(2 ** 16, 1 / 16000)
    np.testing.assert_allclose(_slaney_mel(freqs[fine.argmax(axis=1)]), edges_mel[1:-1], atol=0.01)
    np.testing.assert_allclose(fine.sum(axis=1) * (16000 / 2 ** 16), 1.0, rtol=2e-3)
    # support: zero outside [edge i, edge i+2]
    lo = np.interp(edges_mel[:-2], _slaney_mel(freqs), freqs)
    hi = np.interp(edges_mel[2:], _slaney_mel(freqs), freqs)
    outside = (freqs[None, :] < lo[:, None] - 1) | (freqs[None, :] > hi[:, None] + 1)
    assert (fine[outside] == 0).all()


def test_front_end_matches_torchlibrosa():
    stft = pytest.importorskip("torchlibrosa.stft")
    reference = torch.nn.ModuleDict({
        "spectrogram_extractor": stft.Spectrogram(n_fft=512, hop_length=160, win_length=512, window="hann",
                                                  center=True, pad_mode="reflect", freeze_parameters=True),
        "logmel_extractor": stft.LogmelFilterBank(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000, ref=1.0,
                                                  amin=1e-10, top_db=None, freeze_parameters=True),
    })
    model = Cnn14(width=0.0625).eval()
    ref_state = reference.state_dict()
    ours = {k: v for k, v in model.state_dict().items() if k.split(".")[0] in reference}
    assert {k: tuple(v.shape) for k, v in ref_state.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    for k in ref_state:  # our numpy-built weights vs torchlibrosa/librosa's
        torch.testing.assert_close(ours[k], ref_state[k], rtol=0, atol=1e-6)
    x = _clips(0.5, seed=3)
    with torch.no_grad():
        expected = reference["logmel_extractor"](reference["spectrogram_extractor"](x))
        torch.testing.assert_close(model.logmel(x), expected, rtol=0, atol=1e-3)
        model.load_state_dict({**model.state_dict(), **ref_state})  # same weights: the same numbers, to
        torch.testing.assert_close(model.logmel(x), expected, rtol=1e-5, atol=1e-4)  # float32 rounding


def test_the_fft_gives_the_convolutions_numbers_and_other_kernels_are_convolved():
    """While its kernels are the windowed DFT basis the STFT runs as an FFT; it gives what the
    strided convolution gives.  Kernels that differ (a checkpoint that trained them) are used."""
    import torch.nn.functional as F

    stft = Cnn14(width=0.0625).eval().spectrogram_extractor.stft
    x = _clips(0.5, seed=5)
    padded = F.pad(x[:, None], (256, 256), mode="reflect")
    with torch.no_grad():
        by_convolution = [conv(padded).transpose(1, 2)[:, None] for conv in (stft.conv_real, stft.conv_imag)]
        assert stft.holds_dft_kernels()
        for ours, reference in zip(stft(x), by_convolution):
            torch.testing.assert_close(ours, reference, rtol=0, atol=1e-4 * float(reference.abs().max()))
        stft.conv_imag.weight.mul_(0.5)  # trained kernels
        assert not stft.holds_dft_kernels()
        real, imag = stft(x)
        torch.testing.assert_close(imag, 0.5 * by_convolution[1], rtol=1e-5, atol=1e-5)
        stft.conv_imag.weight.mul_(2.0)
        assert stft.holds_dft_kernels()  # checked again after the change


def test_dropout_rates_are_parameters_that_leave_checkpoints_alone():
    x = _clips(1.0, seed=6)
    upstream, without = Cnn14(width=0.0625), Cnn14(width=0.0625, conv_dropout=0.0, fc_dropout=0.0)
    assert (upstream.conv_dropout, upstream.fc_dropout) == (0.2, 0.5)  # PANNs' rates by default
    without.load_state_dict(upstream.state_dict())  # same keys: dropout has no weights
    with torch.no_grad():
        upstream.eval()
        without.eval()
        torch.testing.assert_close(upstream(x)["embedding"], without(x)["embedding"])  # eval: the same network
        upstream.train()
        without.train()
        torch.testing.assert_close(without(x)["embedding"], without(x)["embedding"])  # nothing dropped
        assert not torch.equal(upstream(x)["embedding"], upstream(x)["embedding"])
    with pytest.raises(ValueError, match="fc_dropout must be in"):
        Cnn14(fc_dropout=1.0)
