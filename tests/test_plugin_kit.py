"""The third-party plugin kit: emokit_core.testing's checks, the example plugin installed into a
fresh environment, plugin API versions, and bad plugins reported without harm to the rest."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from emokit_core import PLUGIN_API_VERSION, hookspecs, testing
from emokit_core.plugins import API_RELEASES, PluginHost, api_releases, module_source
from emokit_core.specs import CorpusSpec, Param, PipelineSpec
from emokit_core.testing import ContractError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "emokit-opensmile"


# -- the checks pass on emokit's own components ---------------------------------------------------
def test_checks_pass_on_the_builtin_components(tmp_path):
    from emokit_core.estimators import MaxVoting
    from emokit_core.registry import Registry
    from emokit_plugins.baselines import build_mfcc_svm, build_zeror
    from emokit_plugins.baselines.features import CentreSquarePixels, MfccStats
    from emokit_plugins.fusion import build_svm_linear

    registry = Registry(tmp_path / "r.db")
    assert {f.shape for f in testing.check_extractor(MfccStats())} == {(88,)}
    assert {f.shape[1:] for f in testing.check_extractor(CentreSquarePixels(size=8))} == {(64,)}
    assert testing.check_recognizer(build_mfcc_svm(20, 1.0, "scale").model, registry=registry).classes_.tolist() == [0, 1, 2]
    testing.check_recognizer(build_zeror().model)
    testing.check_aggregator(MaxVoting())
    testing.check_fuser(build_svm_linear(0.001), registry=registry)
    assert len(list(registry.artifacts.iter_hashes())) == 2  # the round trips went through the registry's store


# -- the checks catch what breaks the contract ------------------------------------------------------
class Centroid(ClassifierMixin, BaseEstimator):
    """A correct little recognizer; the broken ones below change one thing each."""

    def __init__(self, shrink=0.0, random_state=None):
        self.shrink = shrink
        self.random_state = random_state

    def fit(self, X, y):
        X = np.stack([np.ravel(x) for x in X])
        self.classes_ = np.unique(y)
        self.centres_ = np.stack([X[np.asarray(y) == c].mean(0) for c in self.classes_]) * (1 - self.shrink)
        return self

    def predict_proba(self, X):
        d = -((np.stack([np.ravel(x) for x in X])[:, None] - self.centres_[None]) ** 2).mean(-1) / 4  # soft
        p = np.exp(d - d.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


class ReturnsNone(Centroid):
    def fit(self, X, y):
        super().fit(X, y)


class TwoColumns(Centroid):
    def predict_proba(self, X):
        return super().predict_proba(X)[:, :2]


class NotNormalised(Centroid):
    def predict_proba(self, X):
        return super().predict_proba(X) * 2


class NoClasses(Centroid):
    def fit(self, X, y):
        super().fit(X, y)
        del self.classes_
        return self


class Unseeded(Centroid):
    def fit(self, X, y):
        super().fit(X, y)
        self.centres_ = self.centres_ + np.random.default_rng().normal(0, 1, self.centres_.shape)
        return self


class ChangesParams(Centroid):
    def fit(self, X, y):
        self.shrink = 0.5
        return super().fit(X, y)


class RenamesParam(Centroid):
    def __init__(self, shrink=0.0, random_state=None):
        self.shrink = shrink * 1.0 + 1
        self.random_state = random_state


class KeepsALambda(Centroid):
    def fit(self, X, y):
        self.scale_ = lambda v: v
        return super().fit(X, y)


class KeepsATorchModule(Centroid):
    def fit(self, X, y):
        import torch

        self.net_ = torch.nn.Linear(2, 2)
        return super().fit(X, y)


class OnlyPredicts(BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


class ForgetsState(Centroid):
    def __getstate__(self):
        state = super().__getstate__()
        state["centres_"] = state["centres_"] * 0
        return state


@pytest.mark.parametrize("broken, rule", [
    (OnlyPredicts(), "is not a Recognizer: it has no predict_proba"),
    (ReturnsNone(), "fit returned NoneType, not self"),
    (TwoColumns(), r"predict_proba returned shape \(12, 2\), expected \(12, 3\)"),
    (NotNormalised(), "rows are not probabilities"),
    (NoClasses(), "has no classes_ after fit"),
    (Unseeded(), "two fits with seed 0 gave different posteriors"),
    (ChangesParams(), "fit changed its parameters"),
    (RenamesParam(), "cannot be cloned|a clone has other parameters"),
    (KeepsALambda(), "cannot be pickled into the registry"),
    (KeepsATorchModule(), r"pickles live torch modules \(torch.nn.modules.linear.Linear\)"),
    (ForgetsState(), "loaded back from the artifact store predicts other posteriors"),
])
def test_check_recognizer_names_the_broken_rule(broken, rule):
    testing.check_recognizer(Centroid())  # the unbroken original passes
    with pytest.raises(ContractError, match=rule) as info:
        testing.check_recognizer(broken)
    assert type(broken).__name__ in str(info.value)


def test_the_checks_work_without_pytest():
    """The kit's checks are plain functions; only its fixtures need pytest."""
    code = ("import sys; sys.modules['pytest'] = None\n"
            "import emokit_core.testing as kit\n"
            "from emokit_core.estimators import VectorClipModel\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "fitted = kit.check_recognizer(VectorClipModel(LogisticRegression()))\n"
            "print(hasattr(kit, 'emokit_registry'), fitted.classes_.tolist())")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split(maxsplit=1) == ["False", "[0, 1, 2]\n"]


def test_a_model_defined_in_main_cannot_be_stored():
    main = sys.modules["__main__"]
    cls = type("InMain", (Centroid,), {"__module__": "__main__"})
    main.InMain = cls
    try:
        with pytest.raises(ContractError, match="needs __main__.InMain"):
            testing.check_recognizer(cls())
    finally:
        del main.InMain


class Voices(BaseEstimator):
    """A speech extractor: the share of energy in bands below 1 kHz (where the tones' pitch lies)."""

    modality = "speech"
    cache_version = "1"
    weights_sha256 = None

    def __init__(self, bands=4):
        self.bands = bands

    def extract_audio(self, audio, sample_rate, clip):
        spectrum = np.abs(np.fft.rfft(audio)) ** 2
        low = spectrum[: len(spectrum) * 1000 // (sample_rate // 2)]
        return np.array([b.sum() for b in np.array_split(low, self.bands)], dtype=np.float32) / low.sum()


class NoModality(Voices):
    modality = None


class Random(Voices):
    def extract_audio(self, audio, sample_rate, clip):
        return super().extract_audio(audio, sample_rate, clip) + np.random.default_rng().normal(size=self.bands)


class LengthDependent(Voices):
    def extract_audio(self, audio, sample_rate, clip):
        return np.abs(np.fft.rfft(audio))[: len(audio) // 100].astype(np.float32)


class NotANumber(Voices):
    def extract_audio(self, audio, sample_rate, clip):
        return np.full(self.bands, np.nan)


class HoldsAnObject(Voices):
    def __init__(self, bands=4, window=None):
        super().__init__(bands)
        self.window = window


class BatchDependent(Voices):
    batch_size = 4

    def prepare_audio(self, audio, sample_rate, clip):
        return audio

    def extract_batch(self, prepared):
        longest = max(len(p) for p in prepared)  # padding without a mask leaks batch mates in
        return [self.extract_audio(np.pad(p, (0, longest - len(p))), 16000, None) for p in prepared]


@pytest.mark.parametrize("broken, rule", [
    (NoModality(), "modality is None"),
    (Random(), "a clone gave other features for the same input"),
    (LengthDependent(), "inputs of different lengths gave features of shapes"),
    (NotANumber(), "features are empty or not finite"),
    (HoldsAnObject(window=object()), "its cache key holds an object address"),
    (BatchDependent(), "input 0 gave other features in a batch than alone"),
])
def test_check_extractor_names_the_broken_rule(broken, rule):
    testing.check_extractor(Voices())
    with pytest.raises(ContractError, match=rule):
        testing.check_extractor(broken)


def test_check_fuser_and_aggregator_catch_broken_ones():
    from emokit_core.estimators import MaxVoting
    from emokit_plugins.fusion.late import LateFusion

    class Sticky(MaxVoting):
        def fit(self, sequences, y=None):
            self.seen_ = len(sequences)

    with pytest.raises(ContractError, match="fit returned NoneType"):
        testing.check_aggregator(Sticky())
    with pytest.raises(ContractError, match="two fits with seed 0 gave different posteriors"):
        testing.check_fuser(LateFusion(Unseeded()))
    with pytest.raises(ContractError, match="is not a Fuser: it has no predict_proba"):
        testing.check_fuser(OnlyPredicts())
    with pytest.raises(ContractError, match="is not an Aggregator: it has no predict_proba"):
        testing.check_aggregator(OnlyPredicts())


def plugin_module(name, **attrs):
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, hookspecs.hookimpl(value) if key.startswith("register_") else value)
    return module


def build_centroid(bands=4):
    from emokit_core.specs import Recipe

    return Recipe(extractor=Voices(bands=bands), model=Centroid())


def test_check_plugin_and_check_pipeline(tmp_path, tone_manifest):
    from emokit_core.corpora import read_manifest
    from emokit_core.registry import Registry

    def register_pipelines(register):
        register(PipelineSpec("speech.kit_centroid", "speech", "bands -> centroid", build_centroid,
                              {"bands": Param(8, "frequency bands below 1 kHz")}, {"quick": {}}))

    good = plugin_module("emokit_kit_good", EMOKIT_PLUGIN_API=PLUGIN_API_VERSION, register_pipelines=register_pipelines)
    host = testing.check_plugin(good)
    assert "speech.kit_centroid" in host.pipelines and "speech.mfcc_svm" in host.pipelines
    registry = Registry(tmp_path / "r.db")
    run = testing.check_pipeline("speech.kit_centroid", read_manifest(tone_manifest), registry, host=host)
    assert len(run.fold_scores) == 3 and run.pooled["accuracy"] > 0.6  # tones of distinct pitch
    extra = plugin_module("emokit_kit_extra", EMOKIT_PLUGIN_API=1, register_pipelines=lambda register: register(
        PipelineSpec("speech.kit_extra", "speech", "t", build_centroid, {"C": Param(1.0, "c")}, {"quick": {}})))
    with pytest.raises(ContractError, match=r"build does not take the declared parameters \['C'\]"):
        testing.check_plugin(extra)
    undeclared = plugin_module("emokit_kit_undeclared", register_pipelines=register_pipelines)
    with pytest.raises(ContractError, match="declares EMOKIT_PLUGIN_API = None"):
        testing.check_plugin(undeclared)
    clash = plugin_module("emokit_kit_clash", EMOKIT_PLUGIN_API=1, register_pipelines=lambda register: register(
        PipelineSpec("speech.mfcc_svm", "speech", "again", build_centroid, profiles={"quick": {}})))
    with pytest.raises(ContractError, match="'speech.mfcc_svm'"):
        testing.check_plugin(clash)
    helpless = plugin_module("emokit_kit_helpless", EMOKIT_PLUGIN_API=1, register_pipelines=lambda register: register(
        PipelineSpec("speech.kit_helpless", "speech", "t", lambda bands: None, {"bands": Param(4)}, {"quick": {}})))
    with pytest.raises(ContractError, match="parameter bands has no help text"):
        testing.check_plugin(helpless)


def test_check_plugin_catches_a_heavy_import_at_module_level(tmp_path, monkeypatch):
    (tmp_path / "emokit_kit_heavy.py").write_text(textwrap.dedent("""
        import numpy  # a plugin module must import this inside its build functions
        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import ComponentSpec
        EMOKIT_PLUGIN_API = 1

        @hookimpl
        def register_components(register):
            register(ComponentSpec("aggregator", "kit_mean", lambda: None, "mean of the frames"))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ContractError, match="importing it imports numpy"):
        testing.check_plugin("emokit_kit_heavy")


def test_check_corpus(tiny_demo):
    from dataclasses import replace

    corpus = testing.check_corpus("ravdess", tiny_demo, folds="grouped")
    assert len(corpus.clips) == 50
    leaky = replace(corpus, folds=[["01", "02"], ["02", "03", "04", "05"]])  # actor 02 on both sides
    host = PluginHost([module_source(plugin_module("emokit_kit_corpus", register_corpora=lambda register: register(
        CorpusSpec("leaky", lambda path: leaky))))])
    with pytest.raises(ContractError, match="do not hold out each of the actors"):
        testing.check_corpus("leaky", tiny_demo, host=host)


# -- plugin API versions ------------------------------------------------------------------------
def test_api_release_table_covers_the_current_api():
    first, last = API_RELEASES[PLUGIN_API_VERSION]
    assert last is None  # the current API is still provided by the newest release
    assert api_releases(PLUGIN_API_VERSION) == f"emokit {first} and later"


@pytest.mark.parametrize("declared, message, hint", [
    (PLUGIN_API_VERSION + 1, f"needs plugin API {PLUGIN_API_VERSION + 1}, newer than this emokit",
     "upgrade emokit (pip install -U emokit)"),
    (0, "needs plugin API 0, which no emokit release provides", "upgrade emokit-old to a release written for"),
    ("1", "declares EMOKIT_PLUGIN_API = '1', which is not an integer", "EMOKIT_PLUGIN_API = 1"),
])
def test_incompatible_api_is_skipped_naming_the_emokit_it_needs(declared, message, hint):
    module = plugin_module("old", EMOKIT_PLUGIN_API=declared,
                           register_pipelines=lambda register: register(PipelineSpec(
                               "speech.old", "speech", "t", build_centroid, profiles={"quick": {}})))
    host = PluginHost([module_source(module, distribution="emokit-old", version="0.9")])
    assert "speech.old" not in host.pipelines
    assert message in host.plugins[0].error and hint in host.plugins[0].error
    assert host.plugins[0].api == (declared if isinstance(declared, int) else None)


def test_an_api_of_a_past_release_names_its_release_range(monkeypatch):
    from emokit_core import plugins

    monkeypatch.setattr(plugins, "API_RELEASES", {0: ("0.0.1", "0.0.9"), **plugins.API_RELEASES})
    host = PluginHost([module_source(plugin_module("past", EMOKIT_PLUGIN_API=0), distribution="emokit-past")])
    assert "needs plugin API 0, provided by emokit 0.0.1 to 0.0.9" in host.plugins[0].error
    assert "install emokit 0.0.1 to 0.0.9 for it" in host.plugins[0].error


# -- bad plugins, installed, through the CLI ----------------------------------------------------------
BAD_PLUGINS = {
    "emokit_bad_import": "raise ImportError(\"No module named 'tensorflow'\")\n",
    "emokit_bad_duplicate": textwrap.dedent("""
        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import PipelineSpec
        EMOKIT_PLUGIN_API = 1

        @hookimpl
        def register_pipelines(register):
            register(PipelineSpec("speech.mfcc_svm", "speech", "a second mfcc_svm", lambda: None,
                                  profiles={"quick": {}}))
    """),
    "emokit_bad_contract": textwrap.dedent("""
        import importlib
        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import PipelineSpec, Recipe
        EMOKIT_PLUGIN_API = 1

        def build():
            from emokit_core.estimators import ZeroR
            from emokit_core.plugins import create

            class HalfPosteriors(ZeroR):  # one column short
                def predict_proba(self, X):
                    return super().predict_proba(X)[:, 1:] * 0 + 1.0 / (len(self.classes_) - 1)

            return Recipe(extractor=create("extractor", "mfcc_stats"), model=HalfPosteriors())

        @hookimpl
        def register_pipelines(register):
            register(PipelineSpec("speech.bad_contract", "speech", "posteriors one column short", build,
                                  profiles={"quick": {}}))
    """),
}


def test_bad_plugins_are_reported_and_the_rest_of_emokit_works(tmp_path, tone_manifest):
    site = tmp_path / "site"
    dist = site / "emokit_bad_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: emokit-bad-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[emokit]\n" + "".join(f"{name.removeprefix('emokit_bad_')} = {name}\n" for name in BAD_PLUGINS))
    for name, source in BAD_PLUGINS.items():
        (site / f"{name}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    db = str(tmp_path / "registry.db")

    def emokit(*args):
        return subprocess.run([sys.executable, "-m", "emokit_cli", *args], env=env, capture_output=True, text=True)

    listed = json.loads(emokit("plugins", "--json").stdout)
    by_name = {p["name"]: p for p in listed["plugins"]}
    assert by_name["import"]["error"] == "ImportError: No module named 'tensorflow'"
    assert by_name["contract"]["error"] is None and by_name["baselines"]["error"] is None
    assert ("pipeline 'speech.mfcc_svm' is registered by both plugin 'baselines' (emokit 0.1.0) and plugin "
            "'duplicate' (emokit-bad-plugins 1.0)") in listed["problems"]

    broken = emokit("run", "speech.bad_contract", "--data", str(tone_manifest), "--registry", db, "--workers", "1")
    assert broken.returncode == 1
    assert ("error: speech.bad_contract: predict_proba returned shape (18, 2), expected (18, 3); "
            "plugin 'contract' (emokit-bad-plugins 1.0) breaks emokit's predict_proba contract") in broken.stderr
    assert "report it to the plugin's authors" in broken.stderr and "Traceback" not in broken.stderr
    clash = emokit("run", "speech.mfcc_svm", "--data", str(tone_manifest), "--registry", db)
    assert clash.returncode == 1 and "is registered by both" in clash.stderr and "uninstall one" in clash.stderr

    fine = emokit("run", "speech.zeror", "--data", str(tone_manifest), "--registry", db, "--json", "--workers", "1")
    assert fine.returncode == 0, fine.stderr
    runs = json.loads(emokit("runs", "--registry", db, "--json").stdout)
    assert {(r["model"], r["status"]) for r in runs} == {("speech.bad_contract", "failed"), ("speech.zeror", "finished")}


# -- the example plugin, installed into a fresh environment -------------------------------------------
def copy_sources(source: Path, target: Path, names) -> Path:
    target.mkdir(parents=True)
    for name in names:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info",
                                                                                       ".pytest_cache", "build"))
        else:
            shutil.copy2(source / name, target / name)
    return target


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    """A new virtual environment with emokit and emokit-opensmile installed from copies of this
    checkout, non-editable; the libraries (torch, scikit-learn, opensmile, pytest) come from the
    current interpreter through a .pth file, so nothing is downloaded."""
    pytest.importorskip("opensmile")
    root = tmp_path_factory.mktemp("fresh-env")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "outer-libraries.pth").write_text("\n".join(sorted(outer)) + "\n")
    emokit_src = copy_sources(REPO, root / "emokit-src", ["pyproject.toml", "README.md", "emokit_core", "cli", "plugins"])
    example_src = copy_sources(EXAMPLE, root / "example-src", ["pyproject.toml", "README.md", "src"])
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--disable-pip-version-check", str(emokit_src),
                    str(example_src)], check=True, capture_output=True, cwd=root)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return types.SimpleNamespace(root=root, venv=venv, python=python, emokit=venv / "bin" / "emokit", env=env)


def test_fresh_environment_imports_emokit_and_the_plugin_from_their_installs(fresh_env):
    where = subprocess.run([str(fresh_env.python), "-c", "import emokit_core, emokit_cli, emokit_opensmile; "
                            "print(emokit_core.__file__); print(emokit_opensmile.__file__)"],
                           env=fresh_env.env, cwd=fresh_env.root, check=True, capture_output=True, text=True)
    for path in where.stdout.split():
        assert Path(path).is_relative_to(fresh_env.venv), path  # not this checkout, not an editable install
    listed = json.loads(subprocess.run([str(fresh_env.emokit), "plugins", "--json"], env=fresh_env.env,
                                       cwd=fresh_env.root, check=True, capture_output=True, text=True).stdout)
    mine = [p for p in listed["plugins"] if p["name"] == "opensmile"]
    assert mine == [{"name": "opensmile", "module": "emokit_opensmile", "distribution": "emokit-opensmile",
                     "version": "0.1.0", "registered": {"pipeline": ["speech.egemaps_svc"],
                                                         "component": ["extractor:opensmile_functionals"]},
                     "error": None, "api": PLUGIN_API_VERSION, "disabled": None, "unmarked": []}]
    assert listed["problems"] == [] and listed["plugin_api"] == PLUGIN_API_VERSION
    assert {p["distribution"] for p in listed["plugins"] if p["name"] == "baselines"} == {"emokit"}


def test_fresh_environment_runs_the_plugin_onto_the_leaderboard(fresh_env, tiny_demo):
    db = str(fresh_env.root / "registry.db")
    run = subprocess.run([str(fresh_env.emokit), "run", "speech.egemaps_svc", "face.zeror", "fuse.logreg", "--data",
                          str(tiny_demo), "--folds", "grouped", "--registry", db, "--json", "--workers", "1"],
                         env=fresh_env.env, cwd=fresh_env.root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    runs = {r["pipeline"]: r for r in json.loads(run.stdout)["runs"]}
    assert set(runs) == {"speech.egemaps_svc", "face.zeror", "fuse.logreg"}
    assert runs["speech.egemaps_svc"]["pooled"]["accuracy"] > runs["face.zeror"]["pooled"]["accuracy"]
    board = json.loads(subprocess.run([str(fresh_env.emokit), "leaderboard", "--registry", db, "--json"],
                                      env=fresh_env.env, cwd=fresh_env.root, check=True, capture_output=True,
                                      text=True).stdout)
    assert {r["model"] for r in board} == {"speech.egemaps_svc", "face.zeror", "fuse.logreg"}
    assert all(r["corpus"] == board[0]["corpus"] and r["n_folds"] == 5 for r in board)


def test_fresh_environment_passes_the_plugins_own_tests(fresh_env, tiny_demo):
    """The example's tests, against the installed packages, with emokit's pytest fixtures; the
    tiny corpus is the suite's own (same generator parameters), so it is not generated again."""
    from emokit_plugins.corpora.demo_synth import GENERATOR_VERSION

    tests = copy_sources(EXAMPLE, fresh_env.root / "example-tests", ["pyproject.toml", "conftest.py", "tests"])
    corpora = fresh_env.root / "corpora"
    shutil.copytree(tiny_demo, corpora / f"tiny-v{GENERATOR_VERSION}")
    result = subprocess.run([str(fresh_env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             f"--emokit-corpora={corpora}"], env=fresh_env.env, cwd=tests,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout
