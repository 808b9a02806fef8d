"""The attention bi-LSTM aggregator (paper 3.3.1, 4.2, Appendix B)."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    from emokit_plugins.face import bilstm
except ImportError:  # the face package is not installed yet: load the file directly
    _path = Path(__file__).resolve().parents[1] / "plugins" / "face" / "bilstm.py"
    _spec = importlib.util.spec_from_file_location("emokit_face_bilstm", _path)
    bilstm = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(bilstm)

AttentionBiLSTM = bilstm.AttentionBiLSTM
BiLSTMAggregator = bilstm.BiLSTMAggregator


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is as fast and does not thrash when the CPUs are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("layers", [1, 2])
def test_padding_does_not_change_output_or_attention(layers):
    torch.manual_seed(0)
    net = AttentionBiLSTM(7, 8, hidden=25, layers=layers).eval()
    short = torch.randn(1, 6, 7)
    long = torch.randn(1, 15, 7)
    with torch.no_grad():
        alone_lp, alone_w = net(short, torch.tensor([6]))
        batch = torch.zeros(2, 15, 7)
        batch[0, :6] = short[0]
        batch[0, 6:] = 123.0  # garbage in the padding must not matter
        batch[1] = long[0]
        lp, w = net(batch, torch.tensor([6, 15]))
    assert torch.allclose(lp[0], alone_lp[0], atol=1e-5)
    assert torch.allclose(w[0, :6], alone_w[0], atol=1e-5)
    assert torch.all(w[0, 6:] == 0)
    assert torch.allclose(w.sum(1), torch.ones(2), atol=1e-5)
    assert torch.allclose(lp.exp().sum(1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("hidden", [25, 300])
def test_shapes(layers, hidden):
    net = AttentionBiLSTM(50, 8, hidden=hidden, layers=layers)
    assert net.lstm.num_layers == layers and net.lstm.hidden_size == hidden and net.lstm.bidirectional
    linears = [m for m in net.attention.scorer if isinstance(m, torch.nn.Linear)]
    assert len(linears) == layers  # as many attention layers as bi-LSTM layers
    assert net.classifier.in_features == 2 * hidden
    lp, w = net(torch.randn(3, 11, 50), torch.tensor([11, 4, 9]))
    assert lp.shape == (3, 8) and w.shape == (3, 11)
    lp.sum().backward()  # trainable end to end


def test_rejects_three_layers():
    with pytest.raises(ValueError):
        AttentionBiLSTM(4, 2, layers=3)


def _toy(n, rng, dim=6, n_classes=3):
    """Class c is marked by feature c being high in 2-4 random frames of a noisy sequence."""
    X, y = [], []
    for i in range(n):
        c = i % n_classes
        length = int(rng.integers(5, 41))
        seq = rng.normal(0, 0.5, (length, dim)).astype(np.float32)
        marked = rng.choice(length, size=min(length, int(rng.integers(2, 5))), replace=False)
        seq[marked, c] += 3.0
        X.append(seq)
        y.append(["angry", "calm", "happy"][c])
    return X, np.array(y)


def test_aggregator_learns_toy_task():
    rng = np.random.default_rng(0)
    X, y = _toy(240, rng)
    groups = rng.permutation(np.arange(240) % 12)  # 12 "actors", each with every class
    X_test, y_test = _toy(90, rng)
    model = BiLSTMAggregator(hidden=25, max_epochs=40, patience=30, device="cpu", random_state=0)
    model.fit(X, y, groups)
    assert list(model.classes_) == ["angry", "calm", "happy"]
    proba = model.predict_proba(X_test)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (model.predict(X_test) == y_test).mean() > 0.75  # chance is 1/3
    assert model.history_ and model.best_validation_ > 0.6
    weights = model.attention(X_test)
    assert [len(w) for w in weights] == [len(x) for x in X_test]
    assert all(abs(w.sum() - 1) < 1e-5 for w in weights)


def test_class_weights_are_balanced():
    rng = np.random.default_rng(1)
    X = [rng.normal(size=(int(rng.integers(5, 10)), 3)).astype(np.float32) for _ in range(40)]
    y = np.array([0] * 30 + [1] * 10)
    model = BiLSTMAggregator(hidden=25, max_epochs=1, device="cpu").fit(X, y)
    assert np.allclose(model.class_weights_.numpy(), [40 / 60, 40 / 20])


def test_pickle_round_trip_gives_identical_posteriors():
    rng = np.random.default_rng(2)
    X, y = _toy(60, rng)
    model = BiLSTMAggregator(layers=2, hidden=25, max_epochs=2, device="cpu").fit(X, y)
    before = model.predict_proba(X)
    clone = pickle.loads(pickle.dumps(model))
    assert "_net" not in clone.__dict__
    np.testing.assert_array_equal(clone.predict_proba(X), before)
    for a, b in zip(clone.attention(X[:5]), model.attention(X[:5])):
        np.testing.assert_array_equal(a, b)


def test_long_sequence_is_not_truncated():
    rng = np.random.default_rng(3)
    X = [rng.normal(size=(n, 4)).astype(np.float32) for n in (5, 12, 20, 30)]
    model = BiLSTMAggregator(hidden=25, max_epochs=1, val_fraction=0, device="cpu").fit(X, [0, 1, 0, 1])
    long = rng.normal(size=(500, 4)).astype(np.float32)
    weights = model.attention([long, X[0]])
    assert len(weights[0]) == 500 and abs(weights[0].sum() - 1) < 1e-5
    # the last frame still matters: changing it changes the posterior
    changed = long.copy()
    changed[-1] += 10
    assert not np.allclose(model.predict_proba([long]), model.predict_proba([changed]))
    # batched with a short clip gives the same posterior as alone
    np.testing.assert_allclose(model.predict_proba([long, X[0]])[0], model.predict_proba([long])[0], atol=1e-5)
