"""The paper's speech emotion recognizers (section 3.2) as emokit pipelines.

* ``speech.panns_svc`` - PANNs CNN14 2048-d embeddings -> SVC (paper: RBF, C=0.001).
* ``speech.deepspectrum_svc`` - viridis mel-spectrogram images -> AlexNet fc7 (4096-d) -> SVC.
* ``speech.panns_ft`` - CNN14 fine-tuned with a new head (log-softmax + NLL, Adam, batch 24,
  early stopping on a validation split of the training actors).
* ``speech.alexnet_ft`` - AlexNet fine-tuned on the DeepSpectrum images (cross-entropy, SGD).

The two fine-tuned pipelines also have a ``scratch`` profile, the recipe for training them
from random weights (augmentation on the training device, AdamW, one-cycle schedule, label
smoothing: docs/augmentation.md); a run without pretrained weights and without --profile
uses it on a GPU, and ``quick`` (for CNN14, the same recipe cut to a CPU budget) on a CPU.

Both start from local checkpoints given as ``weights=NAME|PATH`` (``emokit weights add``):
the official PANNs ``Cnn14_16k_mAP=0.438.pth`` and torchvision's ImageNet ``alexnet``.
Without weights they run from a seeded random initialisation, and say so.  ``vad`` trims
each clip to its speech first (none, silero, or ina where inaSpeechSegmenter is installed).
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import Caveat, ComponentSpec, Param, PipelineSpec, Recipe, lazy

EMOKIT_PLUGIN_API = 1

VAD = Param("none", "trim each clip to its speech first: none, or a vad component (silero, ina, a plugin's)")
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


def build_panns_ft(weights, width: float, vad: str, device: str, **model_params) -> Recipe:
    from emokit_core.errors import EmokitError

    from .finetune import Cnn14FineTuner, Waveform

    if weights is not None and width != 1.0:
        raise EmokitError(f"speech.panns_ft: the published CNN14 weights need width=1.0, not {width}",
                          "use --profile paper, or -p speech.panns_ft.width=1")
    model = Cnn14FineTuner(weights=weights, width=width, device=device)
    return Recipe(Waveform(vad=vad), model.set_params(**model_params))


def build_alexnet_ft(weights, vad: str, device: str, **model_params) -> Recipe:
    from .finetune import AlexNetFineTuner, SpectrogramImage

    return Recipe(SpectrogramImage(vad=vad), AlexNetFineTuner(weights=weights, device=device).set_params(**model_params))


#: The training-loop options of the recipe for training from scratch (docs/augmentation.md).  Like
#: every fine-tuning parameter declared without a default, they are the fine-tuner's own, with its
#: defaults (Cnn14FineTuner, AlexNetFineTuner: the paper's recipe).
LOOP_PARAMS = {
    "schedule": Param(help="learning-rate schedule: constant, or one_cycle (peaking at lr over the budget)",
                      choices=("constant", "one_cycle")),
    "label_smoothing": Param(help="label smoothing of the cross-entropy (0 = plain NLL)"),
    "mixup_alpha": Param(help="mixup of training batches, Beta(alpha, alpha) weights (0 = off; PANNs: 1.0)"),
    "sampling": Param(help="training batches: random (independent draws) or epochs (shuffled passes)",
                      choices=("random", "epochs")),
}
#: The scratch recipe's training loop: AdamW, one-cycle, label smoothing, shuffled epochs, no
#: early stopping and no validation split (every training actor is trained on).
SCRATCH_LOOP = {"optimizer": "adamw", "weight_decay": 1e-2, "lr": 1e-3, "schedule": "one_cycle",
                "label_smoothing": 0.1, "sampling": "epochs", "batch_size": 32, "patience": 0, "val_fraction": 0.0}
#: SpecAugment on CNN14's log-mel and the waveform augmentation of the scratch recipe.
SCRATCH_AUDIO = {"shift_seconds": 0.5, "gain_db": 3.0, "time_stripes": 2, "time_stripe_frames": 40,
                 "freq_stripes": 2, "freq_stripe_bins": 8}


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
                "vad": VAD, "lr": Param(help="learning rate (the peak of a one_cycle schedule)"),
                "optimizer": Param(help="adam, or adamw (decoupled weight decay)", choices=("adam", "adamw")),
                "weight_decay": Param(help="weight decay"), "batch_size": Param(help="clips per step"),
                "max_iterations": Param(help="training steps at most (when max_epochs is 0)"),
                "max_epochs": Param(help="training budget in passes over the training clips (0 = max_iterations)"),
                "eval_every": Param(help="steps between validation checks"),
                "patience": Param(help="validation checks without improvement before stopping (0 = never stop)"),
                "val_fraction": Param(help="share of the training actors held out for early stopping (0 = none)"),
                "freeze_blocks": Param(help="conv blocks (from the input) kept frozen: 0 = all trainable, "
                                            "6 = head only"),
                "crop_seconds": Param(help="training clips cut to a random window of this length, or zero-padded "
                                           "to it (0 = whole clips)"),
                **LOOP_PARAMS,
                "shift_seconds": Param(help="random time shift of training waveforms, up to this many seconds"),
                "gain_db": Param(help="random gain of training waveforms, up to this many dB either way"),
                "time_stripes": Param(help="SpecAugment: time stripes zeroed on the training log-mel"),
                "time_stripe_frames": Param(help="SpecAugment: widest time stripe, in 10-ms frames"),
                "freq_stripes": Param(help="SpecAugment: frequency stripes zeroed on the training log-mel"),
                "freq_stripe_bins": Param(help="SpecAugment: widest frequency stripe, in mel bins (of 64)"),
                "conv_dropout": Param(help="dropout after each conv block (PANNs: 0.2)"),
                "fc_dropout": Param(help="dropout on the pooled features and the embedding (PANNs: 0.5)"),
                "device": DEVICE},
        profiles={"paper": {},
                  # scratch: the recipe that trains CNN14 from random weights (68.1 % on RAVDESS at
                  # quarter width, 80 epochs on a GPU)
                  "scratch": {**SCRATCH_LOOP, **SCRATCH_AUDIO, "width": 0.25, "crop_seconds": 5.0, "max_epochs": 80},
                  # quick: the scratch recipe cut to two CPU cores (docs/augmentation.md): an
                  # eighth-width network on 2-s crops, 12 epochs of batch 16 at a higher peak lr,
                  # waveform shift and gain but no SpecAugment (it slows so short a training), and
                  # no dropout: at an eighth of the width CNN14 underfits, and PANNs' dropout
                  # (0.2 a block, 0.5 twice at the head) held it to a third of the accuracy
                  "quick": {**SCRATCH_LOOP, "width": 0.125, "crop_seconds": 2.0, "shift_seconds": 0.25,
                            "gain_db": 3.0, "batch_size": 16, "lr": 3e-3, "max_epochs": 12,
                            "conv_dropout": 0.0, "fc_dropout": 0.0}},
        caveats=(Caveat("quick", "speech.mfcc_svm",
                        "on real RAVDESS speech (1440 clips, the paper's folds, a CPU) it scored 30.5 % in "
                        "14.5 min, speech.mfcc_svm 49.4 % in seconds (speech.ge2e_svc: 62.9 %)"),)))
    register(PipelineSpec(
        "speech.alexnet_ft", "speech", "AlexNet fine-tuned on DeepSpectrum images, cross-entropy, SGD (paper Table 1)",
        build_alexnet_ft,
        params={"weights": Param(None, "torchvision ImageNet alexnet state dict: a name or a path", weights=True),
                "vad": VAD, "lr": Param(help="learning rate (the peak of a one_cycle schedule)"),
                "optimizer": Param(help="sgd (with momentum), or adamw", choices=("sgd", "adamw")),
                "momentum": Param(help="SGD momentum"),
                "weight_decay": Param(help="weight decay"), "batch_size": Param(help="images per step"),
                "max_epochs": Param(help="epochs at most"),
                "patience": Param(help="epochs without validation gain before stopping (0 = never stop)"),
                "val_fraction": Param(help="share of the training actors held out for early stopping (0 = none)"),
                **LOOP_PARAMS,
                "shift_pixels": Param(help="random time shift of training images, up to this many columns (of 227)"),
                "time_stripes": Param(help="SpecAugment: time stripes (columns) set to the mean colour"),
                "time_stripe_pixels": Param(help="SpecAugment: widest time stripe, in columns"),
                "freq_stripes": Param(help="SpecAugment: frequency stripes (rows) set to the mean colour"),
                "freq_stripe_pixels": Param(help="SpecAugment: widest frequency stripe, in rows"),
                "device": DEVICE},
        profiles={"paper": {},
                  # scratch: the CNN14 recipe carried over to the image (a 227-px image spans a
                  # whole clip: 28 columns are about 0.5 s, 23 columns 40 frames, 28 rows 8 of 64 bins)
                  "scratch": {**SCRATCH_LOOP, "shift_pixels": 28, "time_stripes": 2, "freq_stripes": 2,
                              "max_epochs": 80},
                  "quick": {"max_epochs": 8, "patience": 3}}))
    register(PipelineSpec(
        "speech.deepspectrum_svc", "speech", "DeepSpectrum: viridis mel-spectrogram image -> AlexNet fc7 -> SVC",
        build_deepspectrum_svc,
        params={"weights": Param(None, "torchvision ImageNet alexnet state dict: a name or a path", weights=True),
                "vad": VAD, "C": Param(0.001, "SVC regularisation (paper: 0.001)"), "device": DEVICE},
        profiles={"paper": {}, "quick": {}}))


@hookimpl
def register_components(register):
    register(ComponentSpec("vad", "silero", lazy("emokit_plugins.speech.vad:silero"),
                           "Silero VAD (its model ships in the silero-vad wheel)"))
    register(ComponentSpec("vad", "ina", lazy("emokit_plugins.speech.vad:ina"),
                           "inaSpeechSegmenter (the [ina] extra: TensorFlow, downloads its models)"))
    register(ComponentSpec("extractor", "panns_embedding", lazy("emokit_plugins.speech.extractors:PannsEmbedding"),
                           "CNN14 embedding of a clip"))
    register(ComponentSpec("extractor", "deepspectrum_fc7", lazy("emokit_plugins.speech.extractors:DeepSpectrumFc7"),
                           "AlexNet fc7 of a clip's DeepSpectrum image"))
