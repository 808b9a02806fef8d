"""The plugin host: entry points, failures isolated, names unique, parameters and profiles.

Each hook's documentation and its own test are in test_hookspecs.py."""

import json
import os
import subprocess
import sys
import textwrap
import types

import pytest
from sklearn.base import BaseEstimator

from emokit_core import hookspecs
from emokit_core.errors import EmokitError, PluginError, UnknownNameError
from emokit_core.plugins import PluginHost, module_source
from emokit_core.specs import Param, PipelineSpec, Recipe


def make_plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookspecs.hookimpl(fn))
    return module


def pipeline(name, modality="speech"):
    return PipelineSpec(name=name, modality=modality, summary="test", build=lambda: None)


def host_of(*modules):
    return PluginHost([module_source(m, distribution=f"dist-{m.__name__}", version="9.9") for m in modules])


def test_builtin_plugins_load_through_entry_points():
    host = PluginHost()
    names = {p.name: p for p in host.plugins}
    assert {"baselines", "corpora", "fusion"} <= set(names)
    assert all(names[n].distribution == "emokit" and not names[n].error for n in ("baselines", "corpora", "fusion"))
    assert {"speech.zeror", "face.zeror", "speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear", "fuse.svm_rbf",
            "fuse.logreg", "fuse.knn"} <= set(host.pipelines)
    assert {"ravdess", "manifest", "demo"} <= set(host.corpora)


def test_broken_plugin_is_skipped_others_load():
    good = make_plugin("good", register_pipelines=lambda register: register(pipeline("speech.good")))

    def explode():
        raise ImportError("No module named 'tensorflow'")

    from emokit_core.plugins import PluginSource

    broken = PluginSource("broken", "broken_mod", "emokit-broken", "1.0", explode)
    host = PluginHost([broken, module_source(good)])
    assert "speech.good" in host.pipelines
    assert host.plugins[0].error.startswith("ImportError: No module named 'tensorflow'")
    assert any("emokit-broken" in p and "tensorflow" in p for p in host.problems())


def test_a_hook_that_raises_registers_nothing():
    def register_pipelines(register):
        register(pipeline("speech.half"))
        raise RuntimeError("boom")

    host = host_of(make_plugin("bad", register_pipelines=register_pipelines))
    assert "speech.half" not in host.pipelines
    assert "register_pipelines failed: RuntimeError: boom" in host.plugins[0].error


def test_misspelt_hook_is_caught():
    module = types.ModuleType("typo")
    module.register_pipeline = hookspecs.hookimpl(lambda register: None)  # missing "s"
    host = host_of(module)
    assert "register_pipeline" in host.plugins[0].error


def test_only_hookimpl_marked_functions_are_called():
    called = []
    module = types.ModuleType("unmarked")
    module.register_pipelines = lambda register: called.append("unmarked")  # no @hookimpl
    module.register_corpora = hookspecs.hookimpl(lambda register: called.append("marked"))
    host = host_of(module)
    assert called == ["marked"] and not host.plugins[0].error
    assert host.plugins[0].unmarked == ["register_pipelines"]
    assert any("defines register_pipelines without @hookimpl, so emokit does not call it" in p
               for p in host.problems())


def test_plugins_switched_off_by_name_without_uninstalling():
    one = make_plugin("one", register_pipelines=lambda register: register(pipeline("speech.one")))
    two = make_plugin("two", register_pipelines=lambda register: register(pipeline("speech.two")))
    sources = [module_source(one), module_source(two)]
    host = PluginHost(sources, environ={"EMOKIT_PLUGINS_DISABLE": " one ,other"})
    assert set(host.pipelines) == {"speech.two"}
    assert [(p.name, p.disabled) for p in host.plugins] == [("one", "listed in EMOKIT_PLUGINS_DISABLE"), ("two", None)]
    host = PluginHost(sources, environ={"EMOKIT_PLUGINS_ALLOW": "one"})
    assert set(host.pipelines) == {"speech.one"} and host.plugins[1].disabled == "not listed in EMOKIT_PLUGINS_ALLOW"
    assert host.problems() == []  # switched off on purpose is not a problem


def test_emokit_plugins_shows_what_was_disabled_and_why(monkeypatch):
    from emokit_core import plugins

    from .cli import emokit

    monkeypatch.setattr(plugins, "get_host", lambda: PluginHost(environ={"EMOKIT_PLUGINS_DISABLE": "face"}))
    listed = json.loads(emokit("plugins", "--json").check().stdout)
    by_name = {p["name"]: p for p in listed["plugins"]}
    assert by_name["face"]["disabled"] == "listed in EMOKIT_PLUGINS_DISABLE" and by_name["speech"]["disabled"] is None
    table = emokit("plugins").check().stdout
    assert "disabled: listed in" in table


def test_wrong_api_version_is_skipped_with_a_message():
    module = make_plugin("future", register_pipelines=lambda register: register(pipeline("speech.future")))
    module.EMOKIT_PLUGIN_API = 2
    host = host_of(module)
    assert "speech.future" not in host.pipelines
    assert "needs plugin API 2" in host.plugins[0].error


def test_duplicate_name_is_an_error_naming_both():
    a = make_plugin("a", register_pipelines=lambda register: register(pipeline("speech.same")))
    b = make_plugin("b", register_pipelines=lambda register: register(pipeline("speech.same")))
    other = make_plugin("c", register_pipelines=lambda register: register(pipeline("speech.other")))
    host = host_of(a, b, other)
    with pytest.raises(PluginError) as info:
        host.pipeline("speech.same")
    assert "dist-a" in str(info.value) and "dist-b" in str(info.value)
    assert host.pipeline("speech.other")  # the rest is unaffected
    assert any("speech.same" in p for p in host.problems())


def test_wrong_spec_type_is_reported():
    host = host_of(make_plugin("w", register_pipelines=lambda register: register({"name": "speech.dict"})))
    assert "expected PipelineSpec" in host.plugins[0].error


def test_unknown_pipeline_suggests_closest():
    with pytest.raises(UnknownNameError) as info:
        PluginHost().pipeline("speech.mfc_svm")
    assert info.value.hint == "did you mean 'speech.mfcc_svm'?"


def test_params_and_profiles_resolve():
    spec = PipelineSpec("speech.p", "speech", "t", build=lambda **kw: kw,
                        params={"C": Param(1.0), "layers": Param(2), "vad": Param("none", choices=("none", "silero"))},
                        profiles={"quick": {"layers": 1}, "paper": {"C": 0.001}})
    assert spec.resolve(None) == ("quick", {"C": 1.0, "layers": 1, "vad": "none"})
    assert spec.resolve("paper", {"layers": "3"}) == ("paper", {"C": 0.001, "layers": 3, "vad": "none"})
    assert spec.config_hash(spec.resolve("paper")[1]) != spec.config_hash(spec.resolve("quick")[1])
    with pytest.raises(Exception, match="did you mean 'layers'"):
        spec.resolve(None, {"layer": 1})
    with pytest.raises(Exception, match="not one of"):
        spec.resolve(None, {"vad": "ina2"})
    with pytest.raises(ValueError, match="undeclared"):
        PipelineSpec("speech.q", "speech", "t", build=lambda: None, profiles={"quick": {"nope": 1}})


class _Toy(BaseEstimator):
    def __init__(self, width=1.0, alpha=0.5, inner=None):
        self.width = width
        self.alpha = alpha
        self.inner = inner


def test_a_param_without_a_default_inherits_the_estimators():
    built = []

    def build(width, **model_params):
        built.append(model_params)
        return Recipe(None, _Toy(width=width, inner=_Toy(alpha=0.25)).set_params(**model_params))

    spec = PipelineSpec("speech.toy", "speech", "t", build,
                        params={"width": Param(2.0, "w"), "alpha": Param(help="a"), "inner__alpha": Param(help="b")},
                        profiles={"quick": {"alpha": 0.75}, "paper": {}})
    assert spec.defaults == {"width": 2.0, "alpha": 0.5, "inner__alpha": 0.25} and built == [{}]
    assert spec.resolve("paper") == ("paper", {"width": 2.0, "alpha": 0.5, "inner__alpha": 0.25})
    _, values = spec.resolve("quick", {"inner__alpha": "3"})  # coerced to the inherited default's type
    assert values == {"width": 2.0, "alpha": 0.75, "inner__alpha": 3.0}
    model = spec.create(values).model
    assert built[-1] == {"alpha": 0.75, "inner__alpha": 3.0}  # only what the profile and the user set
    assert (model.alpha, model.inner.alpha, model.width) == (0.75, 3.0, 2.0)
    spec.create(spec.resolve("paper")[1])
    assert built[-1] == {} and len(built) == 3  # the default build ran once, lazily
    wrong = PipelineSpec("speech.toy2", "speech", "t", build, params={"width": Param(2.0, "w"), "beta": Param(help="b")},
                         profiles={"quick": {}})
    with pytest.raises(ValueError, match=r"\['beta'\] are declared without a default, but its _Toy has no such"):
        wrong.resolve(None)


def test_a_renamed_param_is_refused_with_its_new_name():
    spec = PipelineSpec("speech.r", "speech", "t", lambda **kw: kw, params={"inner__lr": Param(1.0, "lr")},
                        profiles={"quick": {}}, renamed={"old_lr": "inner__lr"})
    with pytest.raises(EmokitError) as info:
        spec.resolve(None, {"old_lr": "1"})
    assert info.value.message == "pipeline speech.r has no parameter 'old_lr'"
    assert info.value.hint == "did you mean 'inner__lr'?"
    with pytest.raises(ValueError, match="renamed to undeclared"):
        PipelineSpec("speech.r2", "speech", "t", lambda: None, renamed={"a": "b"})


THIRD_PARTY = '''
"""A third-party emokit plugin: MFCC statistics -> logistic regression."""
from emokit_core.hookspecs import hookimpl
from emokit_core.specs import Param, PipelineSpec, Recipe

EMOKIT_PLUGIN_API = 1


def build(C):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from emokit_core.estimators import VectorClipModel
    from emokit_core.plugins import create

    return Recipe(extractor=create("extractor", "mfcc_stats", n_mfcc=13),
                  model=VectorClipModel(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))))


@hookimpl
def register_pipelines(register):
    register(PipelineSpec("speech.thirdparty_lr", "speech", "MFCC -> logistic regression (third party)", build,
                          {"C": Param(1.0)}, {"quick": {}, "paper": {}}))
'''


def test_third_party_plugin_installed_from_a_folder(tmp_path, tone_manifest):
    src = tmp_path / "src"
    (src / "emokit_thirdparty").mkdir(parents=True)
    (src / "emokit_thirdparty" / "__init__.py").write_text(THIRD_PARTY)
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "emokit-thirdparty"
        version = "0.3.1"
        [project.entry-points.emokit]
        thirdparty = "emokit_thirdparty"
        [tool.setuptools]
        packages = ["emokit_thirdparty"]
    '''))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    emokit = [sys.executable, "-m", "emokit_cli"]
    listed = json.loads(subprocess.run(emokit + ["plugins", "--json"], env=env, check=True,
                                       capture_output=True, text=True).stdout)
    mine = [p for p in listed["plugins"] if p["name"] == "thirdparty"][0]
    assert (mine["distribution"], mine["version"], mine["error"]) == ("emokit-thirdparty", "0.3.1", None)
    assert mine["registered"] == {"pipeline": ["speech.thirdparty_lr"]}
    result = subprocess.run(emokit + ["run", "speech.thirdparty_lr", "--data", str(tone_manifest),
                                      "--registry", str(tmp_path / "reg.db"), "--json", "--workers", "1"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["runs"][0]
    assert run["pipeline"] == "speech.thirdparty_lr" and len(run["fold_scores"]) == 3
    assert run["pooled"]["accuracy"] > 0.6  # tones of distinct pitch are easy
