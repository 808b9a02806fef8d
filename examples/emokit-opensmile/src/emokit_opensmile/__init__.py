"""emokit plugin: openSMILE functionals as a speech extractor, and ``speech.egemaps_svc``.

``speech.egemaps_svc``: the 88 eGeMAPSv02 functionals of each clip (pitch, loudness, spectral
balance, formants, voice quality; Eyben et al. 2016) -> standardised SVM with Platt posteriors.

The module registers only declarations, so importing it is cheap: openSMILE and scikit-learn
are imported when a pipeline is built or a component created.
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, Recipe, lazy

# The emokit plugin contract this module is written for (emokit 0.1.0 and later).
EMOKIT_PLUGIN_API = 1


def build_egemaps_svc(C: float, kernel: str, gamma: str) -> Recipe:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import SVCWithPosteriors, VectorClipModel

    from .features import OpenSmileFunctionals

    svm = make_pipeline(StandardScaler(), SVCWithPosteriors(kernel=kernel, C=C, gamma=gamma, random_state=0))
    return Recipe(extractor=OpenSmileFunctionals(feature_set="eGeMAPSv02"), model=VectorClipModel(svm))


@hookimpl
def register_pipelines(register):
    register(PipelineSpec(
        name="speech.egemaps_svc", modality="speech", build=build_egemaps_svc,
        summary="openSMILE eGeMAPSv02 functionals (88) -> standardised SVM",
        params={"C": Param(1.0, "SVM regularisation"),
                "kernel": Param("rbf", "SVM kernel", choices=("rbf", "linear")),
                "gamma": Param("scale", "RBF kernel width (sklearn's 'scale' or 'auto')")},
        profiles={"quick": {}}))


@hookimpl
def register_components(register):
    register(ComponentSpec("extractor", "opensmile_functionals",
                           lazy("emokit_opensmile.features:OpenSmileFunctionals"),
                           "openSMILE functionals per clip (eGeMAPSv02, GeMAPSv01b or ComParE_2016)"))
