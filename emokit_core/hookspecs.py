"""The hooks an emokit plugin implements (pluggy project name ``emokit``).

A plugin is a module exposed through the ``emokit`` entry-point group, e.g. in its
pyproject.toml::

    [project.entry-points.emokit]
    foo = "emokit_foo"

Inside it, functions decorated with ``emokit_core.hookimpl`` and named after a hook below
declare what the plugin adds; the core keeps the tables.  Every hook receives a
``register`` callable (or the CLI app) and returns nothing.  Names are global: registering
a name another plugin already registered is reported as an error naming both plugins.
A module may set ``EMOKIT_PLUGIN_API = 1`` to declare the contract version it was written
for; a plugin declaring another major version is skipped with a message.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("emokit")
hookimpl = pluggy.HookimplMarker("emokit")


@hookspec
def register_pipelines(register):
    """Declare runnable pipelines.

    Call ``register(PipelineSpec(...))`` once per pipeline.  Names are namespaced by
    modality: ``speech.<name>``, ``face.<name>`` or ``fuse.<name>``.  Example::

        @hookimpl
        def register_pipelines(register):
            register(PipelineSpec(name="speech.mfcc_svm", modality="speech",
                                  summary="MFCC statistics -> SVM", build=build_mfcc_svm,
                                  params={"C": Param(1.0, "SVM regularisation")},
                                  profiles={"quick": {}, "paper": {}}))
    """


@hookspec
def register_components(register):
    """Declare reusable building blocks created by name with ``emokit_core.create``.

    Call ``register(ComponentSpec(kind, name, factory, summary))``; ``kind`` is one of
    ``extractor``, ``recognizer``, ``aggregator``, ``fuser`` or another family a plugin
    introduces (e.g. ``saliency``).  Example::

        @hookimpl
        def register_components(register):
            register(ComponentSpec("aggregator", "vote", MaxVoting, "most frequent frame class"))
    """


@hookspec
def register_corpora(register):
    """Declare corpus readers.

    Call ``register(CorpusSpec(name, load, summary))``; ``load(path, **options)`` returns
    an ``emokit_core.contracts.Corpus`` whose folds list the held-out actors.  Example::

        @hookimpl
        def register_corpora(register):
            register(CorpusSpec("ravdess", load_ravdess, "RAVDESS Actor_XX folders"))
    """


@hookspec
def register_commands(app):
    """Add sub-commands to the ``emokit`` typer application.  Example::

        @hookimpl
        def register_commands(app):
            @app.command()
            def hello():
                print("hello from my plugin")
    """
