"""Decoding, bad media, and the feature cache."""

import numpy as np
import pytest

from emokit_core.cache import FeatureCache
from emokit_core.errors import MediaError
from emokit_core.media import SAMPLE_RATE, decode

from .conftest import write_tone


def test_stereo_48k_wav_becomes_16k_mono(tmp_path):
    path = tmp_path / "a.wav"
    write_tone(path, 220.0, rate=48000, seconds=0.5, stereo=True)
    audio = decode(path, audio=True)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == SAMPLE_RATE // 2
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(audio) - 220.0) < 4


def test_zero_length_wav(tmp_path):
    import soundfile as sf

    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(MediaError) as info:
        decode(path, audio=True)
    assert "empty.wav" in info.value.message and "empty" in info.value.message


def test_silent_wav(tmp_path):
    import soundfile as sf

    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    with pytest.raises(MediaError, match="silent.wav: the audio is silent"):
        decode(path, audio=True)


def test_corrupt_mp4(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(MediaError) as info:
        decode(path, audio=True)
    assert "broken.mp4" in info.value.message and info.value.hint


def test_not_audio_at_all(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not a wav file")
    with pytest.raises(MediaError, match="notes.wav: cannot be read as audio"):
        decode(path, audio=True)


def test_cache_hit_and_miss(tmp_path, tone_manifest):
    from emokit_core.corpora import read_manifest
    from emokit_core.plugins import PluginHost
    from emokit_core.runner import Runner

    host = PluginHost()
    corpus = read_manifest(tone_manifest)
    cache = FeatureCache(tmp_path / "cache")
    runner = Runner(host, registry=None, cache=cache)
    recipe = host.pipeline("speech.mfcc_svm").build(n_mfcc=20, C=1.0, gamma="scale")
    keys, skipped = runner.extract(corpus, {"speech.mfcc_svm": recipe})
    assert not skipped and (cache.hits, cache.misses) == (0, len(corpus.clips))
    first = cache.load(keys["speech.mfcc_svm"][corpus.clips[0].id])
    runner.extract(corpus, {"speech.mfcc_svm": recipe})
    assert (cache.hits, cache.misses) == (len(corpus.clips), len(corpus.clips))
    np.testing.assert_array_equal(cache.load(keys["speech.mfcc_svm"][corpus.clips[0].id]), first)
    changed = host.pipeline("speech.mfcc_svm").build(n_mfcc=13, C=1.0, gamma="scale")
    keys2, _ = runner.extract(corpus, {"speech.mfcc_svm": changed})
    assert cache.misses == 2 * len(corpus.clips)
    assert set(keys2["speech.mfcc_svm"].values()).isdisjoint(keys["speech.mfcc_svm"].values())
    # The classifier's parameters are not part of the features: same extractor, same cache entries.
    other_c = host.pipeline("speech.mfcc_svm").build(n_mfcc=20, C=5.0, gamma="scale")
    assert runner.extract(corpus, {"speech.mfcc_svm": other_c})[0] == keys


def test_cache_key_follows_content_not_path(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    write_tone(a, 200.0)
    write_tone(b, 200.0)
    assert cache.file_fingerprint(a) == cache.file_fingerprint(b)
    write_tone(b, 300.0)
    assert cache.file_fingerprint(a) != cache.file_fingerprint(b)


def test_bad_clips_are_skipped_and_named(tmp_path, tone_manifest):
    import shutil

    import soundfile as sf

    from emokit_core.corpora import read_manifest
    from emokit_core.plugins import PluginHost
    from emokit_core.runner import Runner

    root = tmp_path / "corpus"
    shutil.copytree(tone_manifest.parent, root)
    sf.write(root / "wav" / "spk0_low_0.wav", np.zeros(0, np.float32), 16000)   # zero-length
    sf.write(root / "wav" / "spk1_mid_1.wav", np.zeros(8000, np.float32), 16000)  # silent
    (root / "wav" / "spk2_high_2.wav").write_bytes(b"RIFF garbage")               # corrupt
    corpus = read_manifest(root / "tones.csv")
    host = PluginHost()
    runner = Runner(host, registry=None, cache=FeatureCache(tmp_path / "cache"))
    keys, skipped = runner.extract(corpus, {"speech.mfcc_svm": host.pipeline("speech.mfcc_svm").build(
        n_mfcc=20, C=1.0, gamma="scale")})
    assert set(skipped) == {"wav/spk0_low_0", "wav/spk1_mid_1", "wav/spk2_high_2"}
    assert "spk1_mid_1.wav: the audio is silent" in skipped["wav/spk1_mid_1"]
    assert "spk0_low_0.wav" in skipped["wav/spk0_low_0"]
    assert len(keys["speech.mfcc_svm"]) == len(corpus.clips)


@pytest.mark.parametrize("pix_fmt, color_range", [("yuv420p", None), ("yuvj420p", None), ("yuv444p", None),
                                                  ("yuv420p", 2), ("gray", None)])
def test_gray_frames_are_what_ffmpeg_converts(tmp_path, pix_fmt, color_range):
    """The luma read straight from the Y plane (stretched from limited range where the video is) is
    FFmpeg's own gray conversion, for limited- and full-range YUV and formats read through FFmpeg."""
    import av

    from emokit_core.media import gray_frame

    rng = np.random.default_rng(0)
    path = tmp_path / f"{pix_fmt}-{color_range}.mkv"
    with av.open(str(path), "w") as box:
        # both conversions read the same decoded frame, so a lossy codec would do; JPEG keeps yuvj
        stream = box.add_stream("mjpeg" if pix_fmt == "yuvj420p" else "ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 66, 40, pix_fmt  # 66: padded rows (line size > width)
        if color_range:
            stream.codec_context.color_range = color_range
        for _ in range(3):
            image = rng.integers(0, 256, (40, 66, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
            if color_range:
                frame.color_range = color_range
            box.mux(stream.encode(frame))
        box.mux(stream.encode(None))
    with av.open(str(path)) as box:
        decoded = list(box.decode(video=0))
    assert len(decoded) == 3
    for frame in decoded:
        ours = gray_frame(frame)
        assert ours.shape == (40, 66) and ours.dtype == np.uint8
        np.testing.assert_array_equal(ours, frame.to_ndarray(format="gray"))
