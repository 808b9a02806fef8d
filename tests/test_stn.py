"""Saliency-guided STN (paper Table A1): shapes, parameter count, identity init, checkpoints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

try:
    import emokit_plugins.face.stn as stn
except ImportError:  # the face package not importable yet: load the file itself
    _path = Path(__file__).resolve().parents[1] / "plugins" / "face" / "stn.py"
    _spec = importlib.util.spec_from_file_location("emokit_plugins_face_stn", _path)
    stn = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(stn)

from emokit_core.errors import EmokitError

SaliencyGuidedSTN = stn.SaliencyGuidedSTN
load_stn_checkpoint = stn.load_stn_checkpoint
WeightsError = stn.WeightsError


def upstream_layout(n_classes: int) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of the authors' ``Deep_Emotion_Saliency`` (fc2 = class layer)."""
    return {
        "conv1.weight": (10, 1, 3, 3), "conv1.bias": (10,),
        "conv2.weight": (10, 10, 3, 3), "conv2.bias": (10,),
        "conv3.weight": (10, 10, 3, 3), "conv3.bias": (10,),
        "conv4.weight": (10, 10, 3, 3), "conv4.bias": (10,),
        "norm.weight": (10,), "norm.bias": (10,),
        "norm.running_mean": (10,), "norm.running_var": (10,), "norm.num_batches_tracked": (),
        "fc1.weight": (50, 810), "fc1.bias": (50,),
        "fc2.weight": (n_classes, 50), "fc2.bias": (n_classes,),
        "localization.0.weight": (8, 1, 7, 7), "localization.0.bias": (8,),
        "localization.3.weight": (10, 8, 5, 5), "localization.3.bias": (10,),
        "fc_loc.0.weight": (32, 640), "fc_loc.0.bias": (32,),
        "fc_loc.2.weight": (6, 32), "fc_loc.2.bias": (6,),
    }


def random_upstream_state(n_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A checkpoint in the upstream layout, built from the table alone (not from our module)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in upstream_layout(n_classes).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    return state


def inputs(batch: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, 48, 48, generator=g), torch.rand(batch, 1, 48, 48, generator=g)


@pytest.fixture
def model() -> SaliencyGuidedSTN:
    torch.manual_seed(0)
    return SaliencyGuidedSTN(n_classes=8).eval()


def test_state_dict_matches_upstream_layout(model):
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == upstream_layout(8)


def test_parameter_count_is_66928_for_8_classes(model):
    assert sum(p.numel() for p in model.parameters()) == 66_928
    assert sum(p.numel() for p in SaliencyGuidedSTN(n_classes=3).parameters()) == 66_928 - 5 * 51


def test_layer_output_shapes_follow_table_a1(model):
    expected = {
        "localization.0": (8, 42, 42), "localization.1": (8, 21, 21), "localization.3": (10, 17, 17),
        "localization.4": (10, 8, 8), "fc_loc.0": (32,), "fc_loc.2": (6,),
        "conv1": (10, 46, 46), "conv2": (10, 44, 44), "pool2": (10, 22, 22), "conv3": (10, 20, 20),
        "conv4": (10, 18, 18), "norm": (10, 18, 18), "pool4": (10, 9, 9), "fc1": (50,), "fc2": (8,),
    }
    seen = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape))) for name in expected]
    image, saliency = inputs(batch=2)
    with torch.no_grad():
        model(image, saliency)
    for h in handles:
        h.remove()
    assert seen == {name: (2, *shape) for name, shape in expected.items()}


def test_identity_theta_at_init_leaves_image_unchanged(model):
    image, saliency = inputs()
    with torch.no_grad():
        theta = model.theta(saliency)
        warped = model.warp(image, saliency)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(3, 2, 3)
    assert torch.equal(theta, identity)
    assert torch.allclose(warped, image, atol=1e-5, rtol=0)


def test_theta_depends_on_saliency_not_image():
    torch.manual_seed(0)
    m = SaliencyGuidedSTN().eval()
    load_stn_checkpoint(m, random_upstream_state(8, seed=3))
    image, saliency = inputs(batch=2)
    with torch.no_grad():
        a = m.theta(saliency)
        warped = m.warp(image, saliency)
        b = m.theta(torch.rand(2, 1, 48, 48))
    assert not torch.allclose(a, b)
    assert not torch.allclose(warped, image, atol=1e-3)


def test_output_modes_shapes_and_posteriors(model):
    image, saliency = inputs(batch=4)
    with torch.no_grad():
        assert model(image, saliency, output="flatten").shape == (4, 810)
        fc50 = model(image, saliency, output="fc50")
        logits = model(image, saliency)
        post = model(image, saliency, output="posteriors")
    assert fc50.shape == (4, 50) and (fc50 >= 0).all()
    assert logits.shape == (4, 8)
    assert post.shape == (4, 8)
    assert torch.allclose(post.sum(dim=1), torch.ones(4), atol=1e-6)
    assert torch.allclose(post, torch.softmax(logits, dim=1))
    assert torch.allclose(model.fc2(fc50), logits, atol=1e-6)
    with pytest.raises(ValueError, match="output"):
        model(image, saliency, output="embeddings")
    with pytest.raises(ValueError, match="shape"):
        model(torch.rand(4, 3, 48, 48), saliency)


def test_dropout_only_in_training(model):
    image, saliency = inputs(batch=2)
    with torch.no_grad():
        a = model(image, saliency, output="flatten")
        b = model(image, saliency, output="flatten")
        assert torch.equal(a, b)
        model.train()
        torch.manual_seed(5)
        c = model(image, saliency, output="flatten")
    zeroed = (c == 0).float().mean().item()
    assert 0.5 < zeroed  # relu zeros plus about half of the rest dropped


def test_upstream_8_class_checkpoint_round_trip(tmp_path):
    src = random_upstream_state(8, seed=7)
    path = tmp_path / "saliency_8.pt"
    torch.save(src, path)
    torch.manual_seed(1)
    a = SaliencyGuidedSTN().eval()
    info = load_stn_checkpoint(a, path)
    assert info["file_classes"] == 8 and not info["head_replaced"] and info["sha256"]
    for k, v in a.state_dict().items():
        assert torch.equal(v, src[k]), k
    # save ours, reload into a differently initialised model wrapped as {"state_dict": ...}
    path2 = tmp_path / "ours.pt"
    torch.save({"state_dict": a.state_dict(), "epoch": 3}, path2)
    torch.manual_seed(2)
    b = SaliencyGuidedSTN().eval()
    info2 = load_stn_checkpoint(b, path2)
    assert info2["extra_keys"] == ["epoch"]
    image, saliency = inputs()
    with torch.no_grad():
        for mode in stn.OUTPUT_MODES:
            assert torch.equal(a(image, saliency, output=mode), b(image, saliency, output=mode)), mode
    # {"model": ...} wrapper and a DataParallel "module." prefix also load
    load_stn_checkpoint(SaliencyGuidedSTN(), {"model": {f"module.{k}": v for k, v in src.items()}})


def test_3_class_sentiment_checkpoint_gets_fresh_8_way_head(tmp_path):
    src = random_upstream_state(3, seed=11)
    del src["norm.num_batches_tracked"]  # as in files from old torch: tolerated
    path = tmp_path / "affectnet_sentiment.pt"
    torch.save(src, path)
    torch.manual_seed(4)
    m = SaliencyGuidedSTN(n_classes=8)
    info = load_stn_checkpoint(m, path, n_classes=8)
    assert info["file_classes"] == 3 and info["head_replaced"] and info["n_classes"] == 8
    assert m.fc2.weight.shape == (8, 50) and m.fc2.bias.shape == (8,)
    for k, v in m.state_dict().items():
        if k.startswith("fc2.") or k.endswith("num_batches_tracked"):
            continue
        assert torch.equal(v, src[k]), k
    assert sum(p.numel() for p in m.parameters()) == 66_928
    image, saliency = inputs()
    with torch.no_grad():
        assert m.eval()(image, saliency, output="posteriors").shape == (3, 8)
    # a 7-class emotion checkpoint kept as 7 classes loads its own head
    seven = random_upstream_state(7, seed=12)
    m7 = SaliencyGuidedSTN(n_classes=8)
    info7 = load_stn_checkpoint(m7, seven, n_classes=7)
    assert not info7["head_replaced"] and torch.equal(m7.fc2.weight, seven["fc2.weight"])


def test_wrong_architecture_raises_weights_error_naming_keys(tmp_path, model):
    bad = random_upstream_state(8)
    del bad["localization.0.weight"]  # e.g. the Simple-CNN baseline has no localization net
    bad["extra.weight"] = torch.zeros(3)
    bad["fc1.weight"] = torch.zeros(50, 640)
    path = tmp_path / "other_arch.pt"
    torch.save(bad, path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError) as err:
        load_stn_checkpoint(model, path)
    msg = str(err.value)
    assert str(path) in msg
    assert "localization.0.weight" in msg and "extra.weight" in msg and "fc1.weight" in msg
    assert err.value.hint and isinstance(err.value, EmokitError)
    for k, v in model.state_dict().items():  # untouched on failure
        assert torch.equal(v, before[k])
    with pytest.raises(WeightsError, match="fc2"):
        load_stn_checkpoint(model, {k: v for k, v in random_upstream_state(8).items() if k != "fc2.bias"})


def test_truncated_or_missing_file_raises_weights_error(tmp_path, model):
    good = tmp_path / "good.pt"
    torch.save(random_upstream_state(8), good)
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(good.read_bytes()[:500])
    with pytest.raises(WeightsError, match="truncated") as err:
        load_stn_checkpoint(model, trunc)
    assert str(trunc) in str(err.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError) as err:
        load_stn_checkpoint(model, garbage)
    assert str(garbage) in str(err.value)
    with pytest.raises(WeightsError, match="missing.pt"):
        load_stn_checkpoint(model, tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_stn_checkpoint(model, {"a": 1})
