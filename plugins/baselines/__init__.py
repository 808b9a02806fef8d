"""Baseline pipelines: the paper's ZeroR rows and two cheap real baselines.

* ``speech.zeror`` / ``face.zeror`` - the most frequent training class (paper Tables 1-3).
* ``speech.mfcc_svm`` - MFCC + prosody statistics -> standardised RBF SVM.
* ``face.pixels_vote`` - downscaled centre-square frames -> PCA + logistic regression per
  frame -> max-voting over the clip's frames.
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, Recipe, lazy

EMOKIT_PLUGIN_API = 1


def build_zeror() -> Recipe:
    from emokit_core.estimators import ZeroR

    return Recipe(extractor=None, model=ZeroR())


def build_mfcc_svm(n_mfcc: int, C: float, gamma: str) -> Recipe:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import SVCWithPosteriors, VectorClipModel

    from .features import MfccStats

    svm = make_pipeline(StandardScaler(), SVCWithPosteriors(C=C, gamma=gamma, random_state=0))
    return Recipe(extractor=MfccStats(n_mfcc=n_mfcc), model=VectorClipModel(svm))


def build_pixels_vote(size: int, frame_step: int, components: int, C: float, max_frames_per_clip: int) -> Recipe:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import FrameClipModel, MaxVoting

    from .features import CentreSquarePixels

    frame_classifier = make_pipeline(StandardScaler(), PCA(components, random_state=0),
                                     LogisticRegression(C=C, max_iter=500))
    return Recipe(extractor=CentreSquarePixels(size=size, frame_step=frame_step),
                  model=FrameClipModel(frame_classifier, MaxVoting(), max_frames_per_clip=max_frames_per_clip))


_SAME_EVERYWHERE = {"quick": {}, "paper": {}}


@hookimpl
def register_pipelines(register):
    for modality in ("speech", "face"):
        register(PipelineSpec(
            name=f"{modality}.zeror", modality=modality, build=build_zeror, profiles=_SAME_EVERYWHERE,
            summary="ZeroR: always the training folds' most frequent class (the paper's reference row)"))
    register(PipelineSpec(
        name="speech.mfcc_svm", modality="speech", build=build_mfcc_svm, profiles=_SAME_EVERYWHERE,
        summary="MFCC + delta + prosody statistics -> standardised RBF SVM",
        params={"n_mfcc": Param(20, "MFCC coefficients"), "C": Param(1.0, "SVM regularisation"),
                "gamma": Param("scale", "RBF kernel width (sklearn's 'scale' or 'auto')")}))
    register(PipelineSpec(
        name="face.pixels_vote", modality="face", build=build_pixels_vote, profiles=_SAME_EVERYWHERE,
        summary="centre-square frames at low resolution -> PCA + logistic regression per frame -> max-voting",
        params={"size": Param(24, "side of the grayscale frame in pixels"),
                "frame_step": Param(3, "use every n-th frame"),
                "components": Param(40, "PCA components"),
                "C": Param(1.0, "logistic regression regularisation"),
                "max_frames_per_clip": Param(20, "frames per training clip (evenly spaced; 0 = all)")}))


@hookimpl
def register_components(register):
    register(ComponentSpec("extractor", "mfcc_stats", lazy("emokit_plugins.baselines.features:MfccStats"),
                           "MFCC + prosody statistics per clip"))
    register(ComponentSpec("extractor", "centre_pixels", lazy("emokit_plugins.baselines.features:CentreSquarePixels"),
                           "low-resolution centre-square frames"))
    register(ComponentSpec("recognizer", "zeror", lazy("emokit_core.estimators:ZeroR"), "most frequent training class"))
    register(ComponentSpec("recognizer", "vector_clip", lazy("emokit_core.estimators:VectorClipModel"),
                           "one vector per clip -> a classifier"))
    register(ComponentSpec("recognizer", "frame_clip", lazy("emokit_core.estimators:FrameClipModel"),
                           "frame classifier + aggregator"))
    register(ComponentSpec("aggregator", "vote", lazy("emokit_core.estimators:MaxVoting"),
                           "max-voting over frame classes; ties to the highest mean posterior"))
