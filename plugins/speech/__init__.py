"""The paper's speech emotion recognizers (section 3.2) as emokit pipelines.

* ``speech.panns_svc`` - PANNs CNN14 2048-d embeddings -> SVC (paper: RBF, C=0.001).
* ``speech.deepspectrum_svc`` - viridis mel-spectrogram images -> AlexNet fc7 (4096-d) -> SVC.
* ``speech.panns_ft`` - CNN14 fine-tuned with a new head (log-softmax + NLL, Adam, batch 24,
  early stopping on a validation split of the training actors).
* ``speech.alexnet_ft`` - AlexNet fine-tuned on the DeepSpectrum images (cross-entropy, SGD).

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


def build_panns_ft(weights, width: float, vad: str, lr: float, batch_size: int, max_iterations: int,
                   eval_every: int, patience: int, val_fraction: float, freeze_blocks: int, crop_seconds: float,
                   device: str) -> Recipe:
    from emokit_core.errors import EmokitError

    from .finetune import Cnn14FineTuner, Waveform

    if weights is not None and width != 1.0:
        raise EmokitError(f"speech.panns_ft: the published CNN14 weights need width=1.0, not {width}",
                          "use --profile paper, or -p speech.panns_ft.width=1")
    return Recipe(Waveform(vad=vad), Cnn14FineTuner(
        weights=weights, width=width, lr=lr, batch_size=batch_size, max_iterations=max_iterations,
        eval_every=eval_every, patience=patience, val_fraction=val_fraction, freeze_blocks=freeze_blocks,
        crop_seconds=crop_seconds, device=device))


def build_alexnet_ft(weights, vad: str, lr: float, momentum: float, weight_decay: float, batch_size: int,
                     max_epochs: int, patience: int, val_fraction: float, device: str) -> Recipe:
    from .finetune import AlexNetFineTuner, SpectrogramImage

    return Recipe(SpectrogramImage(vad=vad), AlexNetFineTuner(
        weights=weights, lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size,
        max_epochs=max_epochs, patience=patience, val_fraction=val_fraction, device=device))


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
        "speech.panns_ft", "speech", "CNN14 fine-tuned with a new 8-way head, log-softmax + NLL, Adam (paper Table 1)",
        build_panns_ft,
        params={"weights": Param(None, "PANNs CNN14 16 kHz checkpoint: a name from `emokit weights` or a path",
                                 weights=True),
                "width": Param(1.0, "channel width of CNN14 (1.0 = the published network)"),
                "vad": VAD, "lr": Param(1e-3, "Adam learning rate"), "batch_size": Param(24, "clips per step"),
                "max_iterations": Param(30000, "training steps at most"),
                "eval_every": Param(200, "steps between validation checks"),
                "patience": Param(10, "validation checks without improvement before stopping"),
                "val_fraction": Param(0.2, "share of the training actors held out for early stopping"),
                "freeze_blocks": Param(0, "conv blocks (from the input) kept frozen: 0 = all trainable, 6 = head only"),
                "crop_seconds": Param(0.0, "crop training clips to a random window of this length (0 = whole)"),
                "device": DEVICE},
        profiles={"paper": {},
                  # quick: a quarter-width network, 2.5-s crops and 100 steps, for CPUs
                  "quick": {"width": 0.25, "max_iterations": 100, "eval_every": 25, "patience": 2,
                            "crop_seconds": 2.5}}))
    register(PipelineSpec(
        "speech.alexnet_ft", "speech", "AlexNet fine-tuned on DeepSpectrum images, cross-entropy, SGD (paper Table 1)",
        build_alexnet_ft,
        params={"weights": Param(None, "torchvision ImageNet alexnet state dict: a name or a path", weights=True),
                "vad": VAD, "lr": Param(1e-3, "SGD learning rate"), "momentum": Param(0.9, "SGD momentum"),
                "weight_decay": Param(5e-4, "SGD weight decay"), "batch_size": Param(24, "images per step"),
                "max_epochs": Param(500, "epochs at most"),
                "patience": Param(30, "epochs without validation gain before stopping"),
                "val_fraction": Param(0.2, "share of the training actors held out for early stopping"),
                "device": DEVICE},
        profiles={"paper": {}, "quick": {"max_epochs": 8, "patience": 3}}))
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
