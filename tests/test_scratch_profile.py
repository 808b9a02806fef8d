"""The scratch profile: its parameters, the paper profile kept exact, and which profile a run picks."""

import pytest

from emokit_core.corpora import read_ravdess
from emokit_core.plugins import PluginHost
from emokit_core.registry import Registry
from emokit_core.progress import Reporter
from emokit_core.runner import Runner

TRAINED = ("speech.panns_ft", "speech.alexnet_ft", "face.stn_vote", "face.stn_bilstm")


@pytest.fixture(scope="module")
def host():
    return PluginHost()


def _paper(host, name):
    return host.pipeline(name).resolve("paper")[1]


def test_paper_profiles_are_the_papers_recipe(host):
    cnn = _paper(host, "speech.panns_ft")
    assert {k: cnn[k] for k in ("width", "lr", "optimizer", "weight_decay", "batch_size", "max_iterations",
                                "max_epochs", "schedule", "label_smoothing", "mixup_alpha", "sampling",
                                "crop_seconds", "shift_seconds", "gain_db", "time_stripes", "freq_stripes")} == {
        "width": 1.0, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "batch_size": 24,
        "max_iterations": 30000, "max_epochs": 0, "schedule": "constant", "label_smoothing": 0.0,
        "mixup_alpha": 0.0, "sampling": "random", "crop_seconds": 0.0, "shift_seconds": 0.0, "gain_db": 0.0,
        "time_stripes": 0, "freq_stripes": 0}
    assert cnn["patience"] > 0 and cnn["val_fraction"] > 0  # early stopping on validation actors
    alex = _paper(host, "speech.alexnet_ft")
    assert {k: alex[k] for k in ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "max_epochs",
                                 "schedule", "label_smoothing", "shift_pixels", "time_stripes")} == {
        "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 24, "max_epochs": 500,
        "schedule": "constant", "label_smoothing": 0.0, "shift_pixels": 0, "time_stripes": 0}
    for name in ("face.stn_vote", "face.stn_bilstm"):
        stn = _paper(host, name)
        assert {k.removeprefix("frame_classifier__"): v for k, v in stn.items()
                if k.startswith("frame_classifier__")} == {
            "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 128, "max_epochs": 500,
            "patience": 30, "schedule": "constant", "label_smoothing": 0.0, "mixup_alpha": 0.0, "sampling": "random",
            "rotation": 0.0, "shift": 0.0, "brightness": 0.0}
        assert stn["max_frames_per_clip"] == 0 and stn["val_fraction"] > 0
    lstm = _paper(host, "face.stn_bilstm")
    assert {k: v for k, v in lstm.items() if k.startswith("aggregator__")} == {  # the paper's best bi-LSTM
        "aggregator__layers": 2, "aggregator__hidden": 300, "aggregator__batch_size": 64,
        "aggregator__max_epochs": 500, "aggregator__patience": 30}


def test_paper_profile_builds_the_papers_estimator(host):
    """The estimator the paper profile builds trains as before: Adam, NLL, random batches."""
    import torch

    spec = host.pipeline("speech.panns_ft")
    model = spec.create(spec.resolve("paper")[1]).model
    assert model.make_augmentation() is None and model.make_schedule(None, 10) is None
    net = model.build_network(8, pretrained=False)
    assert net.spec_augment is None
    optimizer = model.make_optimizer([torch.nn.Parameter(torch.zeros(1))])
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["weight_decay"] == 0
    assert model.step_budget(1000) == 30000


def test_scratch_profile_is_the_issues_recipe(host):
    values = host.pipeline("speech.panns_ft").resolve("scratch")[1]
    assert {k: values[k] for k in ("crop_seconds", "shift_seconds", "gain_db", "time_stripes", "time_stripe_frames",
                                   "freq_stripes", "freq_stripe_bins", "label_smoothing", "optimizer", "weight_decay",
                                   "schedule", "lr", "batch_size", "max_epochs", "patience", "val_fraction",
                                   "width")} == {
        "crop_seconds": 5.0, "shift_seconds": 0.5, "gain_db": 3.0, "time_stripes": 2, "time_stripe_frames": 40,
        "freq_stripes": 2, "freq_stripe_bins": 8, "label_smoothing": 0.1, "optimizer": "adamw", "weight_decay": 1e-2,
        "schedule": "one_cycle", "lr": 1e-3, "batch_size": 32, "max_epochs": 80, "patience": 0, "val_fraction": 0.0,
        "width": 0.25}
    model = host.pipeline("speech.panns_ft").create(values).model
    assert [type(m).__name__ for m in model.make_augmentation()] == ["RandomShift", "RandomGain"]
    assert model.make_augmentation()[0].max_shift == 8000
    assert type(model.build_network(8, pretrained=False).spec_augment).__name__ == "SpecAugment"
    assert model.step_budget(1152) == 80 * 36  # RAVDESS: 1152 training clips a fold, batch 32
    for name in TRAINED:
        assert "scratch" in host.pipeline(name).profiles


@pytest.mark.parametrize("name", TRAINED)
def test_profile_choice(host, name):
    spec = host.pipeline(name)
    gpu, cpu = (lambda device: device != "cpu"), (lambda device: False)
    assert spec.choose_profile(None, {}, on_gpu=gpu)[0] == "scratch"
    chosen, why = spec.choose_profile(None, {}, on_gpu=cpu)
    # the face pipelines start from the STN the face plugin ships (tests/test_transfer.py)
    start = "starts from weights=stn-fer2013" if name.startswith("face.") else "no pretrained weights"
    assert chosen == "quick" and why.startswith(f"{name}: {start}") and "and no GPU, so profile quick" in why
    assert spec.choose_profile(None, {"device": "cpu"}, on_gpu=gpu)[0] == "quick"  # a GPU it does not use
    chosen, why = spec.choose_profile(None, {"weights": "cnn14-16k"}, on_gpu=cpu)
    assert chosen == "paper" and "pretrained weights given" in why
    assert spec.choose_profile(None, {"weights": "none"}, on_gpu=gpu)[0] == "scratch"
    for explicit in ("paper", "quick", "scratch"):  # an explicit profile always wins, and is not announced
        assert spec.choose_profile(explicit, {"weights": "x"}, on_gpu=gpu) == (explicit, None)
        assert spec.choose_profile(explicit, {}, on_gpu=cpu) == (explicit, None)


def test_pipelines_without_scratch_keep_their_default(host):
    for name in ("speech.mfcc_svm", "speech.panns_svc", "face.pixels_vote", "fuse.svm_linear"):
        assert host.pipeline(name).choose_profile(None, {}, on_gpu=lambda d: True) == ("quick", None)


class _Recorder(Reporter):
    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)

    def warn(self, message):
        self.messages.append(message)


def test_run_announces_and_records_the_chosen_profile(tmp_path, tiny_demo, feature_cache, monkeypatch):
    corpus = read_ravdess(tiny_demo, folds="grouped")
    reporter = _Recorder()
    reg = Registry(tmp_path / "r.db")
    runner = Runner(PluginHost(), reg, feature_cache, reporter, workers=1)
    monkeypatch.setattr(Runner, "trains_on_gpu", staticmethod(lambda device: False))
    small = {"width": "0.0625", "max_epochs": "1", "batch_size": "8", "crop_seconds": "1.0"}
    outcome = runner.run(["speech.panns_ft"], corpus, overrides={"speech.panns_ft": small})
    run = reg.get_run(outcome.runs[0].run_id)
    assert run.status == "finished" and run.profile == "quick"
    assert any(m.startswith("speech.panns_ft: no pretrained weights and no GPU, so profile quick")
               for m in reporter.messages)
    assert any(m.startswith("speech.panns_ft with profile quick from random weights is known to learn less than "
                            "speech.mfcc_svm") for m in reporter.messages)
    # Every augmentation parameter is recorded, so runs that differ only there are told apart.
    for key in ("shift_seconds", "gain_db", "time_stripes", "time_stripe_frames", "freq_stripes", "freq_stripe_bins",
                "mixup_alpha", "label_smoothing", "schedule", "optimizer"):
        assert key in run.params
    assert run.params["gain_db"] == 3.0 and run.params["width"] == 0.0625  # quick's augmentation, our width
    other = runner.run(["speech.panns_ft"], corpus, overrides={"speech.panns_ft": {**small, "gain_db": "0"}})
    second = reg.get_run(other.runs[0].run_id)
    assert second.version != run.version and second.params["gain_db"] == 0.0
