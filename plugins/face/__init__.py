"""The paper's facial emotion recognizer (section 3.3) as emokit components and pipelines.

Frames: RAVDESS-like framing cut to the centred square, other videos cropped by a face
detector; a saliency map per frame; both at 48x48 (``emokit_plugins.face.frames``).

* ``face.stn_vote`` - the saliency-guided STN fine-tuned on frames -> max-voting.
* ``face.stn_bilstm`` - the same STN's per-frame outputs (flatten-810 by default) -> attention
  bi-LSTM (paper best: 2 layers of 300 units, 2 attention layers).

Both have a ``scratch`` profile for training the STN from random weights: rotations, crops
and brightness on the training frames (on the training device), AdamW, one-cycle schedule,
label smoothing (docs/augmentation.md); a run without weights and without --profile uses it
on a GPU and ``quick`` on a CPU.
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, Recipe, lazy

WEIGHTS = Param(None, "STN checkpoint in the authors' layout (e.g. AffectNet); a name or a path", weights=True)
SALIENCY = Param("spectral_residual", "saliency component: spectral_residual, fine_grained, or a plugin's")
DEVICE = Param("auto", "cuda, cpu, or auto (a GPU where there is one)")
VAD = Param("none", "keep the frames between the first and last speech of the clip's audio: none, or a vad "
                    "component (silero, ina, a plugin's; the paper's face models 'with VAD')")
STN_PARAMS = {
    "weights": WEIGHTS, "saliency": SALIENCY, "vad": VAD,
    "stn_lr": Param(1e-3, "learning rate of the STN (the peak of a one_cycle schedule)"),
    "stn_optimizer": Param("adam", "STN optimizer: adam, or adamw (decoupled weight decay)", choices=("adam", "adamw")),
    "stn_weight_decay": Param(0.0, "STN weight decay"),
    "stn_batch_size": Param(128, "frames per STN step"),
    "stn_max_epochs": Param(500, "STN epochs at most"),
    "stn_patience": Param(30, "STN epochs without validation-accuracy gain before stopping (0 = never stop)"),
    "stn_schedule": Param("constant", "STN learning-rate schedule: constant, or one_cycle",
                          choices=("constant", "one_cycle")),
    "stn_label_smoothing": Param(0.0, "label smoothing of the STN's cross-entropy"),
    "stn_mixup_alpha": Param(0.0, "mixup of STN training frames, Beta(alpha, alpha) weights (0 = off)"),
    "stn_sampling": Param("random", "STN batches: random (independent draws) or epochs (shuffled passes)",
                          choices=("random", "epochs")),
    "frame_rotation": Param(0.0, "random rotation of STN training frames, up to this many degrees"),
    "frame_shift": Param(0.0, "random crop of STN training frames: shifted by up to this many pixels (of 48)"),
    "frame_brightness": Param(0.0, "random brightness change of STN training faces, up to this much (of 1)"),
    "frames_per_clip": Param(0, "frames each training clip gives the STN, evenly spaced (0 = all)"),
    "val_fraction": Param(0.2, "share of the training actors held out for early stopping (0 = none)"),
    "device": DEVICE,
}
#: The scratch recipe for frames (docs/augmentation.md): small rotations, random crops and
#: brightness on the training device; AdamW, one-cycle, label smoothing, shuffled epochs,
#: no early stopping and no validation split.
SCRATCH_STN = {"stn_optimizer": "adamw", "stn_weight_decay": 1e-2, "stn_schedule": "one_cycle",
               "stn_label_smoothing": 0.1, "stn_sampling": "epochs", "stn_patience": 0, "val_fraction": 0.0,
               "frame_rotation": 10.0, "frame_shift": 4.0, "frame_brightness": 0.1, "stn_max_epochs": 30}


def _stn(frame_output, **values):
    from .recognizer import STNFrameClassifier

    return STNFrameClassifier(
        weights=values["weights"], frame_output=frame_output, lr=values["stn_lr"],
        optimizer=values["stn_optimizer"], weight_decay=values["stn_weight_decay"],
        batch_size=values["stn_batch_size"], max_epochs=values["stn_max_epochs"], patience=values["stn_patience"],
        schedule=values["stn_schedule"], label_smoothing=values["stn_label_smoothing"],
        mixup_alpha=values["stn_mixup_alpha"], sampling=values["stn_sampling"], rotation=values["frame_rotation"],
        shift=values["frame_shift"], brightness=values["frame_brightness"], val_fraction=values["val_fraction"],
        device=values["device"])


def build_stn_vote(saliency, vad, frames_per_clip, merge_calm, **stn) -> Recipe:
    from emokit_core.estimators import FrameClipModel, MaxVoting

    from .frames import FaceSaliencyFrames

    # merge_calm: calm (class 1) votes as neutral (class 0), for models that never learnt calm
    vote = MaxVoting(merge={1: 0} if merge_calm else None)
    return Recipe(FaceSaliencyFrames(saliency=saliency, vad=vad),
                  FrameClipModel(_stn("posteriors", **stn), vote, max_frames_per_clip=frames_per_clip))


def build_stn_bilstm(saliency, vad, frames_per_clip, input, layers, hidden, lstm_batch_size, lstm_max_epochs,
                     lstm_patience, **stn) -> Recipe:
    from emokit_core.estimators import FrameClipModel

    from .bilstm import BiLSTMAggregator
    from .frames import FaceSaliencyFrames

    lstm = BiLSTMAggregator(layers=layers, hidden=hidden, batch_size=lstm_batch_size, max_epochs=lstm_max_epochs,
                            patience=lstm_patience, val_fraction=stn["val_fraction"], device=stn["device"])
    return Recipe(FaceSaliencyFrames(saliency=saliency, vad=vad),
                  FrameClipModel(_stn(input, **stn), lstm, max_frames_per_clip=frames_per_clip))


@hookimpl
def register_pipelines(register):
    quick_stn = {"stn_max_epochs": 10, "stn_patience": 3, "frames_per_clip": 10}
    register(PipelineSpec(
        "face.stn_vote", "face", "saliency-guided STN fine-tuned on frames -> max-voting (paper Table 3)",
        build_stn_vote,
        params={**STN_PARAMS, "merge_calm": Param(False, "count calm votes as neutral (for 7-class models)")},
        profiles={"paper": {}, "scratch": SCRATCH_STN, "quick": quick_stn}))
    register(PipelineSpec(
        "face.stn_bilstm", "face", "STN per-frame outputs -> attention bi-LSTM (paper best, Table 3)",
        build_stn_bilstm,
        params={**STN_PARAMS,
                "input": Param("flatten", "what the bi-LSTM reads per frame", choices=("flatten", "fc50", "posteriors")),
                "layers": Param(2, "bi-LSTM layers (and attention layers)", choices=(1, 2)),
                "hidden": Param(300, "units per LSTM direction (25-300)"),
                "lstm_batch_size": Param(64, "clips per bi-LSTM step"),
                "lstm_max_epochs": Param(500, "bi-LSTM epochs at most"),
                "lstm_patience": Param(30, "bi-LSTM epochs without macro-F1 gain before stopping")},
        profiles={"paper": {},
                  # scratch: without a validation split the bi-LSTM trains a fixed budget too
                  "scratch": {**SCRATCH_STN, "lstm_max_epochs": 30},
                  "quick": {**quick_stn, "layers": 1, "hidden": 50, "lstm_max_epochs": 12, "lstm_patience": 5}}))

EMOKIT_PLUGIN_API = 1


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
