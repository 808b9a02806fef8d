"""VAD trimming (paper 3.2.2): first to last speech, the original when there is none."""

import subprocess
import sys
import types
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from scipy.signal import lfilter, resample_poly

from emokit_core.errors import EmokitError
from emokit_plugins.speech import vad
from emokit_plugins.speech.vad import VadTrim, trim_to_speech

SR = 16000
LEAD, SPEECH, TRAIL = 1.0, 2.0, 1.5
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def _resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    r = np.exp(-np.pi * bandwidth / SR)
    a = [1.0, -2.0 * r * np.cos(2 * np.pi * freq / SR), r * r]
    return lfilter([sum(a)], a, x)


def speechlike(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Syllables of a noisy fricative onset and a voiced vowel: a glottal-flow-derivative pulse
    train with a wandering pitch through three formant resonators, under a syllable envelope.
    (Plain harmonic tones do not look like speech to silero: it finds 0.6 s of 2 s.)"""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n)
    t = 0
    while t < n:
        syllable = min(int(rng.uniform(0.18, 0.28) * SR), n - t)
        onset = min(int(rng.uniform(0.03, 0.07) * SR), syllable)
        hiss = _resonator(rng.normal(0, 1, onset), rng.uniform(2500, 5000), 1500)
        out[t: t + onset] = hiss / (np.abs(hiss).max() + 1e-9) * 0.15 * np.hanning(onset)
        m = syllable - onset
        if m > 0:
            tt = np.arange(m) / SR
            pitch = f0 * rng.uniform(0.9, 1.15) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(1, 3) * tt
                                                                       + rng.uniform(0, 6)))
            phase = np.cumsum(pitch / SR) % 1.0
            flow = np.where(phase < 0.6, 0.5 * (1 - np.cos(np.pi * phase / 0.6)),
                            np.cos(np.pi * (phase - 0.6) / 0.8))
            voiced = np.diff(flow, prepend=flow[0]) + rng.normal(0, 0.002, m)
            for freq, bandwidth in zip(VOWELS[rng.integers(len(VOWELS))], (80, 100, 150)):
                voiced = _resonator(voiced, freq, bandwidth)
            voiced *= np.sin(np.pi * np.arange(m) / m) ** 0.7
            out[t + onset: t + syllable] = voiced / (np.abs(voiced).max() + 1e-9) * rng.uniform(0.4, 0.6)
        t += syllable + (int(0.05 * SR) if rng.random() < 0.2 else 0)
    out = lfilter([1, -0.95], [1], out)  # lip radiation
    return out / np.abs(out).max() * 0.5


def padded_clip(f0: float = 120.0, seed: int = 0, noise: float = 0.003) -> np.ndarray:
    speech = speechlike(SPEECH, f0, seed)
    audio = np.concatenate([np.zeros(int(LEAD * SR)), speech, np.zeros(int(TRAIL * SR))])
    return (audio + np.random.default_rng(seed + 1).normal(0, noise, len(audio))).astype(np.float32)


@pytest.fixture(scope="module")
def silero():
    pytest.importorskip("silero_vad")


@pytest.mark.parametrize("f0, seed", [(110.0, 0), (210.0, 3), (150.0, 3)])
def test_silero_trims_to_the_speech(silero, f0, seed):
    # silero's start is within 0.03 s; its end lags the speech by 0.1-0.3 s (its recurrent state
    # decays over a few 32 ms windows, plus 30 ms of padding); these clips end 0.10-0.20 s late.
    audio = padded_clip(f0, seed)
    out, info = trim_to_speech(audio, SR, "silero", clip_name="synthetic")
    assert info["found"] is True and info["method"] == "silero" and info["segments"] >= 1
    assert abs(info["start"] - LEAD) < 0.3 and abs(info["end"] - (LEAD + SPEECH)) < 0.3
    assert info["duration"] == pytest.approx(len(audio) / SR)
    start = int(round(info["start"] * SR))
    assert len(out) == int(round((info["end"] - info["start"]) * SR))
    np.testing.assert_array_equal(out, audio[start: start + len(out)])


def test_silero_times_hold_at_other_sample_rates(silero):
    audio = padded_clip()
    _, ref = trim_to_speech(audio, SR, "silero")
    for rate, (up, down) in ((48000, (3, 1)), (22050, (441, 320))):
        resampled = resample_poly(audio, up, down).astype(np.float32)
        out, info = trim_to_speech(resampled, rate, "silero")
        assert info["found"] and abs(info["start"] - ref["start"]) < 0.02 and abs(info["end"] - ref["end"]) < 0.02
        assert len(out) == pytest.approx((info["end"] - info["start"]) * rate, abs=1)


@pytest.mark.parametrize("kind", ["zeros", "hiss", "loud-hiss", "rumble", "hum", "empty"])
def test_no_speech_keeps_the_original(silero, kind):
    rng = np.random.default_rng(3)
    n, t = 4 * SR, np.arange(4 * SR) / SR
    audio = {"zeros": np.zeros(n), "hiss": rng.normal(0, 0.003, n), "loud-hiss": rng.normal(0, 0.1, n),
             "rumble": lfilter([1], [1, -0.98], rng.normal(0, 0.02, n)), "hum": 0.1 * np.sin(2 * np.pi * 50 * t),
             "empty": np.zeros(0)}[kind].astype(np.float32)
    out, info = trim_to_speech(audio, SR, "silero")
    assert out is audio
    assert info["found"] is False and info["segments"] == 0
    assert info["start"] == 0.0 and info["end"] == pytest.approx(len(audio) / SR)


def test_none_is_the_identity():
    audio = padded_clip()
    out, info = trim_to_speech(audio, SR, "none")
    assert out is audio
    assert info == {"method": "none", "found": None, "start": 0.0, "end": len(audio) / SR,
                    "duration": len(audio) / SR, "segments": 0}


def test_unknown_method_and_bad_shapes():
    with pytest.raises(EmokitError) as err:
        trim_to_speech(np.zeros(SR, np.float32), SR, "webrtc", clip_name="c1")
    assert "c1" in err.value.message and "vad=silero" in err.value.hint
    with pytest.raises(ValueError, match="mono"):
        trim_to_speech(np.zeros((2, SR), np.float32), SR, "none")


@pytest.fixture
def no_ina(monkeypatch):
    """inaSpeechSegmenter absent, whether or not it is installed here."""
    monkeypatch.setitem(sys.modules, "inaSpeechSegmenter", None)  # makes its import raise ImportError
    monkeypatch.setattr(vad, "_models", {})


def test_ina_missing_names_the_clip_and_what_to_install(no_ina):
    with pytest.raises(EmokitError) as err:
        trim_to_speech(padded_clip(), SR, "ina", clip_name="01-01-03-01-01-01-07")
    message, hint = err.value.message, err.value.hint
    assert "01-01-03-01-01-01-07" in message and "inaSpeechSegmenter" in message and "TensorFlow" in message
    assert "pip install inaSpeechSegmenter tensorflow" in hint
    assert "ffmpeg" in hint and "models" in hint and "vad=silero" in hint


def _fake_ina(monkeypatch, segmenter_class):
    module = types.ModuleType("inaSpeechSegmenter")
    module.Segmenter = segmenter_class
    monkeypatch.setitem(sys.modules, "inaSpeechSegmenter", module)
    monkeypatch.setattr(vad, "_models", {})
    monkeypatch.setattr(vad.shutil, "which", lambda name: f"/usr/bin/{name}")


def test_ina_models_not_loadable(monkeypatch):
    class Offline:
        def __init__(self, **kwargs):
            raise OSError("URL fetch failure on https://github.com/ina-foss/...: no network")

    _fake_ina(monkeypatch, Offline)
    with pytest.raises(EmokitError) as err:
        VadTrim("ina").trim(padded_clip(), SR, "clip-9")
    assert "clip-9" in err.value.message and "models" in err.value.message
    assert "pip install inaSpeechSegmenter tensorflow" in err.value.hint


def test_ina_without_ffmpeg(monkeypatch):
    _fake_ina(monkeypatch, object)
    monkeypatch.setattr(vad.shutil, "which", lambda name: None)
    with pytest.raises(EmokitError, match="ffmpeg") as err:
        trim_to_speech(padded_clip(), SR, "ina", clip_name="clip-3")
    assert "clip-3" in err.value.message


def test_ina_keeps_first_to_last_speech_label(monkeypatch):
    import soundfile as sf

    calls = []

    class Segmenter:
        def __init__(self, vad_engine, detect_gender):
            calls.append((vad_engine, detect_gender))

        def __call__(self, path):
            calls.append(sf.info(path).samplerate)
            return [("noEnergy", 0.0, 0.8), ("music", 0.8, 1.0), ("speech", 1.0, 2.0), ("noise", 2.0, 2.4),
                    ("female", 2.4, 3.1), ("noEnergy", 3.1, 4.5)]

    _fake_ina(monkeypatch, Segmenter)
    audio = padded_clip()
    out, info = trim_to_speech(audio, SR, "ina")
    assert calls == [("smn", False), SR]
    assert info["found"] is True and info["segments"] == 2
    assert (info["start"], info["end"]) == (1.0, 3.1)
    np.testing.assert_array_equal(out, audio[SR: int(3.1 * SR)])
    out, info = trim_to_speech(audio, SR, "ina")  # the segmenter is loaded once
    assert len(calls) == 3

    Segmenter.__call__ = lambda self, path: [("noEnergy", 0.0, 1.0), ("music", 1.0, 4.5)]
    out, info = trim_to_speech(audio, SR, "ina")
    assert out is audio and info["found"] is False


def test_vadtrim_params_and_cache_version():
    from sklearn.base import clone

    trim = VadTrim("silero", threshold=0.6)
    assert trim.get_params() == {"method": "silero", "threshold": 0.6, "min_speech_ms": 250, "speech_pad_ms": 30}
    assert clone(trim).get_params() == trim.get_params()
    versions = {VadTrim(m).cache_version for m in ("none", "silero", "ina")}
    assert len(versions) == 3 and all(vad.VAD_VERSION in v for v in versions)
    out, info = VadTrim("none")(np.ones(10, np.float32), SR)
    assert info["method"] == "none" and len(out) == 10


def test_silero_is_thread_safe(silero):
    clips = [padded_clip(f0, seed) for f0, seed in ((110.0, 0), (210.0, 1), (150.0, 2), (130.0, 3))]
    expected = [trim_to_speech(c, SR)[1] for c in clips]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: trim_to_speech(c, SR)[1], clips * 2))
    assert got == expected * 2


def _trim_info(audio):
    return trim_to_speech(audio, SR)[1]


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_silero_in_forked_workers(silero):
    import multiprocessing

    audio = padded_clip()
    expected = _trim_info(audio)  # the parent has loaded the model before forking
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        assert list(pool.map(_trim_info, [audio, audio])) == [expected, expected]


def test_import_is_lazy():
    code = ("import sys, emokit_plugins.speech.vad as v; v.VadTrim('silero').cache_version; "
            "print(sorted(m for m in ('torch', 'silero_vad', 'tensorflow', 'inaSpeechSegmenter') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _FirstHalf:
    """A plugin's VAD: says the first half of every clip is its speech."""

    cache_version = "first-half-1"

    def trim(self, audio, sample_rate, clip=""):
        end = len(audio) // 2
        return audio[:end], {"found": True, "start": 0.0, "end": end / sample_rate}


def test_vad_is_a_component_family_that_a_plugin_extends(monkeypatch):
    from emokit_core import plugins
    from emokit_core.hookspecs import hookimpl
    from emokit_core.specs import ComponentSpec
    from emokit_plugins.face.frames import FaceSaliencyFrames
    from emokit_plugins.speech.extractors import PannsEmbedding

    assert isinstance(plugins.create("vad", "silero"), VadTrim) and plugins.create("vad", "ina").method == "ina"
    plugin = types.ModuleType("first_half_vad")
    plugin.register_components = hookimpl(lambda register: register(ComponentSpec("vad", "first_half", _FirstHalf)))
    host = plugins.PluginHost([*plugins.entry_point_sources(), plugins.module_source(plugin)])
    monkeypatch.setattr(plugins, "get_host", lambda: host)
    # Speech and face extractors both reach it by name through the core's table.
    audio = np.linspace(-1, 1, SR, dtype=np.float32)
    assert len(PannsEmbedding(vad="first_half")._trimmed(audio, SR, "clip")) == SR // 2
    assert "+first-half-1" in PannsEmbedding(vad="first_half").cache_version
    assert FaceSaliencyFrames(vad="first_half").cache_version.endswith("+first-half-1")
    with pytest.raises(EmokitError, match="unknown component 'sillero'") as raised:
        FaceSaliencyFrames(vad="sillero").cache_version
    assert "did you mean 'silero'" in raised.value.hint
