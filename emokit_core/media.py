"""Media decoding: an mp4's audio and frames in one pass (PyAV), wav/flac with soundfile.

Audio always comes out as 16 kHz mono float32 (stereo down-mixed).  Frames are handed to
callbacks one at a time, so a clip is never held whole in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .contracts import VideoInfo
from .errors import MediaError

SAMPLE_RATE = 16_000
#: Part of every feature-cache key: bump it when what :func:`decode` hands out changes.
DECODER_VERSION = "2"
SILENCE_PEAK = 1e-4  # below -80 dBFS everywhere: nothing to recognise
AUDIO_FILES = {".wav", ".flac"}

FrameCallback = Callable[[np.ndarray], None]


def check_audible(audio: np.ndarray, path: Path) -> np.ndarray:
    if audio.size == 0:
        raise MediaError(f"{path}: the audio track is empty", "re-export the clip or remove it from the corpus")
    if not np.isfinite(audio).all():
        raise MediaError(f"{path}: the audio holds NaN or infinite samples", "re-export the clip")
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise MediaError(f"{path}: the audio is silent (peak below -80 dBFS)",
                         "check the recording, or remove the clip from the corpus")
    return audio


def resample(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return audio.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def read_audio_file(path: Path) -> np.ndarray:
    """A wav/flac file -> 16 kHz mono float32."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own and RuntimeError subclasses
        raise MediaError(f"{path}: cannot be read as audio ({_first_line(exc)})",
                         "check that it is a valid wav/flac file, or remove it") from exc
    return check_audible(resample(data.mean(axis=1), rate), path)


def decode(path: Path, *, audio: bool, on_video: Callable[[VideoInfo], Sequence[tuple[str, FrameCallback]]] | None = None,
           audio_required: bool = True) -> np.ndarray | None:
    """Decode ``path`` once.

    ``audio``: return the audio as 16 kHz mono float32 (a wav/flac is read with soundfile);
    with ``audio_required=False`` a video without an audio track gives ``None`` instead of an error.
    ``on_video(info)`` is called once the video stream is known and returns
    ``(pixel_format, callback)`` pairs (pixel_format ``rgb24`` or ``gray``); each decoded
    frame is converted once per format and passed to the callbacks.
    """
    path = Path(path)
    if path.suffix.lower() in AUDIO_FILES:
        if on_video is not None:
            raise MediaError(f"{path}: is an audio file, a face pipeline needs a video",
                             "give the clip an mp4 (audio-visual) file")
        return read_audio_file(path) if audio else None
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"{path}: the file is missing or empty", "re-copy the clip or remove it from the corpus")
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.* for corrupt or unknown containers
        raise MediaError(f"{path}: cannot be opened as media ({_first_line(exc)})",
                         "re-encode it (e.g. ffmpeg -i in.mp4 out.mp4) or remove it") from exc
    with container:
        streams = []
        audio_stream = container.streams.audio[0] if audio and container.streams.audio else None
        video_stream = container.streams.video[0] if on_video is not None and container.streams.video else None
        if audio and audio_stream is None and audio_required:
            raise MediaError(f"{path}: has no audio track", "speech pipelines need clips with sound")
        if on_video is not None and video_stream is None:
            raise MediaError(f"{path}: has no video track", "face pipelines need clips with video")
        chunks: list[np.ndarray] = []
        resampler = None
        if audio_stream is not None:
            streams.append(audio_stream)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        consumers: Sequence[tuple[str, FrameCallback]] = ()
        frames_seen = 0
        if video_stream is not None:
            video_stream.thread_type = "AUTO"
            streams.append(video_stream)
            rate = video_stream.average_rate or video_stream.guessed_rate
            info = VideoInfo(width=video_stream.codec_context.width, height=video_stream.codec_context.height,
                             fps=float(rate) if rate else 0.0, frames=video_stream.frames or None)
            consumers = on_video(info)  # type: ignore[misc]
        try:
            for frame in container.decode(*streams):
                if isinstance(frame, av.AudioFrame):
                    for out in resampler.resample(frame):  # type: ignore[union-attr]
                        chunks.append(out.to_ndarray().reshape(-1))
                else:
                    frames_seen += 1
                    converted: dict[str, np.ndarray] = {}
                    for fmt, callback in consumers:
                        if fmt not in converted:
                            converted[fmt] = gray_frame(frame) if fmt == "gray" else frame.to_ndarray(format=fmt)
                        callback(converted[fmt])
            if resampler is not None:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except MediaError:
            raise
        except Exception as exc:  # decoding errors part-way through a corrupt file
            raise MediaError(f"{path}: decoding failed ({_first_line(exc)})",
                             "re-encode it (e.g. ffmpeg -i in.mp4 out.mp4) or remove it") from exc
    if video_stream is not None and frames_seen == 0:
        raise MediaError(f"{path}: the video track holds no frames", "re-encode the clip or remove it")
    if audio_stream is None:
        return None
    return check_audible(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), path)


# 8-bit YUV layouts whose first plane is the luma (Y) at the frame's full size.
_LUMA_FIRST = {"yuv420p", "yuv422p", "yuv444p", "yuv440p", "yuv411p", "yuv410p", "nv12", "nv21",
               "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"}
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def gray_frame(frame) -> np.ndarray:
    """A decoded video frame as full-range 8-bit gray.

    For 8-bit YUV this is the Y plane itself, stretched from the limited (16-235) range unless
    the frame is full range: the same numbers as FFmpeg's conversion to ``gray``, without its
    cost (about half a millisecond a 720p frame).  Other formats go through FFmpeg.
    """
    name = frame.format.name
    if name not in _LUMA_FIRST:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    if name.startswith("yuvj") or frame.color_range == 2:  # JPEG (full) range: already gray
        return luma.copy()
    import cv2

    return cv2.LUT(luma, _LIMITED_TO_FULL)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
