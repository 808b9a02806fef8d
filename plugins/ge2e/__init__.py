"""The GE2E speaker encoder of the ``resemblyzer`` wheel as a frozen speech-emotion backbone (issue 13).

``speech.ge2e_svc``: a clip's 16 kHz audio, brought up to -30 dBFS as resemblyzer does, ->
its 40-band mel (25-ms window, 10-ms hop) -> the GE2E encoder (3 LSTM layers of 256, Wan et
al. 2018), frozen -> the last LSTM layer's 256-d output at every frame, pooled by mean and
standard deviation (512-d, ``extractor:ge2e_stats``) -> standardised -> an SVM with Platt
posteriors.  On real RAVDESS speech this scored 62.9 % (eGeMAPS functionals: 48 %).

The network is emokit's own (``emokit_plugins.ge2e.network``); only its weights come from
resemblyzer: ``resemblyzer/pretrained.pt`` of the Resemblyzer 0.1.4 distribution, registered
as ``ge2e-resemblyzer`` (``emokit weights list``), found through the distribution's metadata
and read unchanged, SHA-256 checked at every use.  Install it without its dependencies
(webrtcvad, librosa...), since the package is never imported: ``pip install --no-deps
resemblyzer==0.1.4`` (``scripts/setup`` does).  A speaker encoder with random weights is
meaningless, so ``weights=none`` is refused when the run plans its extraction.
"""

from __future__ import annotations

from emokit_core.checkpoints import distribution_file
from emokit_core.hookspecs import hookimpl
from emokit_core.specs import (
    ComponentSpec,
    Param,
    PipelineSpec,
    Recipe,
    WeightsSpec,
    lazy,
)

EMOKIT_PLUGIN_API = 1

WEIGHTS = "ge2e-resemblyzer"
#: SHA-256 of resemblyzer/pretrained.pt in the Resemblyzer 0.1.4 wheel (17,090,379 bytes).
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
locate_weights = distribution_file("Resemblyzer", "resemblyzer/pretrained.pt", "resemblyzer==0.1.4")


def build_ge2e_svc(weights, C: float, kernel: str, volume_norm: bool, vad: str, device: str) -> Recipe:
    """``weights`` is the runner's :class:`~emokit_core.specs.WeightsRef` (``None`` for
    ``weights=none``, which the extractor refuses when the run plans its extraction: building
    still works, so that a declaration check can build every pipeline without weights)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import SVCWithPosteriors, VectorClipModel

    from .extractor import Ge2eStats

    return Recipe(Ge2eStats(weights=weights, volume_norm=volume_norm, vad=vad, device=device),
                  VectorClipModel(make_pipeline(StandardScaler(),
                                                SVCWithPosteriors(kernel=kernel, C=C, random_state=0))))


@hookimpl
def register_weights(register):
    register(WeightsSpec(
        WEIGHTS, "GE2E speaker encoder (3x LSTM 256, 40-band mel, 16 kHz)", locate_weights, WEIGHTS_SHA256,
        source=("Resemble AI (Corentin Jemine), Resemblyzer 0.1.4: GE2E trained 1.56 M steps for speaker "
                "verification, on VoxCeleb 1+2 and LibriSpeech per its authors (the wheel names no corpus)"),
        licence="Apache-2.0 (Resemblyzer's LICENSE, Copyright 2019 Resemble.AI)",
        summary="resemblyzer/pretrained.pt of the Resemblyzer 0.1.4 wheel (pip install --no-deps resemblyzer==0.1.4)",
        provenance={"distribution": "Resemblyzer==0.1.4", "file": "resemblyzer/pretrained.pt",
                    "size": 17090379, "training_step": 1564501}))


@hookimpl
def register_components(register):
    register(ComponentSpec("extractor", "ge2e_stats", lazy("emokit_plugins.ge2e.extractor:Ge2eStats"),
                           "GE2E speaker encoder, last LSTM layer's frames pooled by mean and std (512-d)"))


@hookimpl
def register_pipelines(register):
    register(PipelineSpec(
        "speech.ge2e_svc", "speech", "GE2E speaker-encoder frames (mean + std, 512-d) -> standardised SVC",
        build_ge2e_svc,
        params={"weights": Param(WEIGHTS, "GE2E encoder checkpoint: ge2e-resemblyzer (resemblyzer's pretrained.pt), "
                                          "another name from `emokit weights list`, or a path", weights=True),
                "C": Param(1.0, "SVC regularisation"),
                "kernel": Param("rbf", "SVC kernel", choices=("rbf", "linear", "poly", "sigmoid")),
                "volume_norm": Param(True, "raise clips quieter than -30 dBFS to it first, as resemblyzer does"),
                "vad": Param("none", "trim each clip to its speech first: none, or a vad component (silero, ina, "
                                     "a plugin's)"),
                "device": Param("auto", "cuda, cpu, or auto (a GPU where there is one)")},
        profiles={"quick": {}, "paper": {}}))
