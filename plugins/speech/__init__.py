"""The paper's speech emotion recognizers (section 3.2) as emokit pipelines.

* ``speech.panns_svc`` - PANNs CNN14 2048-d embeddings -> SVC (paper: RBF, C=0.001).
* ``speech.deepspectrum_svc`` - viridis mel-spectrogram images -> AlexNet fc7 (4096-d) -> SVC.

Both start from local checkpoints given as ``weights=NAME|PATH`` (``emokit weights add``):
the official PANNs ``Cnn14_16k_mAP=0.438.pth`` and torchvision's ImageNet ``alexnet``.
Without weights they run from a seeded random initialisation, and say so.  ``vad`` trims
each clip to its speech first (none, silero, or ina where inaSpeechSegmenter is installed).
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, Recipe, lazy

EMOKIT_PLUGIN_API = 1

VAD = Param("none", "trim each clip to its speech first: none, silero, ina", choices=("none", "silero", "ina"))
DEVICE = Param("auto", "cuda, cpu, or auto (a GPU where there is one)")


def _svc(C: float):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import SVCWithPosteriors, VectorClipModel

    return VectorClipModel(make_pipeline(StandardScaler(), SVCWithPosteriors(kernel="rbf", C=C, random_state=0)))


def build_panns_svc(weights, width: float, vad: str, C: float, device: str) -> Recipe:
    from emokit_core.errors import EmokitError

    from .extractors import PannsEmbedding

    if weights is not None and width != 1.0:
        raise EmokitError(f"speech.panns_svc: the published CNN14 weights need width=1.0, not {width}",
                          "use --profile paper, or -p speech.panns_svc.width=1")

    return Recipe(PannsEmbedding(weights=weights, width=width, vad=vad, device=device), _svc(C))


def build_deepspectrum_svc(weights, vad: str, C: float, device: str) -> Recipe:
    from .extractors import DeepSpectrumFc7

    return Recipe(DeepSpectrumFc7(weights=weights, vad=vad, device=device), _svc(C))


@hookimpl
def register_pipelines(register):
    register(PipelineSpec(
        "speech.panns_svc", "speech", "PANNs CNN14 2048-d embeddings -> SVC (paper Table 1)", build_panns_svc,
        params={"weights": Param(None, "PANNs CNN14 16 kHz checkpoint: a name from `emokit weights` or a path",
                                 weights=True),
                "width": Param(1.0, "channel width of CNN14 (1.0 = the published network)"),
                "vad": VAD, "C": Param(0.001, "SVC regularisation (paper: 0.001)"), "device": DEVICE},
        # quick: a quarter-width CNN14 (about 1/16 of the computation) for CPUs and random weights
        profiles={"paper": {}, "quick": {"width": 0.25}}))
    register(PipelineSpec(
        "speech.deepspectrum_svc", "speech", "DeepSpectrum: viridis mel-spectrogram image -> AlexNet fc7 -> SVC",
        build_deepspectrum_svc,
        params={"weights": Param(None, "torchvision ImageNet alexnet state dict: a name or a path", weights=True),
                "vad": VAD, "C": Param(0.001, "SVC regularisation (paper: 0.001)"), "device": DEVICE},
        profiles={"paper": {}, "quick": {}}))


@hookimpl
def register_components(register):
    register(ComponentSpec("extractor", "panns_embedding", lazy("emokit_plugins.speech.extractors:PannsEmbedding"),
                           "CNN14 embedding of a clip"))
    register(ComponentSpec("extractor", "deepspectrum_fc7", lazy("emokit_plugins.speech.extractors:DeepSpectrumFc7"),
                           "AlexNet fc7 of a clip's DeepSpectrum image"))
