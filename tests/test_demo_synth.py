"""Tests of the synthetic demo corpus generator (tiny corpora only, so they stay fast)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from emokit_core.errors import CorpusError
from emokit_plugins.corpora import demo_synth as ds
from emokit_plugins.corpora.synth_cues import FACE_KEYS, make_actor
from emokit_plugins.corpora.synth_face import FaceRenderer

NAME = re.compile(r"^01-01-0[1-8]-0[12]-0[12]-\d\d-\d\d\.mp4$")
TINY = dict(actors=2, emotions=("neutral", "angry"), seed=7)  # 2 actors x (2 + 4) clips


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "corpus"
    calls = []
    out = ds.generate(root, progress=lambda done, total: calls.append((done, total)), workers=2, **TINY)
    return out, calls


# ------------------------------------------------------------------------------ clip list


def test_full_ravdess_layout_counts():
    specs = ds.clip_specs(24, 2, 0)
    assert len(specs) == 1440
    assert ds.default_repetitions(24) == 2 and ds.default_repetitions(10) == 1
    assert len(ds.clip_specs(10, ds.default_repetitions(10), 0)) == 300
    per_emotion = Counter(s.emotion_name for s in specs)
    assert per_emotion["neutral"] == 96
    assert all(per_emotion[e] == 192 for e in ds.EMOTIONS[1:])
    assert Counter(s.actor for s in specs) == {a: 60 for a in range(1, 25)}
    assert {s.intensity for s in specs if s.emotion == 1} == {1}
    assert len({s.filename for s in specs}) == 1440
    assert len({s.clip_seed for s in specs}) == 1440
    for s in specs:
        assert NAME.match(s.filename)
        fields = [int(x) for x in s.filename[:-4].split("-")]
        assert fields == [1, 1, s.emotion, s.intensity, s.statement, s.repetition, s.actor]
        assert s.relpath == f"Actor_{s.actor:02d}/{s.filename}"
        assert s.gender == ("male" if s.actor % 2 else "female")


def test_clip_seeds_do_not_depend_on_corpus_size():
    small = {s.filename: s.clip_seed for s in ds.clip_specs(2, 1, 3)}
    big = {s.filename: s.clip_seed for s in ds.clip_specs(12, 2, 3)}
    assert all(big[name] == seed for name, seed in small.items())
    other = {s.filename: s.clip_seed for s in ds.clip_specs(2, 1, 4)}
    assert all(other[name] != seed for name, seed in small.items())


@pytest.mark.parametrize("kwargs", [dict(actors=0), dict(actors=100), dict(repetitions=0), dict(seed=-1),
                                    dict(emotions=("bored",)), dict(emotions=())])
def test_bad_parameters(kwargs, tmp_path):
    params = dict(actors=2, repetitions=1, seed=0) | kwargs
    with pytest.raises(CorpusError):
        ds.clip_specs(**params)
    with pytest.raises(CorpusError):
        ds.generate(tmp_path / "c", **params)
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------------------ generation


def test_manifest(tiny):
    root, _ = tiny
    manifest = json.loads((root / ds.MANIFEST_NAME).read_text())
    specs = ds.clip_specs(2, 1, 7, emotions=("neutral", "angry"))
    assert manifest["generator"] == ds.GENERATOR_NAME
    assert manifest["generator_version"] == ds.GENERATOR_VERSION
    assert (manifest["seed"], manifest["actors"], manifest["repetitions"]) == (7, 2, 1)
    assert manifest["emotions"] == ["neutral", "angry"]
    assert manifest["clips"] == len(specs) == 12
    assert [f["path"] for f in manifest["files"]] == [s.relpath for s in specs]
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))
    assert on_disk == sorted(f["path"] for f in manifest["files"])
    assert ds.verify(root) == []
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no temporary folder left


def test_progress(tiny):
    _, calls = tiny
    assert calls == [(i, 12) for i in range(1, 13)]


def test_idempotent(tiny, monkeypatch):
    root, _ = tiny
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}

    def boom(*a, **k):
        raise AssertionError("should not generate again")

    monkeypatch.setattr(ds, "_make_clip", boom)
    assert ds.generate(root, **TINY) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_deterministic_bytes(tiny_demo, tmp_path):
    """Same parameters give the same bytes, whatever the corpus size or the number of workers
    (at 320x180, against the session's tiny corpus: 5 actors, seed 0)."""
    small = dict(actors=1, emotions=("neutral",), seed=0, height=180)
    a = ds.generate(tmp_path / "a", **small)
    b = ds.generate(tmp_path / "b", **small, workers=2)
    names = [s.relpath for s in ds.clip_specs(1, 1, 0, emotions=("neutral",))]
    assert len(names) == 2
    for name in names:
        data = (a / name).read_bytes()
        assert data == (b / name).read_bytes() == (tiny_demo / name).read_bytes()
    c = ds.generate(tmp_path / "c", **{**small, "seed": 1})
    assert (c / names[0]).read_bytes() != (a / names[0]).read_bytes()


def test_a_lower_resolution_draws_the_same_face(tiny_demo):
    """A corpus at 320x180 records its size and shows the 720p face scaled down, not another one."""
    import cv2
    manifest = ds.read_generation_record(tiny_demo)
    assert (manifest["width"], manifest["height"]) == (320, 180)
    spec = ds.clip_specs(1, 1, 0, emotions=("happy",))[-1]
    _, params, pose, blink = ds.render_clip(spec, 0)
    k = len(params) // 2
    faces = []
    for height in (720, 180):
        image = FaceRenderer(make_actor(0, 1), height).draw(params[k], pose[k], blink[k])
        assert image.shape == (height, height, 3)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        faces.append(cv2.resize(gray, (48, 48), interpolation=cv2.INTER_AREA).astype(float))
    assert np.abs(faces[0] - faces[1]).mean() < 4  # what the face pipelines see (48x48) barely changes
    with pytest.raises(CorpusError, match="multiple of 36"):
        ds.generate(Path(tiny_demo).parent / "odd", actors=1, emotions=("neutral",), height=200)


def test_mp4_format_and_metadata(tiny):
    av = pytest.importorskip("av")
    root, _ = tiny
    spec = ds.clip_specs(2, 1, 7, emotions=("angry",))[-1]
    with av.open(str(root / spec.relpath)) as box:
        comment = json.loads(box.metadata["comment"])
        assert comment["seed"] == 7 and comment["generator_version"] == ds.GENERATOR_VERSION
        assert "creation_time" not in box.metadata
        v, a = box.streams.video[0], box.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        assert v.average_rate == 30 and (v.width, v.height) == (1280, 720)
        assert a.rate == 48000 and a.channels == 2
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert 2.9 * 30 - 1 <= len(frames) <= 4.2 * 30 + 1
    mid = frames[len(frames) // 2]
    assert mid.shape == (720, 1280, 3)
    sides = np.concatenate([mid[:, :280], mid[:, -280:]], axis=1)
    assert sides.min() >= 250  # white everywhere outside the central square
    assert mid[:, 280:1000].min() < 100  # the face (hair, shirt, features) is drawn there
    with av.open(str(root / spec.relpath)) as box:
        audio = np.concatenate([f.to_ndarray() for f in box.decode(audio=0)], axis=1)
    assert audio.shape[0] == 2
    assert abs(audio.shape[1] / 48000 - len(frames) / 30) < 0.1
    assert np.sqrt(np.mean(audio ** 2)) > 0.01


def test_refuses_foreign_folder(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(CorpusError):
        ds.generate(root, actors=1, emotions=("neutral",))
    assert (root / "notes.txt").read_text() == "keep me"


def test_replaces_corpus_of_other_version(tmp_path):
    root = ds.generate(tmp_path / "c", actors=1, emotions=("neutral",), seed=1)
    manifest = json.loads((root / ds.MANIFEST_NAME).read_text())
    manifest["generator_version"] = "0"
    (root / ds.MANIFEST_NAME).write_text(json.dumps(manifest))
    (root / "Actor_01" / "stale.mp4").write_bytes(b"old")
    ds.generate(root, actors=1, emotions=("neutral",), seed=1)
    assert ds.read_generation_record(root)["generator_version"] == ds.GENERATOR_VERSION
    assert not (root / "Actor_01" / "stale.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_interrupted_generation_leaves_nothing(tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ds.generate(tmp_path / "c", actors=1, emotions=("neutral",), progress=stop)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ content


def _pitch(x: np.ndarray, sr: int = ds.SAMPLE_RATE) -> float:
    """Median autocorrelation pitch of the loud frames."""
    x = x[::3]
    sr //= 3
    w, hop = 640, 320
    frames = np.stack([x[i:i + w] for i in range(0, len(x) - w, hop)])
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    f0 = []
    for fr in frames[rms > 0.3 * rms.max()]:
        fr = fr - fr.mean()
        ac = np.correlate(fr, fr, "full")[w - 1:]
        lo, hi = sr // 500, sr // 70
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            f0.append(sr / k)
    return float(np.median(f0))


def _rendered(actor: int, emotion: str, seed: int = 0):
    specs = [s for s in ds.clip_specs(actor, 1, seed, emotions=(emotion,))
             if s.actor == actor and s.intensity == (1 if emotion == "neutral" else 2)]
    return [ds.render_clip(s, seed) for s in specs]


@pytest.mark.parametrize("actor", [1, 2])
def test_voice_follows_emotion(actor):
    angry, sad, neutral = (_rendered(actor, e) for e in ("angry", "sad", "neutral"))
    pitch = {k: np.mean([_pitch(r[0][0]) for r in v]) for k, v in (("angry", angry), ("sad", sad))}
    level = {k: np.mean([np.sqrt(np.mean(r[0] ** 2)) for r in v]) for k, v in
             (("angry", angry), ("sad", sad), ("neutral", neutral))}
    assert pitch["angry"] > 1.1 * pitch["sad"]
    assert level["angry"] > level["neutral"] > level["sad"]
    base = make_actor(0, actor).f0
    assert (base < 160) == (actor % 2 == 1)  # male voices are lower


def test_face_follows_emotion():
    keys = FACE_KEYS

    def hold(emotion):  # mean parameters over the middle of the clips
        ps = [r[1] for r in _rendered(1, emotion)]
        return np.mean([p[len(p) // 3: 2 * len(p) // 3].mean(0) for p in ps], axis=0)

    happy, sad, angry, surprised, neutral = (hold(e) for e in ("happy", "sad", "angry", "surprised", "neutral"))
    assert happy[keys.index("curve")] > neutral[keys.index("curve")] + 0.4 > sad[keys.index("curve")] + 0.4
    assert angry[keys.index("brow")] < neutral[keys.index("brow")] - 0.3
    assert surprised[keys.index("brow")] > neutral[keys.index("brow")] + 0.3
    assert surprised[keys.index("open")] > neutral[keys.index("open")] + 0.3
    # expressions build up: the first frames are close to the resting face
    p = _rendered(1, "surprised")[0][1]
    assert abs(p[0, keys.index("brow")] - neutral[keys.index("brow")]) < 0.25


def test_frames_differ_between_emotions():
    cv2 = pytest.importorskip("cv2")
    renderer = FaceRenderer(make_actor(0, 2))

    def face48(emotion):
        _, params, pose, blink = _rendered(2, emotion)[0]
        k = len(params) // 2
        img = cv2.cvtColor(renderer.draw(params[k], pose[k], 1.0), cv2.COLOR_BGR2GRAY)
        return cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA).astype(float)

    neutral, surprised = face48("neutral"), face48("surprised")
    assert np.abs(neutral - surprised).mean() > 1.0
    assert neutral[:, :2].min() == 255 and neutral[:, -2:].min() == 255  # white around the body
