"""The paper's facial emotion recognizer (section 3.3) as emokit components and pipelines.

Frames: RAVDESS-like framing cut to the centred square, other videos cropped by a face
detector; a saliency map per frame; both at 48x48 (``emokit_plugins.face.frames``).

* ``face.stn_vote`` - the saliency-guided STN fine-tuned on frames -> max-voting.
* ``face.stn_bilstm`` - the same STN's per-frame outputs (flatten-810 by default) -> attention
  bi-LSTM (paper best: 2 layers of 300 units, 2 attention layers); ``freeze=true`` feeds it the
  pretrained STN's outputs as they are (the paper's feature extraction rows).
* ``face.stn_svc`` - the pretrained STN's per-frame outputs (frozen by default, or fine-tuned),
  pooled over the clip -> standardised logistic regression or SVC (Table 3's feature
  extraction, with a per-clip classifier).

All start from ``stn-fer2013``, emokit's own STN pretrained on FER-2013 and shipped in this
package (``emokit pretrain face.stn``; docs/pretraining.md); ``weights=none`` trains from random
weights, ``weights=NAME|PATH`` starts from another checkpoint (the authors' AffectNet STN).

Both have a ``scratch`` profile for training the STN from random weights: rotations, crops
and brightness on the training frames (on the training device), AdamW, one-cycle schedule,
label smoothing (docs/augmentation.md); a run without weights and without --profile uses it
on a GPU and ``quick`` on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from emokit_core.checkpoints import packaged_file
from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, Recipe, WeightsSpec, lazy

#: emokit's own STN, made by `emokit pretrain face.stn` on FER-2013 (its record beside it).
SHIPPED_STN = "stn-fer2013"
WEIGHTS = Param(SHIPPED_STN, "STN checkpoint in the authors' layout: a name or a path; stn-fer2013 (shipped, "
                             "pretrained on FER-2013), the authors' AffectNet STN, or none (random init)", weights=True)
FREEZE = Param(False, "use the pretrained STN as it is (feature extraction) instead of fine-tuning it")
SALIENCY = Param("spectral_residual", "saliency component: spectral_residual, fine_grained, or a plugin's")
DEVICE = Param("auto", "cuda, cpu, or auto (a GPU where there is one)")
VAD = Param("none", "keep the frames between the first and last speech of the clip's audio: none, or a vad "
                    "component (silero, ina, a plugin's; the paper's face models 'with VAD')")
# Parameters without a default are FrameClipModel's own, or nested (scikit-learn's names) those of
# its frame classifier (the STN) and aggregator (the bi-LSTM); their defaults are the estimators'.
STN_PARAMS = {
    "weights": WEIGHTS, "saliency": SALIENCY, "vad": VAD,
    "frame_classifier__lr": Param(help="learning rate of the STN (the peak of a one_cycle schedule)"),
    "frame_classifier__optimizer": Param(help="STN optimizer: adam, or adamw (decoupled weight decay)",
                                         choices=("adam", "adamw")),
    "frame_classifier__weight_decay": Param(help="STN weight decay"),
    "frame_classifier__batch_size": Param(help="frames per STN step"),
    "frame_classifier__max_epochs": Param(help="STN epochs at most"),
    "frame_classifier__patience": Param(help="STN epochs without validation-accuracy gain before stopping "
                                             "(0 = never stop)"),
    "frame_classifier__schedule": Param(help="STN learning-rate schedule: constant, or one_cycle",
                                        choices=("constant", "one_cycle")),
    "frame_classifier__label_smoothing": Param(help="label smoothing of the STN's cross-entropy"),
    "frame_classifier__mixup_alpha": Param(help="mixup of STN training frames, Beta(alpha, alpha) weights (0 = off)"),
    "frame_classifier__sampling": Param(help="STN batches: random (independent draws) or epochs (shuffled passes)",
                                        choices=("random", "epochs")),
    "frame_classifier__rotation": Param(help="random rotation of STN training frames, up to this many degrees"),
    "frame_classifier__shift": Param(help="random crop of STN training frames: shifted by up to this many pixels "
                                          "(of 48)"),
    "frame_classifier__brightness": Param(help="random brightness change of STN training faces, up to this much "
                                               "(of 1)"),
    "max_frames_per_clip": Param(help="frames each training clip gives the STN, evenly spaced (0 = all)"),
    "val_fraction": Param(0.2, "share of the training actors held out for early stopping (0 = none)"),
    "device": DEVICE,
}
#: The names these parameters had before they took the estimators' names.
RENAMED_STN = {
    **{f"stn_{k}": f"frame_classifier__{k}" for k in (
        "lr", "optimizer", "weight_decay", "batch_size", "max_epochs", "patience", "schedule", "label_smoothing",
        "mixup_alpha", "sampling")},
    **{f"frame_{k}": f"frame_classifier__{k}" for k in ("rotation", "shift", "brightness")},
    "frames_per_clip": "max_frames_per_clip",
}
#: The scratch recipe for frames (docs/augmentation.md): small rotations, random crops and
#: brightness on the training device; AdamW, one-cycle, label smoothing, shuffled epochs,
#: no early stopping and no validation split.
SCRATCH_STN = {"frame_classifier__optimizer": "adamw", "frame_classifier__weight_decay": 1e-2,
               "frame_classifier__schedule": "one_cycle", "frame_classifier__label_smoothing": 0.1,
               "frame_classifier__sampling": "epochs", "frame_classifier__patience": 0, "val_fraction": 0.0,
               "frame_classifier__rotation": 10.0, "frame_classifier__shift": 4.0,
               "frame_classifier__brightness": 0.1, "frame_classifier__max_epochs": 30}


def _stn(weights, frame_output: str, val_fraction: float, device: str, freeze: bool = False):
    from .recognizer import STNFrameClassifier

    return STNFrameClassifier(weights=weights, frame_output=frame_output, val_fraction=val_fraction, device=device,
                              freeze=freeze)


def build_stn_vote(weights, saliency, vad, merge_calm, val_fraction, device, **model_params) -> Recipe:
    from emokit_core.estimators import FrameClipModel, MaxVoting

    from .frames import FaceSaliencyFrames

    # merge_calm: calm (class 1) votes as neutral (class 0), for models that never learnt calm
    vote = MaxVoting(merge={1: 0} if merge_calm else None)
    model = FrameClipModel(_stn(weights, "posteriors", val_fraction, device), vote)
    return Recipe(FaceSaliencyFrames(saliency=saliency, vad=vad), model.set_params(**model_params))


def build_stn_bilstm(weights, saliency, vad, input, freeze, val_fraction, device, **model_params) -> Recipe:
    from emokit_core.estimators import FrameClipModel

    from .bilstm import BiLSTMAggregator
    from .frames import FaceSaliencyFrames

    # the paper's best bi-LSTM: 2 layers (and attention layers) of 300 units
    lstm = BiLSTMAggregator(layers=2, hidden=300, val_fraction=val_fraction, device=device)
    model = FrameClipModel(_stn(weights, input, val_fraction, device, freeze), lstm)
    return Recipe(FaceSaliencyFrames(saliency=saliency, vad=vad), model.set_params(**model_params))


def build_stn_svc(weights, saliency, vad, input, freeze, pooling, classifier, C, val_fraction, device,
                  **model_params) -> Recipe:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import FrameClipModel, PooledClipModel, SVCWithPosteriors

    from .frames import FaceSaliencyFrames

    head = (LogisticRegression(C=C, max_iter=2000) if classifier == "logreg"
            else SVCWithPosteriors(kernel=classifier.removeprefix("svc_"), C=C, random_state=0))
    per_clip = PooledClipModel(make_pipeline(StandardScaler(), head), pooling=pooling)
    model = FrameClipModel(_stn(weights, input, val_fraction, device, freeze), per_clip)
    return Recipe(FaceSaliencyFrames(saliency=saliency, vad=vad), model.set_params(**model_params))


@hookimpl
def register_pipelines(register):
    quick_stn = {"frame_classifier__max_epochs": 10, "frame_classifier__patience": 3, "max_frames_per_clip": 10}
    register(PipelineSpec(
        "face.stn_vote", "face", "saliency-guided STN fine-tuned on frames -> max-voting (paper Table 3)",
        build_stn_vote,
        params={**STN_PARAMS, "merge_calm": Param(False, "count calm votes as neutral (for 7-class models)")},
        profiles={"paper": {}, "scratch": SCRATCH_STN, "quick": quick_stn}, renamed=RENAMED_STN))
    register(PipelineSpec(
        "face.stn_bilstm", "face", "STN per-frame outputs -> attention bi-LSTM (paper best, Table 3)",
        build_stn_bilstm,
        params={**STN_PARAMS,
                "input": Param("flatten", "what the bi-LSTM reads per frame", choices=("flatten", "fc50", "posteriors")),
                "freeze": FREEZE,
                "aggregator__layers": Param(help="bi-LSTM layers (and attention layers)", choices=(1, 2)),
                "aggregator__hidden": Param(help="units per LSTM direction (25-300)"),
                "aggregator__batch_size": Param(help="clips per bi-LSTM step"),
                "aggregator__max_epochs": Param(help="bi-LSTM epochs at most"),
                "aggregator__patience": Param(help="bi-LSTM epochs without macro-F1 gain before stopping")},
        profiles={"paper": {},
                  # scratch: without a validation split the bi-LSTM trains a fixed budget too
                  "scratch": {**SCRATCH_STN, "aggregator__max_epochs": 30},
                  "quick": {**quick_stn, "aggregator__layers": 1, "aggregator__hidden": 50,
                            "aggregator__max_epochs": 12, "aggregator__patience": 5}},
        renamed={**RENAMED_STN, "layers": "aggregator__layers", "hidden": "aggregator__hidden",
                 **{f"lstm_{k}": f"aggregator__{k}" for k in ("batch_size", "max_epochs", "patience")}}))
    register(PipelineSpec(
        "face.stn_svc", "face", "pretrained STN's per-frame outputs (frozen by default), pooled per clip -> "
                                "logistic regression or SVC (Table 3 feature extraction)",
        build_stn_svc,
        params={**STN_PARAMS,
                "input": Param("flatten", "what is pooled per frame", choices=("flatten", "fc50", "posteriors")),
                "freeze": Param(True, "use the pretrained STN as it is (true), or fine-tune it on the frames first"),
                "pooling": Param("mean_std", "per-clip pooling of the frame outputs: mean, or mean_std (mean and "
                                               "standard deviation side by side)", choices=("mean", "mean_std")),
                "classifier": Param("logreg", "per-clip classifier on the standardised pooled outputs",
                                    choices=("logreg", "svc_linear", "svc_rbf")),
                "C": Param(1.0, "inverse regularisation of the classifier")},
        profiles={"paper": {}, "scratch": SCRATCH_STN, "quick": quick_stn}, renamed=RENAMED_STN))

EMOKIT_PLUGIN_API = 1


@hookimpl
def register_weights(register):
    record = json.loads((Path(__file__).parent / "weights" / f"{SHIPPED_STN}.json").read_text())
    register(WeightsSpec(
        SHIPPED_STN, "saliency-guided STN (Table A1), 7 FER-2013 classes",
        packaged_file("emokit_plugins.face", f"weights/{SHIPPED_STN}.pt"), sha256=record["sha256"],
        source=(f"emokit, pretrained on FER-2013 ({record['epochs']} epochs, seed {record['seed']}; "
                f"test {100 * record['test_accuracy']:.1f} %)"),
        licence="MIT (emokit); FER-2013 is a research corpus", provenance=record,
        summary="the STN face.stn_vote / stn_bilstm / stn_svc start from"))


@hookimpl
def register_components(register):
    register(ComponentSpec("aggregator", "bilstm", lazy("emokit_plugins.face.bilstm:BiLSTMAggregator"),
                           "attention bi-LSTM over per-frame outputs"))
    register(ComponentSpec("recognizer", "stn_frames", lazy("emokit_plugins.face.recognizer:STNFrameClassifier"),
                           "saliency-guided STN fine-tuned on frames"))
    register(ComponentSpec("extractor", "face_saliency_frames", lazy("emokit_plugins.face.frames:FaceSaliencyFrames"),
                           "every frame: 48x48 face + saliency map"))
    register(ComponentSpec("saliency", "spectral_residual", lazy("emokit_plugins.face.frames:spectral_residual"),
                           "OpenCV static saliency, spectral residual (default)"))
    register(ComponentSpec("saliency", "fine_grained", lazy("emokit_plugins.face.frames:fine_grained"),
                           "OpenCV static saliency, fine-grained"))
    register(ComponentSpec("face_detector", "haar", lazy("emokit_plugins.face.frames:HaarFaceDetector"),
                           "OpenCV frontal-face Haar cascade; the largest face"))
    register(ComponentSpec("pretrainer", "face.stn", lazy("emokit_plugins.face.pretrain:stn_pretrainer"),
                           "the saliency STN of Table A1 on still face images (emokit pretrain face.stn)"))
    register(ComponentSpec("face_detector", "centre", lazy("emokit_plugins.face.frames:CentreSquare"),
                           "none: the frame is already a face crop (its centre square)"))
