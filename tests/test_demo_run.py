"""End to end on mp4 clips of the demo generator: one decode, both modalities, fusion, bad clips."""

import json
import shutil

import numpy as np

from emokit_core.contracts import VideoInfo
from emokit_core.media import SAMPLE_RATE, decode
from emokit_plugins.corpora.demo_synth import read_generation_record

from .cli import emokit

MAIN = ["speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear"]


def test_one_pass_decode_of_an_mp4(tiny_demo):
    clip = sorted(tiny_demo.rglob("*.mp4"))[0]
    seen = {}
    frames = []

    def on_video(info: VideoInfo):
        seen["info"] = info
        return [("gray", lambda f: frames.append(f.shape)), ("rgb24", lambda f: seen.setdefault("rgb", f.shape))]

    audio = decode(clip, audio=True, on_video=on_video)
    info = seen["info"]
    manifest = read_generation_record(tiny_demo)
    width, height = manifest["width"], manifest["height"]
    assert (info.width, info.height, round(info.fps)) == (width, height, 30)
    assert frames[0] == (height, width) and seen["rgb"] == (height, width, 3)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # audio and video cover the same time span
    assert abs(len(audio) / SAMPLE_RATE - len(frames) / info.fps) < 0.15


def test_main_command_on_mp4_clips_with_a_corrupt_one(tmp_path, tiny_demo):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_demo, corpus)
    broken = corpus / "Actor_03" / "01-01-03-02-01-01-03.mp4"
    broken.write_bytes(broken.read_bytes()[:2000])  # truncated: the moov atom is gone
    db = str(tmp_path / "registry.db")
    args = ["run", *MAIN, "--data", str(corpus), "--folds", "grouped", "--registry", db, "--workers", "2", "--json"]
    result = emokit(*args)
    assert result.returncode == 0, result.stderr
    assert "01-01-03-02-01-01-03.mp4" in result.stderr and "warning" in result.stderr
    out = json.loads(result.stdout)
    assert list(out["skipped_clips"]) == ["01-03-02-01-01-03"]
    runs = {r["pipeline"]: r for r in out["runs"]}
    assert set(runs) == set(MAIN)
    for r in runs.values():
        assert len(r["fold_scores"]) == 5 and int(r["pooled"]["n"]) == 49
    assert runs["speech.mfcc_svm"]["pooled"]["accuracy"] > runs["speech.mfcc_svm"]["zeror"]
    assert runs["face.pixels_vote"]["pooled"]["accuracy"] > runs["face.pixels_vote"]["zeror"]
    board = json.loads(emokit("leaderboard", "--registry", db, "--json").check().stdout)
    assert {(r["model"], r["n_folds"]) for r in board} == {(m, 5) for m in MAIN}
    # Second run: version 2 of each, every feature from the cache.
    again = json.loads(emokit(*args).check().stdout)
    assert [r["version"] for r in again["runs"]] == [2, 2, 2]
    assert again["cache"]["misses"] == 2  # only the corrupt clip is tried again (two extractors)
    assert again["cache"]["hits"] == 2 * 49
