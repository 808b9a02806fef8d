"""Each hyper-parameter declared once: the estimators' ``__init__`` holds every training setting and
its default, the pipelines inherit them, nested ones in scikit-learn's ``component__param`` form."""

import inspect
import json
import subprocess
import sys

import pytest
from sklearn.base import clone

from emokit_core.errors import EmokitError
from emokit_core.estimators import FrameClipModel
from emokit_core.plugins import PluginHost
from emokit_core.training import LOOP_SETTINGS
from emokit_plugins.face.bilstm import BiLSTMAggregator
from emokit_plugins.face.recognizer import STNFrameClassifier
from emokit_plugins.speech.finetune import AlexNetFineTuner, Cnn14FineTuner

NETWORKS = (Cnn14FineTuner, AlexNetFineTuner, STNFrameClassifier, BiLSTMAggregator)


@pytest.fixture(scope="module")
def host():
    return PluginHost()


def _init_defaults(cls):
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()}


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda c: c.__name__)
def test_every_training_setting_is_a_parameter(cls):
    params = cls().get_params()
    assert set(LOOP_SETTINGS) | set(cls.budget_settings) <= set(params)
    cls().check_settings()


@pytest.mark.parametrize("name, cls", [("speech.panns_ft", Cnn14FineTuner), ("speech.alexnet_ft", AlexNetFineTuner)])
def test_speech_fine_tuning_inherits_the_estimators_defaults(host, name, cls):
    spec = host.pipeline(name)
    inherited = [k for k, p in spec.params.items() if p.inherited]
    assert {"lr", "batch_size", "patience", "schedule", "sampling"} <= set(inherited)
    own = _init_defaults(cls)
    assert {k: spec.defaults[k] for k in inherited} == {k: own[k] for k in inherited}


@pytest.mark.parametrize("name", ["face.stn_vote", "face.stn_bilstm"])
def test_face_pipelines_inherit_their_components_defaults(host, name):
    spec = host.pipeline(name)
    components = {"frame_classifier": _init_defaults(STNFrameClassifier), "aggregator": _init_defaults(BiLSTMAggregator),
                  None: _init_defaults(FrameClipModel)}
    # the paper's bi-LSTM is the pipeline's own choice, written once in its build
    chosen = {"aggregator__layers": 2, "aggregator__hidden": 300}
    for key, param in spec.params.items():
        if not param.inherited:
            continue
        component, _, leaf = key.rpartition("__")
        expected = chosen.get(key, components[component or None][leaf])
        assert spec.defaults[key] == expected, key


def test_a_nested_override_reaches_the_stn(host):
    from emokit_cli.run import parse_params

    overrides = parse_params(["face.stn_vote.frame_classifier__lr=0.01", "max_frames_per_clip=4"], ["face.stn_vote"])
    assert overrides == {"face.stn_vote": {"frame_classifier__lr": "0.01", "max_frames_per_clip": "4"}}
    spec = host.pipeline("face.stn_vote")
    _, values = spec.resolve("quick", overrides["face.stn_vote"])
    assert values["frame_classifier__lr"] == 0.01 and values["frame_classifier__max_epochs"] == 10  # quick's
    model = clone(spec.create(values).model)  # as each fold fits it
    assert model.frame_classifier.lr == 0.01 and model.frame_classifier.max_epochs == 10
    assert model.max_frames_per_clip == 4
    assert clone(spec.create(spec.resolve("quick")[1]).model).frame_classifier.lr == 1e-3


@pytest.mark.parametrize("old, new", [("stn_lr", "frame_classifier__lr"), ("lstm_max_epochs", "aggregator__max_epochs"),
                                      ("frames_per_clip", "max_frames_per_clip"), ("hidden", "aggregator__hidden")])
def test_an_old_name_is_refused_with_the_new_one(host, old, new):
    with pytest.raises(EmokitError) as info:
        host.pipeline("face.stn_bilstm").resolve(None, {old: "1"})
    assert info.value.message == f"pipeline face.stn_bilstm has no parameter {old!r}"
    assert info.value.hint == f"did you mean {new!r}?"


def test_the_pipeline_list_imports_no_estimator():
    code = ("import sys, emokit_cli.app as a\n"
            "try:\n    a.main(['pipelines', '--json'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'emokit_plugins.speech.finetune') if m in sys.modules),"
            " file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == "[]"
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["speech.panns_ft"]["params"]["lr"] == {"help": "learning rate (the peak of a one_cycle schedule)",
                                                        "inherited": True}
    assert rows["speech.panns_ft"]["params"]["width"]["default"] == 1.0


def test_naming_a_pipeline_shows_every_default():
    from .cli import emokit

    rows = json.loads(emokit("pipelines", "face.stn_bilstm", "--json").check().stdout)
    params = rows[0]["params"]
    assert params["aggregator__hidden"] == {"help": "units per LSTM direction (25-300)", "inherited": True,
                                            "default": 300}
    assert params["frame_classifier__lr"]["default"] == 1e-3 and params["input"]["default"] == "flatten"


def test_the_plugin_kit_accepts_every_built_in_declaration(host):
    from emokit_core.testing import check_pipeline

    for name in host.pipelines:
        check_pipeline(name, host=host)
