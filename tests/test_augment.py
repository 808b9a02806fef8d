"""Batch augmentations (emokit_core.augment) and the training loop's recipe options."""

import numpy as np
import pytest
import torch
from torch import nn

from emokit_core.augment import (Mixup, RandomAffine, RandomBrightness, RandomGain, RandomShift, SpecAugment,
                                 child_seed)
from emokit_core.errors import EmokitError
from emokit_core.training import NetworkClassifier

WAVE = torch.randn(6, 4000, generator=torch.Generator().manual_seed(0))
LOGMEL = torch.randn(6, 1, 120, 64, generator=torch.Generator().manual_seed(1))
FRAMES = torch.rand(6, 2, 48, 48, generator=torch.Generator().manual_seed(2))

CASES = [
    (lambda seed: RandomShift(800, seed=seed), WAVE),
    (lambda seed: RandomGain(3.0, seed=seed), WAVE),
    (lambda seed: SpecAugment(2, 40, 2, 8, seed=seed), LOGMEL),
    (lambda seed: RandomAffine(10.0, 4.0, seed=seed), FRAMES),
    (lambda seed: RandomBrightness(0.2, seed=seed), FRAMES),
]
IDS = ["shift", "gain", "specaugment", "affine", "brightness"]


@pytest.mark.parametrize("make, x", CASES, ids=IDS)
def test_seeded_reproducible_and_seed_dependent(make, x):
    first, again, other = make(3), make(3), make(4)
    a1, a2 = first(x), first(x)
    assert torch.equal(a1, again(x)) and torch.equal(a2, again(x))  # same seed, same sequence of batches
    assert not torch.equal(a1, a2)  # a new draw for every batch
    assert not torch.equal(a1, other(x))
    assert not torch.equal(a1, x)


@pytest.mark.parametrize("make, x", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shapes_and_dtypes_are_kept(make, x, dtype):
    out = make(0)(x.to(dtype))
    assert out.shape == x.shape and out.dtype == dtype


@pytest.mark.parametrize("make, x", CASES, ids=IDS)
def test_identity_in_eval_mode(make, x):
    aug = make(0).eval()
    assert aug(x) is x


def test_specaugment_stripes_within_bounds():
    for seed in range(20):
        x = torch.ones(8, 1, 100, 64)
        out = SpecAugment(time_stripes=1, time_width=30, freq_stripes=0, seed=seed)(x)
        for row in out[:, 0]:
            zeroed = np.flatnonzero((row == 0).all(dim=1).numpy())
            assert (row[row != 0] == 1).all()
            if len(zeroed):  # one contiguous stripe of at most 30 frames, inside the clip
                assert len(zeroed) <= 30 and zeroed[-1] - zeroed[0] + 1 == len(zeroed)
                assert (row == 0).sum() == len(zeroed) * 64
        out = SpecAugment(time_stripes=0, freq_stripes=2, freq_width=8, seed=seed)(x)
        for row in out[:, 0]:
            bins = (row == 0).all(dim=0).numpy()
            assert bins.sum() <= 16 and ((row == 0).sum(dim=0) % 100 == 0).all()
    # Stripes wider than the axis are cut to it; zero stripes leave the input as it was.
    assert SpecAugment(1, 500, 0, 8)(torch.ones(2, 1, 20, 64)).shape == (2, 1, 20, 64)
    assert torch.equal(SpecAugment(0, 40, 0, 8)(LOGMEL), LOGMEL)


def test_specaugment_on_images_masks_columns_and_rows():
    out = SpecAugment(time_stripes=1, time_width=20, freq_stripes=0, time_axis=-1, freq_axis=-2,
                      seed=5)(torch.ones(4, 3, 32, 50))
    columns = (out == 0).all(dim=1).all(dim=1)  # [batch, width]
    assert ((out == 0).sum(dim=(1, 2)) % (3 * 32) == 0).all() and columns.sum(1).max() <= 20


def test_shift_moves_rows_and_fills_with_zeros():
    x = torch.arange(1, 101, dtype=torch.float32).repeat(5, 1)
    out = RandomShift(10, seed=0)(x)
    for row in out:
        nonzero = row[row != 0]
        start = int(nonzero[0]) - 1  # the first sample kept
        lead = int(np.flatnonzero(row.numpy())[0])  # zeros brought in at the start
        shift = lead - start
        assert abs(shift) <= 10
        assert torch.equal(nonzero, torch.arange(start + 1, start + 1 + len(nonzero), dtype=torch.float32))
        assert (row == 0).sum() == abs(shift)


def test_gain_is_within_its_decibels():
    out = RandomGain(3.0, seed=0)(WAVE)
    db = 20 * torch.log10(out[:, 0] / WAVE[:, 0])
    assert (db.abs() <= 3.0 + 1e-4).all() and db.std() > 0.1


def test_affine_is_shared_by_channels_and_identity_at_zero():
    same = FRAMES[:, :1].repeat(1, 2, 1, 1)
    out = RandomAffine(15.0, 5.0, seed=1)(same)
    assert torch.allclose(out[:, 0], out[:, 1])  # face and saliency stay aligned
    assert torch.allclose(RandomAffine(0.0, 0.0)(FRAMES), FRAMES, atol=1e-5)


def test_brightness_changes_the_face_only_and_stays_in_range():
    out = RandomBrightness(0.3, seed=0)(FRAMES)
    assert torch.equal(out[:, 1], FRAMES[:, 1]) and not torch.equal(out[:, 0], FRAMES[:, 0])
    assert out.min() >= 0 and out.max() <= 1


def test_mixup_mixes_inputs_and_targets_alike():
    x = torch.eye(6) * 10
    out_x, out_t = Mixup(0.4, seed=0)(x, torch.eye(6))
    assert torch.allclose(out_t.sum(1), torch.ones(6)) and torch.allclose(out_x, out_t * 10)
    assert not torch.equal(out_t, torch.eye(6))
    again_x, _ = Mixup(0.4, seed=0)(x, torch.eye(6))
    assert torch.equal(out_x, again_x)
    targets = torch.eye(6)
    same_x, same_t = Mixup(0.4).eval()(x, targets)
    assert same_x is x and same_t is targets


def test_child_seeds_differ():
    assert len({child_seed(0, i) for i in range(4)} | {child_seed(1, 0)}) == 5
    assert child_seed(7, 2) == child_seed(7, 2)


def test_cnn14_applies_its_spec_augment_hook_in_train_mode_only():
    from emokit_plugins.speech.cnn14 import Cnn14

    net = Cnn14(width=0.125)
    keys = list(net.state_dict())
    seen = []

    class Record(nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return x

    net.spec_augment = Record()
    assert list(net.state_dict()) == keys  # checkpoints are unaffected
    wave = torch.randn(2, 16000)
    net.eval()(wave)
    assert seen == []
    net.train()(wave)
    assert seen == [(2, 1, 101, 64)]


# -- the training loop ----------------------------------------------------------------------
class _Linear(NetworkClassifier):
    """Vectors whose column 0 is the clip's index and the rest its features; the
    augmentation records the indices it sees."""

    def __init__(self, batch_size=4, max_epochs=6, eval_every=0, patience=3, val_fraction=0.25, val_metric="accuracy",
                 device="cpu", random_state=0, optimizer="adam", betas=(0.9, 0.999), eps=1e-8, momentum=0.0,
                 weight_decay=0.0, schedule="constant", label_smoothing=0.0, mixup_alpha=0.0, sampling="random",
                 lr=1e-2):
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.eval_every = eval_every
        self.patience = patience
        self.val_fraction = val_fraction
        self.val_metric = val_metric
        self.device = device
        self.random_state = random_state
        self.optimizer = optimizer
        self.betas = betas
        self.eps = eps
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.label_smoothing = label_smoothing
        self.mixup_alpha = mixup_alpha
        self.sampling = sampling
        self.lr = lr

    def build_network(self, n_classes, pretrained):
        return nn.Sequential(nn.Linear(2, n_classes), nn.LogSoftmax(-1))

    def make_augmentation(self):
        self.seen_ = []
        owner = self

        class Record(nn.Module):
            def forward(self, x):
                assert self.training
                owner.seen_ += x[:, 0].long().tolist()
                return x

        return Record()

    def make_batch(self, items, device, rng):
        return torch.as_tensor(np.stack(items), dtype=torch.float32, device=device)

    def log_probs(self, net, batch):
        return net(batch[:, 1:])


class _Undeclared(NetworkClassifier):
    """The loop's settings as they were before: some class attributes, some left to defaults."""

    eval_every = 0

    def __init__(self, batch_size=4, max_epochs=2, patience=0, val_fraction=0.0, device="cpu", random_state=0,
                 lr=1e-2):
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state
        self.lr = lr


def test_a_network_missing_a_training_setting_is_refused_by_name():
    X, y, groups = _toy()
    with pytest.raises(TypeError) as info:
        _Undeclared().fit(X, y, groups=groups)
    message = str(info.value)
    assert message.startswith("_Undeclared does not declare the training settings ")
    for name in ("eval_every", "val_metric", "optimizer", "betas", "eps", "momentum", "weight_decay", "schedule",
                 "label_smoothing", "mixup_alpha", "sampling"):
        assert repr(name) in message
    assert "'lr'" not in message and "'batch_size'" not in message


def _toy(n=24):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    X = [np.array([i, 3.0 * (2 * y[i] - 1) + rng.normal(), rng.normal()]) for i in range(n)]
    groups = np.repeat(list("abcdef"), n // 6)
    return X, y, groups


def test_augmentation_never_sees_validation_or_predicted_clips():
    X, y, groups = _toy()
    model = _Linear().fit(X, y, groups=groups)
    seen = set(model.seen_)
    assert seen and len(model.history_) >= 1
    from emokit_core.training import validation_split

    train, val = validation_split(groups, len(X), 0.25, np.random.default_rng(0))
    assert seen <= set(train.tolist()) and not seen & set(val.tolist())
    before = len(model.seen_)
    model.predict_proba(X)
    assert len(model.seen_) == before


def test_scratch_recipe_options_train_the_whole_budget_and_keep_the_last_state():
    X, y, groups = _toy()
    model = _Linear(optimizer="adamw", weight_decay=1e-2, schedule="one_cycle", label_smoothing=0.1, mixup_alpha=0.4,
                    sampling="epochs", patience=0, val_fraction=0.0, max_epochs=5, lr=0.1).fit(X, y, groups=groups)
    assert model.n_steps_ == 5 * (24 // 4) and model.history_ == [] and np.isnan(model.best_validation_)
    assert (model.predict(X) == y).mean() > 0.8
    epochs = [model.seen_[k: k + 24] for k in range(0, len(model.seen_), 24)]
    assert all(sorted(e) == list(range(24)) for e in epochs)  # each epoch a shuffled pass
    assert epochs[0] != epochs[1]
    again = _Linear(optimizer="adamw", weight_decay=1e-2, schedule="one_cycle", label_smoothing=0.1, mixup_alpha=0.4,
                    sampling="epochs", patience=0, val_fraction=0.0, max_epochs=5, lr=0.1).fit(X, y, groups=groups)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_patience_zero_scores_validation_but_never_stops():
    X, y, groups = _toy()
    from emokit_core.training import validation_split

    model = _Linear(patience=0, max_epochs=4).fit(X, y, groups=groups)
    train, _ = validation_split(groups, len(X), 0.25, np.random.default_rng(0))
    steps = model.steps_per_epoch(len(train))
    assert model.n_steps_ == 4 * steps and [s for s, _ in model.history_] == [steps * k for k in range(1, 5)]
    assert model.best_validation_ == model.history_[-1][1]


def test_loss_is_the_paper_nll_without_smoothing_and_smoothed_otherwise():
    import torch.nn.functional as F

    log_probs = torch.log_softmax(torch.randn(5, 3), -1)
    targets = torch.tensor([0, 1, 2, 1, 0])
    plain, smooth = _Linear(), _Linear(label_smoothing=0.1)
    assert torch.equal(plain.loss(log_probs, targets), F.nll_loss(log_probs, targets))
    expected = -((0.9 * F.one_hot(targets, 3) + 0.1 / 3) * log_probs).sum(1).mean()
    assert torch.allclose(smooth.loss(log_probs, targets), expected, atol=1e-6)


def test_optimizers_and_schedule_are_chosen_by_name():
    params = [nn.Parameter(torch.zeros(2))]
    assert type(_Linear().make_optimizer(params)) is torch.optim.Adam
    adamw = _Linear(optimizer="adamw", weight_decay=0.01).make_optimizer(params)
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="adam, adamw or sgd"):
        _Linear(optimizer="lion").make_optimizer(params)
    assert _Linear().make_schedule(adamw, 10) is None
    schedule = _Linear(schedule="one_cycle", lr=1e-3).make_schedule(adamw, 100)
    lrs = []
    for _ in range(100):
        lrs.append(adamw.param_groups[0]["lr"])
        adamw.step()
        schedule.step()
    assert max(lrs) == pytest.approx(1e-3, rel=1e-3) and lrs[0] < 1e-4 and lrs[-1] < 1e-5


class _Interrupted(_Linear):
    """Stops (as a killed process would) when its training has drawn ``stop_after`` batches."""

    stop_after = 0

    def make_batch(self, items, device, rng):
        if rng is not None:
            self.drawn_ = getattr(self, "drawn_", 0) + 1
            if self.drawn_ == self.stop_after:
                raise KeyboardInterrupt
        return super().make_batch(items, device, rng)


@pytest.mark.parametrize("recipe", [
    {},  # the paper's loop: random batches, constant lr, early stopping
    {"sampling": "epochs", "schedule": "one_cycle", "optimizer": "adamw", "mixup_alpha": 0.4, "patience": 0},
])
def test_an_interrupted_fit_resumes_from_its_checkpoint_as_if_never_stopped(tmp_path, recipe):
    X, y, groups = _toy()
    whole = _Linear(**recipe).fit(X, y, groups=groups)
    checkpoint = tmp_path / "fit.ckpt"
    broken = _Interrupted(**recipe)
    broken.stop_after = 2 * broken.steps_per_epoch(16) + 2  # in the third epoch (16 clips of 4 actors train)
    with pytest.raises(KeyboardInterrupt):
        broken.fit(X, y, groups=groups, checkpoint=checkpoint)
    assert checkpoint.is_file()  # written at the epochs' validation checks
    resumed = _Interrupted(**recipe).fit(X, y, groups=groups, checkpoint=checkpoint)
    assert resumed.drawn_ == whole.n_steps_ - 2 * broken.steps_per_epoch(16)  # on from the second epoch's end
    assert resumed.history_ == whole.history_ and resumed.n_steps_ == whole.n_steps_
    assert all(torch.equal(resumed.state_[k], whole.state_[k]) for k in whole.state_)
    assert not checkpoint.exists()  # a finished fit leaves no checkpoint behind
    # another training's checkpoint is refused, not continued
    broken = _Interrupted(**recipe)
    broken.stop_after = 2 * broken.steps_per_epoch(16) + 2
    with pytest.raises(KeyboardInterrupt):
        broken.fit(X, y, groups=groups, checkpoint=checkpoint)
    with pytest.raises(EmokitError, match="checkpoint of another training"):
        _Linear(**{**recipe, "lr": 0.5}).fit(X, y, groups=groups, checkpoint=checkpoint)
