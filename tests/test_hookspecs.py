"""Every hookspec is documented with a working example and exercised by a test.

Adding a hook to emokit_core/hookspecs.py without all three fails here: its docstring's
``Example::`` block is loaded as a plugin module as emokit loads one, docs/plugins.md must show
its signature, and ``test_hook_<name>`` must make emokit call it.
"""

import functools
import inspect
import textwrap
import types
from pathlib import Path

import pytest

from emokit_core import hookspecs
from emokit_core.errors import UnknownNameError
from emokit_core.plugins import PluginHost, module_source
from emokit_core.specs import ComponentSpec, CorpusSpec, PipelineSpec, WeightsSpec

HOOKS = sorted(name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "emokit_spec"))
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
CALLED: set[str] = set()  # hooks that emokit called on the plugins made by plugin()


def plugin(name, **hooks):
    """A plugin module whose hook implementations record that emokit called them."""
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        @functools.wraps(fn)  # pluggy checks the wrapped function's argument names
        def recorded(*args, _fn=fn, _hook=hook_name):
            CALLED.add(_hook)
            return _fn(*args)

        recorded.__name__ = hook_name
        setattr(module, hook_name, hookspecs.hookimpl(recorded))
    return module


def host_of(*modules):
    return PluginHost([module_source(m, distribution=f"dist-{m.__name__}", version="9.9") for m in modules])


def example_of(hook: str) -> str:
    """The code block after ``Example::`` in the hook's docstring: the lines indented deeper than it."""
    lines = (getattr(hookspecs, hook).__doc__ or "").splitlines()
    starts = [i for i, line in enumerate(lines) if line.rstrip().endswith("Example::")]
    assert starts, f"{hook}'s docstring has no 'Example::' block"
    indent = len(lines[starts[0]]) - len(lines[starts[0]].lstrip())
    block = []
    for line in lines[starts[0] + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def load_example(hook: str) -> types.ModuleType:
    module = types.ModuleType(f"emokit_example_{hook}")
    exec(compile(example_of(hook), f"<{hook} example>", "exec"), module.__dict__)  # noqa: S102 - our own docs
    return module


def test_hooks_are_the_documented_five():
    assert HOOKS == ["register_commands", "register_components", "register_corpora", "register_pipelines",
                     "register_weights"]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_docstring_with_a_loadable_example(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))
    assert len(doc.split("Example::")[0]) > 40, f"{hook}: say what the hook is for before the example"
    module = load_example(hook)
    assert getattr(module, "EMOKIT_PLUGIN_API", None) == 1 and callable(getattr(module, hook, None))
    host = host_of(module)
    assert host.plugins[0].error is None, host.plugins[0].error  # pluggy validated the signature too
    if hook == "register_commands":
        app = _app_with(host)
        assert "foo-hello" in [c.name for c in app.registered_commands]
    else:
        assert host.plugins[0].registered, f"the {hook} example registers nothing"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_in_the_guide_with_its_signature(hook):
    signature = f"{hook}{inspect.signature(getattr(hookspecs, hook))}"
    assert f"def {signature}" in GUIDE.read_text(), f"docs/plugins.md does not show def {signature}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_test_that_makes_emokit_call_it(hook):
    test = globals().get(f"test_hook_{hook}")
    assert test is not None, f"no test_hook_{hook} in {__name__}"
    CALLED.discard(hook)
    test()
    assert hook in CALLED, f"test_hook_{hook} never made emokit call {hook}"


# -- the examples work beyond loading ----------------------------------------------------------
def test_pipeline_example_builds_and_resolves_its_profiles():
    from emokit_core.specs import Recipe

    spec = host_of(load_example("register_pipelines")).pipeline("speech.foo_mfcc_logreg")
    assert spec.resolve("paper") == ("paper", {"C": 10.0})
    recipe = spec.build(**spec.resolve(None)[1])
    assert isinstance(recipe, Recipe) and recipe.model.estimator.C == 1.0


def test_component_example_creates_its_component():
    from emokit_core.estimators import MaxVoting

    made = host_of(load_example("register_components")).component("aggregator", "foo_vote").factory(merge={1: 0})
    assert isinstance(made, MaxVoting) and made.merge == {1: 0}


def test_corpus_example_reads_a_csv(tone_manifest):
    corpus = host_of(load_example("register_corpora")).corpus("foo").load(tone_manifest)
    assert corpus.name == "foo" and len(corpus.clips) == 54 and len(corpus.folds) == 3


def test_weights_example_says_its_package_is_missing(tmp_path):
    from emokit_core.errors import WeightsError
    from emokit_core.registry import Registry

    host = host_of(load_example("register_weights"))
    with Registry(tmp_path / "r.db") as reg, pytest.raises(WeightsError, match="package emokit_foo is not installed"):
        reg.resolve_weights("foo-net", host.weights)


def _app_with(host):
    import typer

    app = typer.Typer()

    @app.command()
    def other():
        pass

    host.add_commands(app)
    return app


def test_command_example_runs():
    from typer.testing import CliRunner

    result = CliRunner().invoke(_app_with(host_of(load_example("register_commands"))), ["foo-hello", "--name", "you"])
    assert result.exit_code == 0 and "hello you from emokit-foo" in result.output


# -- one behavioural test per hook (named test_hook_<hook>; fixture-free, see above) ----------
def pipeline(name, modality="speech"):
    return PipelineSpec(name=name, modality=modality, summary="test", build=lambda: None)


def test_hook_register_pipelines():
    host = host_of(plugin("p1", register_pipelines=lambda register: register(pipeline("speech.x"))))
    assert host.pipeline("speech.x").summary == "test"
    assert host.owner("pipeline", "speech.x").distribution == "dist-p1"
    assert host.plugins[0].registered == {"pipeline": ["speech.x"]}


def test_hook_register_components():
    host = host_of(plugin("p1", register_components=lambda register: register(
        ComponentSpec("aggregator", "mean", lambda scale=1: ("mean", scale)))))
    assert host.component("aggregator", "mean").factory(scale=2) == ("mean", 2)
    with pytest.raises(UnknownNameError, match="did you mean 'mean'"):
        host.component("aggregator", "meen")


def test_hook_register_corpora():
    host = host_of(plugin("p1", register_corpora=lambda register: register(
        CorpusSpec("mine", lambda path: f"loaded {path}"))))
    assert host.corpus("mine").load("x") == "loaded x"


def test_hook_register_commands():
    from typer.testing import CliRunner

    def register_commands(app):
        @app.command()
        def hello():
            print("hello from a plugin")

    result = CliRunner().invoke(_app_with(host_of(plugin("p1", register_commands=register_commands))), ["hello"])
    assert result.exit_code == 0 and "hello from a plugin" in result.output


def test_hook_register_weights():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _weights_hook(Path(tmp))


def _weights_hook(tmp_path: Path):
    import hashlib

    from emokit_core.errors import WeightsError
    from emokit_core.registry import Registry

    shipped = tmp_path / "net.pt"
    shipped.write_bytes(b"weights a plugin ships")
    sha = hashlib.sha256(shipped.read_bytes()).hexdigest()
    host = host_of(plugin("p1", register_weights=lambda register: register(WeightsSpec(
        "net-v1", "TestNet", lambda: shipped, sha256=sha, source="trained by p1", licence="MIT",
        provenance={"epochs": 3}))))
    assert host.plugins[0].registered == {"weights": ["net-v1"]}
    with Registry(tmp_path / "r.db") as reg:
        found = reg.resolve_weights("net-v1", host.weights)
        assert (found.name, found.path, found.sha256, found.kind) == ("net-v1", str(shipped), sha, "TestNet")
        assert found.provenance == {"epochs": 3, "source": "trained by p1", "licence": "MIT", "packaged": True}
        with pytest.raises(Exception, match="did you mean 'net-v1'"):
            reg.resolve_weights("net-v2", host.weights)
        # A name the user registered comes first: their checkpoint replaces the plugin's.
        own = tmp_path / "own.pt"
        own.write_bytes(b"the user's own")
        reg.add_weights("net-v1", own)
        assert reg.resolve_weights("net-v1", host.weights).path == str(own.resolve())
        shipped.write_bytes(b"changed after release")
        with Registry(tmp_path / "other.db") as fresh, pytest.raises(WeightsError, match="plugin declares"):
            fresh.resolve_weights("net-v1", host.weights)
