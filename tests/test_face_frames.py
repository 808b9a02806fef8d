"""Face frames and saliency: RAVDESS framing, detector fallback, odd videos."""

import warnings

import numpy as np
import pytest

from emokit_core.contracts import Clip, VideoInfo
from emokit_core.media import decode
from emokit_plugins.face.frames import FaceSaliencyFrames, centre_square, is_ravdess_framing


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
    ("face.stn_vote", {"stn_max_epochs": "2", "frames_per_clip": "4"}),
    ("face.stn_bilstm", {"stn_max_epochs": "2", "frames_per_clip": "4", "lstm_max_epochs": "2", "hidden": "16"}),
])
def test_face_pipelines_run_on_demo_clips(tmp_path, tiny_demo, pipeline, fast):
    from emokit_core.cache import FeatureCache
    from emokit_core.corpora import read_ravdess
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner

    corpus = read_ravdess(tiny_demo, folds="grouped")
    reg = Registry(tmp_path / "r.db")
    runner = Runner(PluginHost(), reg, FeatureCache(tmp_path / "cache"), workers=2)
    outcome = runner.run([pipeline], corpus, overrides={pipeline: fast})
    run = reg.get_run(outcome.runs[0].run_id)
    assert run["status"] == "finished" and len(run["fold_results"]) == 5
    assert len(reg.predictions(run["run_id"])) == len(corpus.clips)
