"""Face frames and saliency: RAVDESS framing, detector fallback, odd videos."""

import warnings

import numpy as np
import pytest

from emokit_core.contracts import Clip, VideoInfo
from emokit_core.media import decode
from emokit_core.images import area_resize, centre_square, is_ravdess_framing
from emokit_plugins.face.frames import FaceSaliencyFrames


def frames_of(extractor, path):
    clip = Clip("c", "01", "happy", video_path=path)
    sinks = []

    def on_video(info: VideoInfo):
        sinks.append(extractor.open_clip(clip, info))
        return [(sinks[0].pixel_format, sinks[0].add)]

    decode(path, audio=False, on_video=on_video)
    return sinks[0].close()


def test_white_sides_are_cut_to_the_centre_square():
    frame = np.full((720, 1280), 255, np.uint8)
    frame[:, 280:1000] = 90  # the 720x720 picture between white bands
    assert is_ravdess_framing(frame)
    assert centre_square(720, 1280) == (0, 280, 720)
    assert not is_ravdess_framing(np.full((720, 1280), 90, np.uint8))
    assert not is_ravdess_framing(np.full((1280, 720), 255, np.uint8))  # portrait


@pytest.mark.parametrize("side, size", [(720, 128), (720, 48), (537, 128), (180, 48), (100, 128)])
def test_area_resize_is_one_area_average_up_to_rounding(side, size):
    """The two-step reduction (an integer step, then the rest) gives what one INTER_AREA gives, to
    about a grey level (the footprints of the averages differ by a fraction of a pixel)."""
    import cv2

    rng = np.random.default_rng(side)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (side, side), dtype=np.uint8), (0, 0), 3)
    ours = area_resize(smooth, size).astype(int)
    assert ours.shape == (size, size)
    direct = cv2.resize(smooth, (size, size), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(ours - direct).mean() < 1.5 and np.abs(ours - direct).max() <= 12


def test_demo_clip_gives_a_face_and_a_saliency_map_per_frame(tiny_demo):
    path = sorted(tiny_demo.rglob("*.mp4"))[0]
    out = frames_of(FaceSaliencyFrames(), path)
    assert out.dtype == np.uint8 and out.shape[1:] == (2, 48, 48) and len(out) > 80  # every frame, 30 fps
    face, saliency = out[0, 0].astype(int), out[0, 1].astype(int)
    assert face.std() > 10 and face.min() < 150  # a drawn face, not a white band
    assert saliency.max() > 200 and saliency.min() < 128  # normalised map, area-resized to 48x48


def write_video(path, frames, fps=25):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_portrait_grayscale_video_without_a_face_falls_back_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "portrait.mp4"
    write_video(path, [rng.integers(0, 255, (320, 180), dtype=np.uint8) for _ in range(10)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = frames_of(FaceSaliencyFrames(), path)
    assert out.shape == (10, 2, 48, 48)
    assert any("portrait.mp4: no face found" in str(w.message) for w in caught)


def test_saliency_and_detector_are_components():
    from emokit_core.errors import UnknownNameError

    extractor = FaceSaliencyFrames(saliency="fine_grained")
    image = np.zeros((96, 96), np.uint8)
    image[30:60, 30:60] = 255
    saliency = extractor.saliency_model()(image)
    assert saliency.shape == (128, 128) and saliency.max() == pytest.approx(1.0)
    with pytest.raises(UnknownNameError, match="unknown component 'learned'"):
        FaceSaliencyFrames(saliency="learned").saliency_model()


@pytest.mark.parametrize("pipeline, fast", [
    ("face.stn_vote", {"frame_classifier__max_epochs": "2", "max_frames_per_clip": "4"}),
    ("face.stn_bilstm", {"frame_classifier__max_epochs": "2", "max_frames_per_clip": "4",
                         "aggregator__max_epochs": "2", "aggregator__hidden": "16"}),
])
def test_face_pipelines_run_on_demo_clips(tmp_path, tiny_demo, feature_cache, pipeline, fast):
    from emokit_core.corpora import read_ravdess
    from emokit_core.executors import LocalExecutor
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner

    corpus = read_ravdess(tiny_demo, folds="grouped")
    reg = Registry(tmp_path / "r.db")
    # Two decoding workers; folds this small train here (worker processes: tests/test_executors.py).
    runner = Runner(PluginHost(), reg, feature_cache, workers=2, executor=LocalExecutor(1))
    outcome = runner.run([pipeline], corpus, overrides={pipeline: fast})
    run = reg.get_run(outcome.runs[0].run_id)
    assert run.status == "finished" and len(run.fold_results) == 5
    assert len(reg.predictions(run.run_id)) == len(corpus.clips)
    from emokit_core.explain import attention_weights

    attention = attention_weights(reg, run.run_id)
    if pipeline == "face.stn_vote":  # max-voting weighs every frame alike: nothing to store
        assert attention == {}
        return
    assert set(attention) == {c.id for c in corpus.clips}
    for clip_id, weights in attention.items():
        assert weights.dtype == np.float32 and weights.min() >= 0 and abs(weights.sum() - 1) < 1e-4
    for clip in corpus.clips[:3]:  # every frame of the held-out clip: nothing truncated
        assert len(attention[clip.id]) == len(frames_of(FaceSaliencyFrames(), clip.video_path))


def test_variable_frame_rate_video_gives_every_frame(tmp_path):
    """Frames are stored at irregular times: each decoded frame still gives one output row."""
    import av
    from fractions import Fraction

    rng = np.random.default_rng(1)
    path = tmp_path / "vfr.mp4"
    times_ms = [0, 33, 50, 120, 133, 300, 310, 400]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = 160, 120
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for t in times_ms:
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (120, 160), dtype=np.uint8), format="gray")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random pixels: no face, centre square
        out = frames_of(FaceSaliencyFrames(), path)
    assert out.shape == (len(times_ms), 2, 48, 48)


def test_clip_without_video_is_skipped_by_a_face_run_naming_the_file(tmp_path, tiny_demo, feature_cache):
    """An audio-only mp4 in an audio-visual corpus: reported with its path, the run goes on."""
    import av
    import shutil

    from emokit_core.corpora import read_ravdess
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner

    corpus_dir = tmp_path / "corpus"
    shutil.copytree(tiny_demo, corpus_dir)
    victim = sorted(corpus_dir.rglob("*.mp4"))[0]
    with av.open(str(victim)) as src, av.open(str(tmp_path / "audio.mp4"), "w") as dst:
        stream = dst.add_stream("aac", rate=48000)
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    shutil.move(tmp_path / "audio.mp4", victim)
    corpus = read_ravdess(corpus_dir, folds="grouped")
    runner = Runner(PluginHost(), Registry(tmp_path / "r.db"), feature_cache)
    outcome = runner.run(["face.pixels_vote"], corpus)
    [(clip_id, why)] = outcome.skipped_clips.items()
    assert victim.name in why and "no video track" in why
    assert int(outcome.runs[0].pooled["n"]) == len(corpus.clips) - 1


def test_vote_tie_break_is_deterministic_and_merges_calm():
    from emokit_core.estimators import MaxVoting

    # Classes 0 and 2 both get two votes; class 2 has the higher mean posterior, so it wins,
    # whatever the order of the frames.
    frames = np.array([[0.6, 0.0, 0.4], [0.55, 0.0, 0.45], [0.1, 0.0, 0.9], [0.2, 0.0, 0.8]])
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        assert MaxVoting().predict_proba([frames[order]]).argmax() == 2
    # Equal votes and equal mean posteriors: the lowest class index.
    even = np.array([[0.6, 0.0, 0.4], [0.4, 0.0, 0.6]])  # one vote each, both means 0.5
    assert MaxVoting().predict_proba([even]).argmax() == 0
    # merge: calm (1) votes count as neutral (0)
    calm = np.array([[0.1, 0.8, 0.1], [0.1, 0.7, 0.2], [0.0, 0.1, 0.9]])
    assert MaxVoting().predict_proba([calm]).argmax() == 1
    assert MaxVoting(merge={1: 0}).predict_proba([calm]).argmax() == 0


def test_vad_cuts_frames_to_the_speech_span_of_the_clips_audio(tiny_demo):
    """The paper's "with VAD" face models: frames from the first to the last detected speech."""
    from emokit_core.extraction import extract_clip
    from emokit_core.media import SAMPLE_RATE, decode
    from emokit_plugins.speech.vad import VadTrim

    path = sorted(tiny_demo.rglob("*.mp4"))[0]
    clip = Clip("c", "01", "happy", audio_path=path, video_path=path)
    out = extract_clip(clip, [("all", FaceSaliencyFrames()), ("speech", FaceSaliencyFrames(vad="silero"))])
    everything, speech = out.features["all"], out.features["speech"]
    _, info = VadTrim("silero").trim(decode(path, audio=True), SAMPLE_RATE)
    assert info["found"] and 0 < len(speech) < len(everything)
    fps = out.video.fps
    first = int(np.searchsorted(np.arange(len(everything)) / fps + 1 / fps, info["start"], side="right"))
    assert abs(len(speech) - (info["end"] - info["start"]) * fps) <= 2
    assert np.array_equal(speech[0], everything[first])  # the same frames, not re-rendered ones
    assert FaceSaliencyFrames(vad="silero").cache_version != FaceSaliencyFrames().cache_version


def test_vad_keeps_every_frame_of_a_video_without_audio(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "silent-film.mp4"
    write_video(path, [rng.integers(0, 255, (120, 160), dtype=np.uint8) for _ in range(6)])
    from emokit_core.extraction import extract_clip

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = extract_clip(Clip("c", "01", "happy", video_path=path), [("f", FaceSaliencyFrames(vad="silero"))])
    assert len(out.features["f"]) == 6
    assert any("silent-film.mp4: no audio track" in str(w.message) for w in caught)
