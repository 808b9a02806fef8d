"""The paper's facial emotion recognizer (section 3.3) as emokit components and pipelines.

Frames: RAVDESS-like framing cut to the centred square, other videos cropped by a face
detector; a saliency map per frame; both at 48x48 (``emokit_plugins.face.frames``).

* ``face.stn_vote`` - the saliency-guided STN fine-tuned on frames -> max-voting.
* ``face.stn_bilstm`` - the same STN's per-frame outputs (flatten-810 by default) -> attention
  bi-LSTM (paper best: 2 layers of 300 units, 2 attention layers).
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, Recipe, lazy

WEIGHTS = Param(None, "STN checkpoint in the authors' layout (e.g. AffectNet); a name or a path", weights=True)
SALIENCY = Param("spectral_residual", "saliency component: spectral_residual, fine_grained, or a plugin's")
DEVICE = Param("auto", "cuda, cpu, or auto (a GPU where there is one)")
STN_PARAMS = {
    "weights": WEIGHTS, "saliency": SALIENCY,
    "stn_lr": Param(1e-3, "Adam learning rate of the STN"), "stn_batch_size": Param(128, "frames per STN step"),
    "stn_max_epochs": Param(500, "STN epochs at most"),
    "stn_patience": Param(30, "STN epochs without validation-accuracy gain before stopping"),
    "frames_per_clip": Param(0, "frames each training clip gives the STN, evenly spaced (0 = all)"),
    "val_fraction": Param(0.2, "share of the training actors held out for early stopping"), "device": DEVICE,
}


def _stn(weights, frame_output, stn_lr, stn_batch_size, stn_max_epochs, stn_patience, val_fraction, device):
    from .recognizer import STNFrameClassifier

    return STNFrameClassifier(weights=weights, frame_output=frame_output, lr=stn_lr, batch_size=stn_batch_size,
                              max_epochs=stn_max_epochs, patience=stn_patience, val_fraction=val_fraction,
                              device=device)


def build_stn_vote(weights, saliency, stn_lr, stn_batch_size, stn_max_epochs, stn_patience, frames_per_clip,
                   val_fraction, device, merge_calm) -> Recipe:
    from emokit_core.estimators import FrameClipModel, MaxVoting

    from .frames import FaceSaliencyFrames

    stn = _stn(weights, "posteriors", stn_lr, stn_batch_size, stn_max_epochs, stn_patience, val_fraction, device)
    # merge_calm: calm (class 1) votes as neutral (class 0), for models that never learnt calm
    vote = MaxVoting(merge={1: 0} if merge_calm else None)
    return Recipe(FaceSaliencyFrames(saliency=saliency), FrameClipModel(stn, vote, max_frames_per_clip=frames_per_clip))


def build_stn_bilstm(weights, saliency, stn_lr, stn_batch_size, stn_max_epochs, stn_patience, frames_per_clip,
                     val_fraction, device, input, layers, hidden, lstm_batch_size, lstm_max_epochs,
                     lstm_patience) -> Recipe:
    from emokit_core.estimators import FrameClipModel

    from .bilstm import BiLSTMAggregator
    from .frames import FaceSaliencyFrames

    stn = _stn(weights, input, stn_lr, stn_batch_size, stn_max_epochs, stn_patience, val_fraction, device)
    lstm = BiLSTMAggregator(layers=layers, hidden=hidden, batch_size=lstm_batch_size, max_epochs=lstm_max_epochs,
                            patience=lstm_patience, val_fraction=val_fraction, device=device)
    return Recipe(FaceSaliencyFrames(saliency=saliency), FrameClipModel(stn, lstm, max_frames_per_clip=frames_per_clip))


@hookimpl
def register_pipelines(register):
    quick_stn = {"stn_max_epochs": 10, "stn_patience": 3, "frames_per_clip": 12}
    register(PipelineSpec(
        "face.stn_vote", "face", "saliency-guided STN fine-tuned on frames -> max-voting (paper Table 3)",
        build_stn_vote,
        params={**STN_PARAMS, "merge_calm": Param(False, "count calm votes as neutral (for 7-class models)")},
        profiles={"paper": {}, "quick": quick_stn}))
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
                  "quick": {**quick_stn, "layers": 1, "hidden": 50, "lstm_max_epochs": 15, "lstm_patience": 5}}))

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
