"""One decode of a clip's media for every extractor that reads it.

The runner (in its worker processes), ``emokit predict`` and the plugin conformance checks all
feed extractors through :func:`extract_clip`, so a clip is decoded the same way everywhere:
each media file once, frames streamed to the face extractors' sinks, the audio handed to the
speech extractors and to sinks that ask for it (``wants_audio``, e.g. frames trimmed to the
clip's speech).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import numpy as np

from .contracts import FACE, SPEECH, Clip, VideoInfo
from .errors import MediaError


@dataclass
class ExtractedClip:
    """``features``: per-clip outputs by key; ``prepared``: what batched speech extractors
    prepared (for one ``extract_batch`` over many clips); ``video``/``frames``: the video stream
    as declared and the number of frames decoded (None/0 without video)."""

    features: dict[Hashable, np.ndarray] = field(default_factory=dict)
    prepared: dict[Hashable, np.ndarray] = field(default_factory=dict)
    video: VideoInfo | None = None
    frames: int = 0


def extract_clip(clip: Clip, extractors: Sequence[tuple[Hashable, Any]], *, batch_here: bool = False
                 ) -> ExtractedClip:
    """Run ``(key, extractor)`` pairs on ``clip``.

    A batched speech extractor (``prepare_audio`` / ``extract_batch``) only prepares here unless
    ``batch_here`` (then it runs on a batch of one).  Raises :class:`MediaError` naming the file
    when media cannot be decoded or an extractor gives nothing usable.
    """
    from .media import SAMPLE_RATE, decode

    out = ExtractedClip()
    by_path: dict[Any, list[tuple[Hashable, Any]]] = {}
    for key, ext in extractors:
        path = clip.media_path(ext.modality)
        if path is None:
            raise MediaError(f"clip {clip.id} has no {ext.modality} media", "give it an audio or video file")
        by_path.setdefault(path, []).append((key, ext))
    for path, pending in by_path.items():
        speech = [(k, e) for k, e in pending if e.modality == SPEECH]
        face = [(k, e) for k, e in pending if e.modality == FACE]
        sinks: list[tuple[Hashable, Any]] = []

        def on_video(info: VideoInfo):
            out.video = info
            consumers = []
            for key, ext in face:
                sink = ext.open_clip(clip, info)
                sinks.append((key, sink))
                consumers.append((getattr(sink, "pixel_format", "rgb24"), sink.add))

            def count(_frame: np.ndarray) -> None:
                out.frames += 1

            # Counted in a format already converted for a sink, so counting costs nothing.
            return [*consumers, (consumers[0][0], count)]

        # Sinks that want the audio are told only after decoding; open_clip creates them, so
        # ask the extractors (a sink's wants_audio mirrors its extractor's).
        sink_audio = any(getattr(ext, "wants_audio", False) for _, ext in face)
        audio = decode(path, audio=bool(speech) or sink_audio, audio_required=bool(speech),
                       on_video=on_video if face else None)
        for key, ext in speech:
            if hasattr(ext, "extract_batch"):
                prepared = np.asarray(ext.prepare_audio(audio, SAMPLE_RATE, clip))
                if batch_here:
                    out.features[key] = np.asarray(ext.extract_batch([prepared])[0])
                else:
                    out.prepared[key] = prepared
            else:
                out.features[key] = np.asarray(ext.extract_audio(audio, SAMPLE_RATE, clip))
        for key, sink in sinks:
            if getattr(sink, "wants_audio", False):
                sink.set_audio(audio, SAMPLE_RATE)
            out.features[key] = np.asarray(sink.close())
        for key, ext in pending:
            features = out.features.get(key)
            if features is not None and (features.size == 0 or not np.isfinite(features).all()):
                raise MediaError(f"{path}: {type(ext).__name__} produced no usable features",
                                 "check the clip; it may be too short, silent or blank")
    return out
