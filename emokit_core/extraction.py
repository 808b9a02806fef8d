"""Feature extraction: one decode of a clip's media for every extractor that reads it, and a
corpus's features planned, spread over worker processes, batched and cached.

The runner (through :func:`extract_corpus`), ``emokit predict`` and the plugin conformance
checks all feed extractors through :func:`extract_clip`, so a clip is decoded the same way
everywhere: each media file once, frames streamed to the face extractors' sinks, the audio
handed to the speech extractors and to sinks that ask for it (``wants_audio``, e.g. frames
trimmed to the clip's speech).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from .cache import FeatureCache, extractor_key
from .contracts import FACE, SPEECH, BatchedSpeechExtractor, Clip, Corpus, VideoInfo
from .errors import MediaError
from .progress import Reporter


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
            if isinstance(ext, BatchedSpeechExtractor):
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


# -- a corpus ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    clip: Clip
    extractors: tuple[tuple[str, str, Any], ...]  # (cache key, modality, extractor)


def _extract_clip(job: _Job, cache_root: str) -> tuple[str, str | None, dict[str, np.ndarray]]:
    """Decode a clip once and run every pending extractor on it.

    Per-clip extractors store their features in the cache here; batched extractors only
    ``prepare_audio`` here (in the worker) and hand the result back for one batched model call
    in the parent.  Returns (clip id, error or None, {cache key: prepared input}).
    """
    cache = FeatureCache(cache_root)
    try:
        extracted = extract_clip(job.clip, [(key, ext) for key, _, ext in job.extractors])
    except MediaError as exc:
        return job.clip.id, f"{exc.message} ({exc.hint})" if exc.hint else exc.message, {}
    for key, features in extracted.features.items():
        cache.store(key, features)
    return job.clip.id, None, extracted.prepared


class _Batcher:
    """Collects prepared inputs per batched extractor and runs its model a batch at a time."""

    def __init__(self, cache: FeatureCache, extractors: Mapping[str, Any]):
        self.cache = cache
        self.pending: dict[int, list[tuple[str, np.ndarray]]] = {}
        self.extractors = {id(e): e for e in extractors.values() if isinstance(e, BatchedSpeechExtractor)}

    def add(self, key: str, extractor: Any, prepared: np.ndarray) -> None:
        queue = self.pending.setdefault(id(extractor), [])
        queue.append((key, prepared))
        if len(queue) >= getattr(extractor, "batch_size", 32):
            self._run(extractor, queue)

    def flush(self) -> None:
        for ident, queue in self.pending.items():
            if queue:
                self._run(self.extractors[ident], queue)

    def _run(self, extractor: Any, queue: list[tuple[str, np.ndarray]]) -> None:
        features = extractor.extract_batch([p for _, p in queue])
        for (key, _), feature in zip(queue, features):
            self.cache.store(key, np.asarray(feature))
        queue.clear()


def _one_blas_thread() -> None:
    """Worker processes already run in parallel: nested BLAS threads would only contend."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def extract_corpus(corpus: Corpus, recipes: Mapping[str, Any], cache: FeatureCache, reporter: Reporter,
                   workers: int = 1) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Fill the cache for every (clip, pipeline) of ``recipes`` ({pipeline: Recipe}); return cache keys
    per pipeline and the clips skipped, with why.  ``workers`` processes decode (and prepare) while
    this one runs the batched models."""
    # Pipelines without an extractor (ZeroR) read no media.
    recipes = {name: r for name, r in recipes.items() if r.extractor is not None}
    ext_keys = {name: extractor_key(f"{type(r.extractor).__module__}.{type(r.extractor).__qualname__}",
                                    r.extractor) for name, r in recipes.items()}
    keys: dict[str, dict[str, str]] = {name: {} for name in recipes}
    jobs: list[_Job] = []
    skipped: dict[str, str] = {}
    with reporter.task("fingerprinting clips", len(corpus.clips)) as advance:
        for clip in corpus.clips:
            pending = []
            for name, recipe in recipes.items():
                modality = recipe.extractor.modality
                path = clip.media_path(modality)
                if path is None:
                    skipped[clip.id] = f"has no {modality} media"
                    break
                try:
                    fp = cache.clip_fingerprint(clip, modality)
                except OSError as exc:
                    skipped[clip.id] = f"{path}: cannot be read ({exc.strerror})"
                    break
                key = cache.key(fp, ext_keys[name])
                keys[name][clip.id] = key
                if cache.has(key):
                    cache.hits += 1
                else:
                    pending.append((key, modality, recipe.extractor))
            if pending and clip.id not in skipped:
                jobs.append(_Job(clip, tuple(pending)))
            advance()
    cache.misses += sum(len(j.extractors) for j in jobs)
    batcher = _Batcher(cache, {name: r.extractor for name, r in recipes.items()})
    owner = {key: ext for job in jobs for key, _, ext in job.extractors}
    with reporter.task("extracting features", len(jobs)) as advance:
        if workers > 1 and len(jobs) > 1:
            # Workers decode (and prepare) while this process runs the batched models.
            with ProcessPoolExecutor(workers, initializer=_one_blas_thread) as pool:
                # A bounded window of clips in flight keeps memory flat however large the corpus.
                window: deque = deque()
                for job in jobs:
                    window.append(pool.submit(_extract_clip, job, str(cache.root)))
                    if len(window) >= 8 * workers:
                        _store_prepared(*window.popleft().result(), skipped, batcher, owner)
                        advance()
                while window:
                    _store_prepared(*window.popleft().result(), skipped, batcher, owner)
                    advance()
        else:
            for job in jobs:
                _store_prepared(*_extract_clip(job, str(cache.root)), skipped, batcher, owner)
                advance()
        batcher.flush()
    return keys, skipped


def _store_prepared(clip_id: str, error: str | None, prepared: Mapping[str, np.ndarray], skipped: dict[str, str],
             batcher: _Batcher, owner: Mapping[str, Any]) -> None:
    if error:
        skipped[clip_id] = error
        return
    for key, item in prepared.items():
        batcher.add(key, owner[key], item)
