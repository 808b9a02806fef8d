"""Deterministic synthetic audio-visual emotion corpus in the RAVDESS layout.

The demo corpus stands in for RAVDESS (audio-visual speech subset) wherever emokit needs data
without a download: the README's main command, the tests and CI.  It keeps RAVDESS's layout and
naming (``Actor_XX/01-01-EE-II-SS-RR-AA.mp4``), its 8 emotions at two intensities (neutral only
at the normal one), two statements, gender-balanced actors (odd = male, even = female) and its
media format (H.264 30 fps 1280x720 with white sides, AAC 48 kHz stereo).

Every clip is drawn from a random generator seeded by ``(seed, actor, emotion, intensity,
statement, repetition)`` only, so clips do not depend on each other, on the order they are made
in, or on how many actors the corpus holds.  With the same FFmpeg/x264 build the mp4 files are
byte-identical (x264 runs single-threaded, the muxer in bit-exact mode, no creation time).

Cue design (calibrated with ``bench/calibrate_demo.py``): each modality separates six groups of
the eight emotions and confuses a pair the other one separates.

* voice: calm vs neutral (breathy, slower, softer) and fearful vs surprised (fearful is faster,
  higher, trembling) are told apart by the voice; happy/surprised and angry/disgust share their
  vocal settings;
* face: happy vs surprised (smile vs raised brows and open mouth) and angry vs disgust (lowered
  inner brows and bared teeth vs wrinkled nose and raised upper lip) are told apart by the face;
  calm/neutral and fearful/surprised look alike.

Actors differ in head shape, skin tone, hair, eye spacing and resting expression, in pitch,
formants, speaking rate, loudness and voice quality, and in how expressive they are, so that
a model has to learn the emotion cues rather than the actors.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from emokit_core.errors import CorpusError

from .synth_cues import (EMOTIONS, FPS, HEIGHT, SAMPLE_RATE, ClipSpec, clip_cues, clip_specs, default_repetitions,
                         emotion_codes, frame_width, make_actor, plan_clip)
from .synth_face import FaceRenderer, face_track
from .synth_voice import synth_audio

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "EMOTIONS",
    "ClipSpec",
    "default_repetitions",
    "clip_specs",
    "frame_width",
    "generate",
    "read_generation_record",
    "verify",
]

GENERATOR_NAME = "emokit-demo-synth"
GENERATOR_VERSION = "2"  # 2: x264 ultrafast and the fast AAC coder (a third less generation time)
MANIFEST_NAME = "emokit-demo.json"
# ultrafast: most of a clip's generation time is encoding (superfast files are a third the size, and
# take 40 % longer to write); one thread for byte-identical output
X264_OPTIONS = {"preset": "ultrafast", "crf": "28", "threads": "1"}
AAC_OPTIONS = {"aac_coder": "fast"}  # the default two-loop coder takes 3x longer, for nothing a model hears
AAC_BIT_RATE = 128000


# ----------------------------------------------------------------------------------------------
# One clip
# ----------------------------------------------------------------------------------------------


def _comment(seed: int, spec: ClipSpec) -> str:
    return json.dumps({"generator": GENERATOR_NAME, "generator_version": GENERATOR_VERSION, "seed": int(seed),
                       "clip": spec.filename}, sort_keys=True)


def render_clip(spec: ClipSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The clip's content without encoding: (audio (2, n) float32, face params, pose, blink)."""
    actor = make_actor(seed, spec.actor)
    r_cue, r_time, r_audio, r_face = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.clip_seed).spawn(4))
    face, voice, contour = clip_cues(spec, actor, r_cue)
    plan = plan_clip(spec, actor, voice, r_time)
    audio = synth_audio(spec, actor, plan, voice, contour, r_audio)
    params, pose, blink = face_track(spec, actor, plan, face, r_face)
    return audio, params, pose, blink


def _check_height(height: int) -> None:
    # a multiple of 36 keeps 16:9 frames, the face square and its chroma planes on whole pixels
    if not isinstance(height, (int, np.integer)) or not 144 <= height <= 1080 or height % 36:
        raise CorpusError(f"height must be a multiple of 36 in 144..1080 (720 = RAVDESS), got {height!r}")


def _write_clip(path: Path, spec: ClipSpec, seed: int, height: int = HEIGHT) -> None:
    import av

    actor = make_actor(seed, spec.actor)
    audio, params, pose, blink = render_clip(spec, seed)
    renderer = FaceRenderer(actor, height)
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as box:
        box.metadata["comment"] = _comment(seed, spec)
        vs = box.add_stream("libx264", rate=FPS, options=dict(X264_OPTIONS))
        vs.width, vs.height, vs.pix_fmt = frame_width(height), height, "yuv420p"
        aus = box.add_stream("aac", rate=SAMPLE_RATE, layout="stereo", options=dict(AAC_OPTIONS))
        aus.bit_rate = AAC_BIT_RATE
        for k in range(len(params)):
            renderer.draw(params[k], pose[k], blink[k])
            frame = av.VideoFrame.from_ndarray(renderer.to_i420(), format="yuv420p")
            frame.pts = k
            box.mux(vs.encode(frame))
        box.mux(vs.encode(None))
        for k in range(0, audio.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, k:k + 1024]), format="fltp", layout="stereo")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = k
            box.mux(aus.encode(frame))
        box.mux(aus.encode(None))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _make_clip(folder: str, spec: ClipSpec, seed: int, height: int = HEIGHT) -> tuple[str, str, int]:
    path = Path(folder) / spec.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_clip(path, spec, seed, height)
    return spec.relpath, _sha256(path), path.stat().st_size


def _init_worker() -> None:
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 missing is reported by the clip itself
        pass


# ----------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------


def _params(seed: int, actors: int, repetitions: int, codes: tuple[int, ...], height: int) -> dict:
    return {
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "actors": int(actors),
        "repetitions": int(repetitions),
        "emotions": [EMOTIONS[c - 1] for c in codes],
        "height": int(height),
    }


def read_generation_record(root: Path) -> dict | None:
    """What generated the corpus (its manifest JSON), or None when the folder has none (or an unreadable one)."""
    try:
        with open(Path(root) / MANIFEST_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete(root: Path, manifest: dict | None, params: dict) -> bool:
    if manifest is None or any(manifest.get(k) != v for k, v in params.items()):
        return False
    files = manifest.get("files") or []
    return all((root / f["path"]).is_file() for f in files)


def verify(root: Path) -> list[str]:
    """Files whose SHA-256 no longer matches the manifest (or that are missing)."""
    root = Path(root)
    manifest = read_generation_record(root)
    if manifest is None:
        raise CorpusError(f"{root} holds no readable {MANIFEST_NAME}", hint="generate the demo corpus again")
    bad = []
    for f in manifest.get("files", []):
        p = root / f["path"]
        if not p.is_file() or _sha256(p) != f["sha256"]:
            bad.append(f["path"])
    return bad


def _remove_stale_temps(root: Path) -> None:
    """Remove what killed generations left behind (temporary and replaced corpora)."""
    stale = list(root.parent.glob(f".{root.name}.tmp-*")) + list(root.parent.glob(f".{root.name}.old-*"))
    for p in stale:
        try:
            pid = int(p.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        try:
            os.kill(pid, 0)
            continue  # still running: maybe another generation of the same corpus
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(p, ignore_errors=True)


def generate(
    root: Path,
    *,
    actors: int = 10,
    repetitions: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    emotions: Sequence[str | int] | None = None,
    height: int = HEIGHT,
) -> Path:
    """Generate the demo corpus into ``root`` (``Actor_XX/*.mp4`` plus ``emokit-demo.json``).

    Returns at once when ``root`` already holds a complete corpus with the same parameters and
    generator version.  A corpus made by another version or with other parameters is replaced;
    a folder that holds anything else is never touched.  Files are written into a temporary
    sibling folder that is renamed at the end, so an interrupted run leaves no half corpus.
    ``emotions`` restricts the emotions and ``height`` lowers the frame size (16:9, the face
    scaled with it) for tests that need no RAVDESS resolution; both are recorded in the manifest.
    """
    root = Path(root).expanduser().absolute()
    if repetitions is None:
        repetitions = default_repetitions(actors)
    specs = clip_specs(actors, repetitions, seed, emotions=emotions)
    codes = emotion_codes(emotions)
    _check_height(height)
    params = _params(seed, actors, repetitions, codes, height)

    old = read_generation_record(root)
    if _complete(root, old, params):
        return root
    if root.exists():
        if not root.is_dir():
            raise CorpusError(f"{root} exists and is not a folder", hint="choose another corpus folder")
        if old is None and any(root.iterdir()):
            raise CorpusError(f"{root} is not empty and holds no {MANIFEST_NAME}",
                              hint="point the demo corpus at an empty or new folder")
    if workers < 1:
        raise CorpusError(f"workers must be at least 1, got {workers}")

    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        results: dict[str, tuple[str, int]] = {}
        total = len(specs)
        if workers == 1 or total < 2:
            for i, spec in enumerate(specs, 1):
                rel, sha, size = _make_clip(str(tmp), spec, seed, height)
                results[rel] = (sha, size)
                if progress is not None:
                    progress(i, total)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx, initializer=_init_worker) as pool:
                futures = [pool.submit(_make_clip, str(tmp), spec, seed, height) for spec in specs]
                try:
                    for i, fut in enumerate(as_completed(futures), 1):
                        rel, sha, size = fut.result()
                        results[rel] = (sha, size)
                        if progress is not None:
                            progress(i, total)
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        files = [{"path": s.relpath, "sha256": results[s.relpath][0], "bytes": results[s.relpath][1]} for s in specs]
        fingerprint = hashlib.sha256("".join(f["path"] + f["sha256"] for f in files).encode()).hexdigest()
        manifest = dict(params)
        manifest.update({
            "layout": "ravdess",
            "fps": FPS,
            "width": frame_width(height),
            "sample_rate": SAMPLE_RATE,
            "channels": 2,
            "clips": len(files),
            "fingerprint": fingerprint,
            "files": files,
        })
        with open(tmp / MANIFEST_NAME, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
        _install(tmp, root, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _install(tmp: Path, root: Path, params: dict) -> None:
    """Move the finished corpus into place, replacing an older demo corpus."""
    trash = None
    if root.exists():
        current = read_generation_record(root)
        if _complete(root, current, params):  # another process finished the same corpus first
            shutil.rmtree(tmp, ignore_errors=True)
            return
        if current is None and any(root.iterdir()):
            raise CorpusError(f"{root} is not empty and holds no {MANIFEST_NAME}",
                              hint="point the demo corpus at an empty or new folder")
        trash = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(root, trash)
    os.rename(tmp, root)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
