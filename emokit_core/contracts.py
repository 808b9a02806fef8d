"""The data types and component interfaces plugins implement.

Data flows one way: corpus -> clips -> extractor -> recognizer -> [aggregator] ->
clip posteriors -> fuser.  Components follow scikit-learn's conventions: parameters are
set in ``__init__`` only, ``fit`` returns ``self``, fitted attributes end in ``_``, and
``predict_proba`` returns one column per class in the corpus's class order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # numpy is not imported at start-up: `emokit --help` stays fast
    import numpy as np

SPEECH = "speech"
FACE = "face"
FUSION = "fusion"
# what the names of each modality's pipelines start with
PIPELINE_PREFIX = {SPEECH: "speech.", FACE: "face.", FUSION: "fuse."}


@dataclass(frozen=True)
class Clip:
    """One labelled recording.

    ``audio_path`` is the file speech pipelines read and ``video_path`` the one face
    pipelines read; for an audio-visual mp4 both are the same file.
    """

    id: str
    actor: str
    label: str
    audio_path: Path | None = None
    video_path: Path | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def path(self) -> Path:
        return self.video_path or self.audio_path  # type: ignore[return-value]

    def media_path(self, modality: str) -> Path | None:
        return self.audio_path if modality == SPEECH else self.video_path


@dataclass
class Corpus:
    """Clips with an ordered class list and a subject-wise protocol.

    ``folds`` lists, for each fold, the actors held out in it; every actor is held out in
    exactly one fold.  ``problems`` collects files that were found but not used, each with
    the reason, so the CLI can report them.
    """

    name: str
    root: Path
    clips: list[Clip]
    classes: tuple[str, ...]
    folds: list[list[str]]
    problems: list[str] = field(default_factory=list)
    # the corpus-table name that read it and its options (PluginHost.read_corpus), so that it
    # can be read again the same way
    reader: str | None = None
    reader_options: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> frozenset[str]:
        found = set()
        for clip in self.clips:
            if clip.audio_path is not None:
                found.add(SPEECH)
            if clip.video_path is not None:
                found.add(FACE)
        return frozenset(found)

    def fold_of(self) -> dict[str, int]:
        return {actor: k for k, actors in enumerate(self.folds) for actor in actors}

    def fingerprint(self) -> str:
        """Hash of the clips' relative paths, sizes and labels (cheap; content is hashed per clip by the cache)."""
        import hashlib

        h = hashlib.sha256()
        h.update("\x1f".join(self.classes).encode())
        for clip in sorted(self.clips, key=lambda c: c.id):
            for path in (clip.audio_path, clip.video_path):
                if path is None:
                    continue
                rel = path.relative_to(self.root) if path.is_relative_to(self.root) else path
                size = path.stat().st_size if path.exists() else -1  # a vanished file changes the fingerprint
                h.update(f"{clip.id}\x1f{rel}\x1f{size}\x1f{clip.label}\x1e".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class VideoInfo:
    """What a face extractor learns about a video before its first frame."""

    width: int
    height: int
    fps: float
    frames: int | None  # as declared by the container; may be missing or wrong


class Extractor(Protocol):
    """Media -> features, deterministic, cached by the core.

    Speech extractors implement :meth:`~SpeechExtractor.extract_audio` (or the batched pair of
    :class:`BatchedSpeechExtractor`); face extractors implement :meth:`~FaceExtractor.open_clip`,
    which returns a :class:`FrameSink` the core feeds frame by frame so that a video is decoded
    once and never held whole in memory.  The core tells them apart by these methods (the
    runtime-checkable protocols below).  ``cache_version`` and
    ``weights_sha256`` are part of the cache key: bump the first when outputs change.  Pretrained
    weights reach a pipeline's ``build`` as :class:`~emokit_core.specs.WeightsRef` (declared
    with ``Param(..., weights=True)``); the runner records them in the run's registry row.
    """

    modality: str
    cache_version: str
    weights_sha256: str | None

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


@runtime_checkable
class SpeechExtractor(Protocol):
    """An :class:`Extractor` of one clip's audio at a time."""

    def extract_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray:
        """16 kHz mono float32 waveform -> a feature vector or a ``[steps, dim]`` array."""


@runtime_checkable
class BatchedSpeechExtractor(Protocol):
    """An :class:`Extractor` of speech whose model runs best on batches (a network on a GPU).

    ``prepare_audio`` runs per clip in the decoding workers (e.g. VAD, padding, an image);
    the core then calls ``extract_batch`` in the main process on up to ``batch_size``
    prepared clips, so decoding never leaves the model waiting.  A clip's features must not
    depend on which other clips share its batch.
    """

    batch_size: int

    def prepare_audio(self, audio: np.ndarray, sample_rate: int, clip: Clip) -> np.ndarray: ...

    def extract_batch(self, prepared: Sequence[np.ndarray]) -> Sequence[np.ndarray]: ...


class FrameSink(Protocol):
    """Receives a clip's frames one by one.  A sink whose ``wants_audio`` is true (and whose
    extractor's is) is also given the clip's 16 kHz mono audio, or ``None`` when the video has
    no audio track, through ``set_audio(audio, sample_rate)`` before ``close`` (e.g. to keep
    only the frames where someone speaks)."""

    def add(self, frame: np.ndarray) -> None:
        """One RGB ``uint8`` frame of shape ``[height, width, 3]``."""

    def close(self) -> np.ndarray:
        """The clip's features: a ``[frames, ...]`` array (or a vector)."""


@runtime_checkable
class FaceExtractor(Protocol):
    """An :class:`Extractor` of a video's frames."""

    def open_clip(self, clip: Clip, info: VideoInfo) -> FrameSink: ...


class VoiceActivityDetector(Protocol):
    """Finds the speech in a clip's audio: the ``vad`` component family (``create("vad", name)``),
    which speech extractors use to trim the waveform and face extractors to keep the frames
    where someone speaks.  ``cache_version`` joins the cache key of an extractor that uses it."""

    cache_version: str

    def trim(self, audio: np.ndarray, sample_rate: int, clip: Any = "") -> tuple[np.ndarray, dict[str, Any]]:
        """The audio from its first to its last speech, and ``info`` with ``found`` (bool) and,
        when found, ``start`` and ``end`` in seconds; the audio unchanged when none is found."""


@runtime_checkable
class Recognizer(Protocol):
    """A classifier over per-clip (or per-frame) features, scikit-learn style."""

    def fit(self, X: Any, y: np.ndarray) -> "Recognizer": ...

    def predict_proba(self, X: Any) -> np.ndarray: ...


@runtime_checkable
class Aggregator(Protocol):
    """Per-clip sequences of frame outputs -> clip posteriors.

    ``fit`` is a no-op for rules such as max-voting and trains sequence models such as the
    attention bi-LSTM.
    """

    def fit(self, sequences: Sequence[np.ndarray], y: np.ndarray) -> "Aggregator": ...

    def predict_proba(self, sequences: Sequence[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class AttendsToFrames(Protocol):
    """Optional: a clip model that weighs frames (an attention aggregator) says how much.

    The runner stores, for every held-out clip of a fold, the weights of its frames in the
    fold's ``attention`` artifact, so a report can show which frames mattered.
    """

    def frame_attention(self, X: Any) -> Sequence[np.ndarray] | None:
        """One ``[frames]`` array per clip, summing to 1; ``None`` when the model has none."""


@runtime_checkable
class Fuser(Protocol):
    """Late fusion: per-modality clip posteriors -> fused posteriors."""

    def fit(self, posteriors: Mapping[str, np.ndarray], y: np.ndarray) -> "Fuser": ...

    def predict_proba(self, posteriors: Mapping[str, np.ndarray]) -> np.ndarray: ...


class Pretrainer(Protocol):
    """A network trained on a source corpus of still images (``emokit pretrain NAME``): the
    ``pretrainer`` component family.  The core reads the source corpus, extracts each image with
    :meth:`extractor` (cached like any extraction), fits :meth:`model` on the ``train`` split,
    scores the ``test`` split and writes :meth:`export`'s file, which the plugin's pipelines take
    as ``weights=``; the registry records it with its provenance."""

    architecture: str  # what the weights are for, e.g. the pipelines' network name
    kind: str  # the weights' kind in the registry

    def extractor(self) -> Extractor:
        """What the model reads from each source image."""

    def model(self, epochs: int, seed: int, device: str) -> Recognizer:
        """An unfitted recognizer; its ``fit`` takes ``checkpoint=`` (resumable training)."""

    def export(self, fitted: Any, path: Any) -> None:
        """Write the fitted network to ``path`` in the layout the pipelines load."""
