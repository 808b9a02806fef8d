"""The paper's facial emotion recognizer (section 3.3) as emokit components and pipelines.

Frames: RAVDESS-like framing cut to the centred square, other videos cropped by a face
detector; a saliency map per frame; both at 48x48 (``emokit_plugins.face.frames``).
"""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, lazy

EMOKIT_PLUGIN_API = 1


@hookimpl
def register_components(register):
    register(ComponentSpec("extractor", "face_saliency_frames", lazy("emokit_plugins.face.frames:FaceSaliencyFrames"),
                           "every frame: 48x48 face + saliency map"))
    register(ComponentSpec("saliency", "spectral_residual", lazy("emokit_plugins.face.frames:spectral_residual"),
                           "OpenCV static saliency, spectral residual (default)"))
    register(ComponentSpec("saliency", "fine_grained", lazy("emokit_plugins.face.frames:fine_grained"),
                           "OpenCV static saliency, fine-grained"))
    register(ComponentSpec("face_detector", "haar", lazy("emokit_plugins.face.frames:HaarFaceDetector"),
                           "OpenCV frontal-face Haar cascade; the largest face"))
