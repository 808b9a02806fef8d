"""Face frames and saliency maps for the face pipelines (paper 3.3).

Every frame at the video's own rate.  For RAVDESS-like framing (a landscape frame whose
lateral bands are white), the white sides are cut to the centred square (1280x720 ->
720x720); for other videos a face detector crops the face (OpenCV's Haar cascade by
default; pluggable through the ``face_detector`` component family), falling back to the
centre square with a warning naming the clip.  The saliency map is computed from the
cropped original-resolution frame (OpenCV static saliency: spectral residual or
fine-grained; pluggable through the ``saliency`` component family, e.g. a learned model),
then both are resized to 48x48.  Output per clip: ``[frames, 2, 48, 48]`` uint8
(channel 0 the grayscale face, channel 1 the saliency map scaled to 0-255).

``vad`` (the paper's "with VAD" face models, Table 3): the frames are cut to the span from the
first to the last speech the voice activity detector finds in the clip's own audio track, the
same span the speech pipelines keep; a clip without speech, or without audio, keeps every frame.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from emokit_core.contracts import FACE, Clip, VideoInfo, VoiceActivityDetector
from emokit_core.images import area_resize, centre_square, is_ravdess_framing

class SpectralSaliency:
    """OpenCV static saliency (``spectral_residual`` or ``fine_grained``) on a downscaled
    copy of the crop (``work_size`` px; the maps are smooth, so this only saves time)."""

    def __init__(self, method: str = "spectral_residual", work_size: int = 128):
        import cv2

        makers = {"spectral_residual": cv2.saliency.StaticSaliencySpectralResidual_create,
                  "fine_grained": cv2.saliency.StaticSaliencyFineGrained_create}
        if method not in makers:
            raise ValueError(f"saliency method must be one of {sorted(makers)}, not {method!r}")
        self.method = method
        self.work_size = work_size
        self._model = makers[method]()

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        small = area_resize(gray, self.work_size)
        ok, saliency = self._model.computeSaliency(small)
        if not ok:
            return np.zeros_like(small, dtype=np.float32)
        saliency = saliency.astype(np.float32)
        top = float(saliency.max())
        return saliency / top if top > 0 else saliency


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (shipped with opencv-contrib 4.x): the largest face."""

    def __init__(self, min_size: int = 60):
        import cv2

        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.min_size = min_size

    def __call__(self, gray: np.ndarray) -> tuple[int, int, int] | None:
        """(top, left, side) of a square around the largest face, or None."""
        scale = 480.0 / max(gray.shape)
        import cv2

        small = cv2.resize(gray, None, fx=scale, fy=scale) if scale < 1 else gray
        faces = self._cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(int(self.min_size * min(1, scale)),) * 2)
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3]) / (scale if scale < 1 else 1)
        side = int(max(w, h) * 1.2)  # some margin around the detected box
        cy, cx = y + h / 2, x + w / 2
        top = int(np.clip(cy - side / 2, 0, max(0, gray.shape[0] - side)))
        left = int(np.clip(cx - side / 2, 0, max(0, gray.shape[1] - side)))
        return top, left, min(side, *gray.shape[:2])


class CentreSquare:
    """The "detector" of images that are already face crops (FER-2013, AffectNet): the frame's
    centre square."""

    def __call__(self, gray: np.ndarray) -> tuple[int, int, int]:
        return centre_square(*gray.shape[:2])


class _FaceSaliencySink:
    pixel_format = "gray"

    def __init__(self, extractor: "FaceSaliencyFrames", clip: Clip, info: VideoInfo):
        self.extractor = extractor
        self.clip = clip
        self.fps = info.fps
        self.box: tuple[int, int, int] | None = None
        self.frames: list[np.ndarray] = []
        self.saliency = extractor.saliency_model()
        self.wants_audio = extractor.wants_audio
        self.speech_span: tuple[float, float] | None = None  # seconds, from the clip's audio

    def set_audio(self, audio: np.ndarray | None, sample_rate: int) -> None:
        """The clip's decoded audio (None: the video has no audio track), before :meth:`close`."""
        if audio is None:
            warnings.warn(f"{self.clip.video_path}: no audio track to find speech in; keeping every frame",
                          stacklevel=2)
            return
        _, info = self.extractor.vad_model().trim(audio, sample_rate, self.clip)
        if info["found"]:
            self.speech_span = (info["start"], info["end"])

    def _crop_box(self, gray: np.ndarray) -> tuple[int, int, int]:
        h, w = gray.shape[:2]
        if is_ravdess_framing(gray):
            return centre_square(h, w)
        box = self.extractor.detector()(gray)
        if box is None:
            warnings.warn(f"{self.clip.video_path}: no face found in the first frame; using the centre square",
                          stacklevel=2)
            return centre_square(h, w)
        return box

    def add(self, frame: np.ndarray) -> None:
        import cv2

        if self.box is None:  # decided on the first frame: the camera does not move in such corpora
            self.box = self._crop_box(frame)
        top, left, side = self.box
        crop = frame[top: top + side, left: left + side]
        size = self.extractor.size
        face = area_resize(crop, size)
        saliency = cv2.resize(self.saliency(crop), (size, size), interpolation=cv2.INTER_AREA)
        self.frames.append(np.stack([face, np.round(saliency * 255).astype(np.uint8)]))

    def close(self) -> np.ndarray:
        size = self.extractor.size
        frames = self.frames
        if self.speech_span is not None and self.fps > 0:
            start, end = self.speech_span
            times = np.arange(len(frames)) / self.fps  # frame i is shown from i / fps on
            keep = np.flatnonzero((times + 1 / self.fps > start) & (times < end))
            frames = [frames[i] for i in keep] or frames
        return np.stack(frames) if frames else np.zeros((0, 2, size, size), np.uint8)


def spectral_residual(work_size: int = 128) -> SpectralSaliency:
    return SpectralSaliency("spectral_residual", work_size)


def fine_grained(work_size: int = 128) -> SpectralSaliency:
    return SpectralSaliency("fine_grained", work_size)


class FaceSaliencyFrames(BaseEstimator):
    """Every frame -> (48x48 grayscale face, 48x48 saliency map), ``[frames, 2, 48, 48]`` uint8.

    ``saliency`` and ``face_detector`` name components (``emokit_core.plugins.create``), so a
    plugin can register a learned saliency model or another detector and select it here.
    """

    modality = FACE
    weights_sha256 = None

    def __init__(self, size: int = 48, saliency: str = "spectral_residual", face_detector: str = "haar",
                 vad: str = "none"):
        self.size = size
        self.saliency = saliency
        self.face_detector = face_detector
        self.vad = vad

    @property
    def cache_version(self) -> str:
        version = "2"  # 2: two-step area resizing (area_resize)
        if self.vad == "none":
            return version
        return f"{version}+{self.vad_model().cache_version}"  # an unknown VAD name fails here, at planning

    @property
    def wants_audio(self) -> bool:
        """The frames are cut to the clip's speech, which is found in its audio."""
        return self.vad != "none"

    def vad_model(self) -> VoiceActivityDetector:
        """The ``vad`` component that finds the clip's speech (only when ``vad`` is not ``none``)."""
        from emokit_core.plugins import create

        return create("vad", self.vad)

    def saliency_model(self) -> Any:
        from emokit_core.plugins import create

        return create("saliency", self.saliency)

    def detector(self) -> Any:
        detector = getattr(self, "_detector", None)
        if detector is None:
            from emokit_core.plugins import create

            self._detector = detector = create("face_detector", self.face_detector)
        return detector

    def open_clip(self, clip: Clip, info: VideoInfo) -> _FaceSaliencySink:
        return _FaceSaliencySink(self, clip, info)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_detector", None)  # OpenCV objects do not pickle; rebuilt where used
        return state
