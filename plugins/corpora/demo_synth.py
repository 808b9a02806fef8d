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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from emokit_core.errors import CorpusError

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "EMOTIONS",
    "ClipSpec",
    "default_repetitions",
    "clip_specs",
    "generate",
    "read_manifest",
    "verify",
]

GENERATOR_NAME = "emokit-demo-synth"
GENERATOR_VERSION = "2"  # 2: x264 ultrafast and the fast AAC coder (a third less generation time)
MANIFEST_NAME = "emokit-demo.json"
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

FPS = 30
HEIGHT = 720  # RAVDESS's frame height (1280x720); tests may ask for less
FACE_SIZE = 720  # the face is designed inside the central FACE_SIZE x FACE_SIZE square
SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
MIN_DURATION, MAX_DURATION = 2.9, 4.2
# ultrafast: most of a clip's generation time is encoding (superfast files are a third the size, and
# take 40 % longer to write); one thread for byte-identical output
X264_OPTIONS = {"preset": "ultrafast", "crf": "28", "threads": "1"}
AAC_OPTIONS = {"aac_coder": "fast"}  # the default two-loop coder takes 3x longer, for nothing a model hears
AAC_BIT_RATE = 128000

_MAX_ACTORS = 99
_MAX_REPETITIONS = 99


# ----------------------------------------------------------------------------------------------
# Clip list
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipSpec:
    """One clip of the corpus: its RAVDESS coordinates, file name and its own seed."""

    actor: int  # 1..N (odd = male, even = female)
    emotion: int  # RAVDESS code 1..8, see EMOTIONS
    intensity: int  # 1 = normal, 2 = strong (neutral only 1)
    statement: int  # 1 or 2
    repetition: int  # 1..R
    filename: str  # 01-01-EE-II-SS-RR-AA.mp4
    clip_seed: int  # seeds this clip's random generator; derived from the corpus seed

    @property
    def emotion_name(self) -> str:
        return EMOTIONS[self.emotion - 1]

    @property
    def gender(self) -> str:
        return "male" if self.actor % 2 else "female"

    @property
    def relpath(self) -> str:
        return f"Actor_{self.actor:02d}/{self.filename}"


def default_repetitions(actors: int) -> int:
    """RAVDESS's own two repetitions for a full 24-actor corpus, one for smaller demo corpora."""
    return 2 if actors >= 24 else 1


def _emotion_codes(emotions: Iterable[str | int] | None) -> tuple[int, ...]:
    if emotions is None:
        return tuple(range(1, len(EMOTIONS) + 1))
    codes = set()
    for e in emotions:
        if isinstance(e, str) and e in EMOTIONS:
            codes.add(EMOTIONS.index(e) + 1)
        elif isinstance(e, (int, np.integer)) and not isinstance(e, bool) and 1 <= e <= len(EMOTIONS):
            codes.add(int(e))
        else:
            raise CorpusError(f"unknown emotion {e!r}", hint=f"use one of {', '.join(EMOTIONS)} or codes 1..8")
    if not codes:
        raise CorpusError("no emotions selected", hint="leave emotions unset to get all eight")
    return tuple(sorted(codes))


def _clip_seed(seed: int, actor: int, emotion: int, intensity: int, statement: int, repetition: int) -> int:
    ss = np.random.SeedSequence([seed, actor, emotion, intensity, statement, repetition])
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def _check_params(actors: int, repetitions: int, seed: int) -> None:
    if not isinstance(actors, (int, np.integer)) or not 1 <= actors <= _MAX_ACTORS:
        raise CorpusError(f"actors must be an integer in 1..{_MAX_ACTORS}, got {actors!r}")
    if not isinstance(repetitions, (int, np.integer)) or not 1 <= repetitions <= _MAX_REPETITIONS:
        raise CorpusError(f"repetitions must be an integer in 1..{_MAX_REPETITIONS}, got {repetitions!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CorpusError(f"seed must be a non-negative integer, got {seed!r}")


def clip_specs(
    actors: int, repetitions: int, seed: int, *, emotions: Iterable[str | int] | None = None
) -> list[ClipSpec]:
    """All clips of a corpus, ordered by actor then file name (30 per actor and repetition).

    ``emotions`` restricts the corpus to some emotions (names or codes); meant for tests.
    """
    _check_params(actors, repetitions, seed)
    codes = _emotion_codes(emotions)
    specs = []
    for actor in range(1, actors + 1):
        for emotion in codes:
            for intensity in (1,) if emotion == 1 else (1, 2):
                for statement in (1, 2):
                    for rep in range(1, repetitions + 1):
                        name = f"01-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{rep:02d}-{actor:02d}.mp4"
                        specs.append(
                            ClipSpec(actor, emotion, intensity, statement, rep, name,
                                     _clip_seed(int(seed), actor, emotion, intensity, statement, rep))
                        )
    specs.sort(key=lambda s: (s.actor, s.filename))
    return specs


# ----------------------------------------------------------------------------------------------
# Emotion cue tables
# ----------------------------------------------------------------------------------------------

# Face parameters (strong intensity, added to the actor's resting face):
# open: mouth opening, width: mouth width, curve: corners up (+) / down (-), brow: brows raised,
# tilt: inner brow ends up (+, sad/fear) or down (-, anger), eye: eye opening, nose: nose
# wrinkle, lip: upper lip raised on one side, teeth: teeth shown when the mouth is open.
_FACE_KEYS = ("open", "width", "curve", "brow", "tilt", "eye", "nose", "lip", "teeth")
_FACE = {
    "neutral":   (0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.0),
    "calm":      (0.00, 0.02, 0.06, 0.00, 0.02, -0.06, 0.00, 0.00, 0.0),
    "happy":     (0.30, 0.40, 0.95, 0.10, 0.00, -0.35, 0.00, 0.00, 0.8),
    "sad":       (0.00, -0.10, -0.75, 0.15, 0.85, -0.30, 0.00, 0.00, 0.0),
    "angry":     (0.35, 0.15, -0.30, -0.75, -0.90, -0.15, 0.15, 0.10, 1.0),
    "fearful":   (0.60, 0.10, -0.10, 0.85, 0.20, 0.50, 0.00, 0.00, 0.2),
    "disgust":   (0.15, -0.05, -0.45, -0.40, -0.25, -0.35, 1.00, 0.90, 0.4),
    "surprised": (0.65, -0.05, 0.00, 0.90, 0.05, 0.55, 0.00, 0.00, 0.1),
}

# Voice parameters (strong intensity, relative to the actor's neutral voice):
# f0: pitch shift in semitones, range: pitch movement in semitones, energy: level in dB,
# rate: log speaking-rate factor, tilt: change of the spectral-tilt pole (+ = duller),
# breath: aspiration noise, tremor: pitch tremor in semitones, contour: f0 contour shape.
_VOICE_KEYS = ("f0", "range", "energy", "rate", "tilt", "breath", "tremor")
_VOICE = {
    "neutral":   ((0.0, 2.5, 0.0, 0.00, 0.00, 0.00, 0.0), "declining"),
    "calm":      ((-1.0, 1.5, -2.0, -0.08, 0.02, 0.25, 0.0), "declining"),
    "happy":     ((5.0, 7.0, 3.0, 0.08, -0.05, 0.05, 0.0), "rise_fall"),
    "sad":       ((-2.0, 1.0, -6.0, -0.35, 0.25, 0.10, 0.4), "falling"),
    "angry":     ((2.0, 5.0, 9.0, 0.0, -0.35, -0.03, 0.0), "accent_fall"),
    "fearful":   ((7.0, 3.5, 2.0, 0.25, -0.05, 0.08, 0.8), "rising"),
    "disgust":   ((2.0, 5.0, 9.0, 0.0, -0.35, -0.03, 0.0), "accent_fall"),
    "surprised": ((5.0, 7.0, 3.0, 0.08, -0.05, 0.05, 0.0), "rise_fall"),
}
_INTENSITY_SCALE = {1: 0.7, 2: 1.0}

# Per-clip noise on the cues (standard deviations, in the units of the tables above).
_FACE_CLIP_NOISE = np.array([0.08, 0.06, 0.10, 0.10, 0.10, 0.06, 0.06, 0.06, 0.12])
_VOICE_CLIP_NOISE = np.array([1.0, 0.8, 1.5, 0.05, 0.04, 0.05, 0.1])


# ----------------------------------------------------------------------------------------------
# Actors
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Actor:
    actor: int
    male: bool
    # face
    head_a: float
    head_b: float
    center: tuple[float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    eye_sep: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_th: int
    mouth_y: float
    mouth_w: float
    nose_y: float
    rest: tuple[float, ...]
    face_expr: float
    talk: float
    sway: float
    roll: float
    # voice
    f0: float
    f0_range: float
    formant_scale: float
    vowel_jitter: tuple[float, ...]
    bandwidth: float
    rate: float
    tilt: float
    breath: float
    loud: float
    jitter: float
    voice_expr: float
    balance: float


_SKIN_LIGHT = np.array([200.0, 212.0, 240.0])  # BGR
_SKIN_DARK = np.array([55.0, 80.0, 125.0])
_HAIRS = np.array([[30, 30, 35], [35, 55, 95], [110, 165, 205], [150, 150, 155], [25, 40, 70]], float)
_IRISES = np.array([[40, 60, 90], [140, 110, 60], [70, 110, 80], [30, 35, 45]], float)


def _actor(seed: int, actor: int) -> _Actor:
    rng = np.random.default_rng([int(seed), actor, 0xAC70])
    male = actor % 2 == 1
    u = rng.uniform
    a = u(185, 205) * (1.03 if male else 0.97)
    b = a * u(1.22, 1.30)
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * u(0, 0.6) + rng.normal(0, 5, 3)
    lips = skin * np.array([0.45, 0.4, 0.7])
    rest = np.zeros(len(_FACE_KEYS))
    rest[_FACE_KEYS.index("curve")] = rng.normal(0, 0.12)
    rest[_FACE_KEYS.index("brow")] = rng.normal(0, 0.12)
    rest[_FACE_KEYS.index("tilt")] = rng.normal(0, 0.12)
    rest[_FACE_KEYS.index("eye")] = rng.normal(0, 0.08)
    rest[_FACE_KEYS.index("width")] = rng.normal(0, 0.06)
    vowel_jitter = tuple(rng.normal(0, 0.04, 4 * len(_VOWELS)))
    return _Actor(
        actor=actor,
        male=male,
        head_a=a,
        head_b=b,
        center=(360 + u(-5, 5), 340 + u(-5, 5)),
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(_HAIRS[rng.integers(len(_HAIRS))] + rng.normal(0, 8, 3)),
        iris=tuple(_IRISES[rng.integers(len(_IRISES))]),
        lips=tuple(np.clip(lips, 0, 255)),
        eye_sep=u(0.36, 0.42) * a,
        eye_y=-u(0.11, 0.15) * b,
        eye_w=u(0.19, 0.23) * a,
        eye_h=u(0.08, 0.10) * b,
        brow_th=int(rng.integers(14, 20)),
        mouth_y=u(0.42, 0.48) * b,
        mouth_w=u(0.28, 0.36) * a,
        nose_y=u(0.19, 0.24) * b,
        rest=tuple(rest),
        face_expr=u(0.85, 1.2),
        talk=u(0.15, 0.3),
        sway=u(1.5, 4.0),
        roll=u(0.5, 2.0),
        f0=u(100, 140) if male else u(180, 240),
        f0_range=u(0.8, 1.25),
        formant_scale=u(0.88, 1.0) if male else u(1.05, 1.18),
        vowel_jitter=vowel_jitter,
        bandwidth=u(0.9, 1.3),
        rate=u(0.85, 1.15),
        tilt=u(0.5, 0.62),
        breath=u(0.03, 0.08),
        loud=u(-2.5, 2.5),
        jitter=u(0.15, 0.4),
        voice_expr=u(0.8, 1.2),
        balance=u(0.85, 1.0),
    )


# ----------------------------------------------------------------------------------------------
# Timing (shared by voice and face)
# ----------------------------------------------------------------------------------------------

_VOWELS = {  # F1..F4 in Hz for a reference adult male voice
    "i": (280, 2250, 2890, 3500),
    "e": (500, 1750, 2480, 3500),
    "a": (710, 1150, 2450, 3500),
    "ae": (650, 1700, 2450, 3500),
    "o": (520, 880, 2400, 3400),
    "u": (320, 950, 2300, 3400),
    "er": (480, 1350, 1700, 3300),
    "ng": (300, 1100, 2300, 3300),
}
_VOWEL_INDEX = {v: i for i, v in enumerate(_VOWELS)}
_VOWEL_OPEN = {"i": 0.35, "e": 0.6, "a": 1.0, "ae": 0.85, "o": 0.75, "u": 0.4, "er": 0.5, "ng": 0.2}
_VOWEL_ROUND = {"i": 0.2, "e": 0.1, "a": 0.0, "ae": 0.05, "o": -0.3, "u": -0.4, "er": -0.1, "ng": 0.0}
# (onset consonant, vowel, coda, stress): "Kids are talking by the door" / "Dogs are sitting by the door"
_STATEMENTS = {
    1: (("k", "i", "z", 1.0), ("", "a", "er", 0.8), ("t", "a", "", 1.2), ("k", "i", "ng", 0.75),
        ("b", "ae", "", 1.0), ("dh", "e", "", 0.6), ("d", "o", "er", 1.4)),
    2: (("d", "o", "z", 1.15), ("", "er", "", 0.8), ("s", "i", "", 1.1), ("t", "i", "ng", 0.75),
        ("b", "ae", "", 1.0), ("dh", "e", "", 0.6), ("d", "u", "er", 1.4)),
}
# consonant noise: (low Hz, high Hz, duration s, amplitude relative to the vowels)
_CONSONANTS = {
    "k": (1500, 3500, 0.03, 0.45), "t": (3500, 8000, 0.025, 0.45), "d": (2000, 5000, 0.02, 0.3),
    "b": (300, 1500, 0.015, 0.25), "s": (4500, 10000, 0.10, 0.30), "z": (3500, 9000, 0.07, 0.18),
    "dh": (1000, 6000, 0.045, 0.10),
}


@dataclass
class _Syllable:
    onset: str
    vowel: str
    coda: str
    c0: float  # consonant start (s)
    v0: float  # vowel start
    v1: float  # vowel end
    end: float  # coda end
    amp: float


@dataclass
class _Plan:
    nframes: int
    duration: float
    lead: float
    syllables: list


def _plan(spec: ClipSpec, actor: _Actor, voice: np.ndarray, rng: np.random.Generator) -> _Plan:
    rate = actor.rate * np.exp(voice[_VOICE_KEYS.index("rate")]) * rng.uniform(0.93, 1.07)
    lead = rng.uniform(0.8, 1.4)
    sylls = _STATEMENTS[spec.statement]
    durs = np.array([0.2 * stress / rate for *_, stress in sylls]) * rng.uniform(0.88, 1.12, len(sylls))
    amps = np.array([0.55 + 0.45 * stress for *_, stress in sylls]) * rng.uniform(0.85, 1.15, len(sylls))
    tail = rng.uniform(0.6, 1.2)
    longest = MAX_DURATION - 0.6  # keep some silence around even the slowest speech
    if durs.sum() > longest:
        durs *= longest / durs.sum()
    lead = min(lead, MAX_DURATION - 0.3 - durs.sum())
    duration = float(np.clip(lead + durs.sum() + tail, MIN_DURATION, MAX_DURATION))
    nframes = int(round(duration * FPS))
    t = lead
    syllables = []
    for (onset, vowel, coda, _), d, amp in zip(sylls, durs, amps):
        c_d = min(_CONSONANTS[onset][2], 0.3 * d) if onset else 0.0
        coda_d = 0.25 * d if coda else 0.0
        syllables.append(_Syllable(onset, vowel, coda, t, t + c_d, t + d - coda_d, t + d, float(amp)))
        t += d
    return _Plan(nframes, nframes / FPS, lead, syllables)


# ----------------------------------------------------------------------------------------------
# Voice
# ----------------------------------------------------------------------------------------------


def _contour(kind: str, u: np.ndarray) -> np.ndarray:
    if kind == "declining":
        return 0.5 - u
    if kind == "rise_fall":
        return np.sin(np.pi * u) * 1.2 - 0.4 * u
    if kind == "falling":
        return 0.3 - 0.8 * u
    if kind == "accent_fall":
        return 0.8 - 1.3 * u
    if kind == "rising":
        return -0.4 + 0.9 * u
    raise ValueError(kind)


def _ramp_env(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack > 0:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    if release > 0:
        env[n - release:] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 1) / release)
    return env


def _resonator(f: float, bw: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.exp(-np.pi * bw / SAMPLE_RATE)
    c = 2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE)
    a = np.array([1.0, -c, r * r])
    return np.array([a.sum()]), a  # unity gain at DC


_SOS_CACHE: dict = {}


def _bandpass(lo: float, hi: float):
    from scipy.signal import butter

    key = (lo, hi)
    if key not in _SOS_CACHE:
        _SOS_CACHE[key] = butter(2, [lo, min(hi, 0.45 * SAMPLE_RATE)], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return _SOS_CACHE[key]


def _synth_audio(spec: ClipSpec, actor: _Actor, plan: _Plan, voice: np.ndarray, contour: str,
                 rng: np.random.Generator) -> np.ndarray:
    """Stereo float32 audio, shape (2, nframes * SAMPLES_PER_FRAME)."""
    from scipy.signal import lfilter, sosfilt

    sr = SAMPLE_RATE
    n = plan.nframes * SAMPLES_PER_FRAME
    f0_shift, f0_range, energy, _rate, tilt, breath, tremor = voice
    s0 = int(plan.syllables[0].c0 * sr)
    s1 = min(n, int(plan.syllables[-1].end * sr) + int(0.08 * sr))
    m = s1 - s0
    t = np.arange(m) / sr
    u = t / max(t[-1], 1e-6)

    # f0 contour in semitones around the actor's base pitch
    st = f0_shift + max(f0_range, 0.3) * actor.f0_range * _contour(contour, u)
    for syl in plan.syllables:
        c = 0.5 * (syl.v0 + syl.v1) - plan.syllables[0].c0
        w = 0.35 * (syl.v1 - syl.v0) + 1e-3
        st = st + 0.25 * f0_range * (syl.amp - 0.9) * np.exp(-0.5 * ((t - c) / w) ** 2)
    if tremor > 0:
        st = st + tremor * np.sin(2 * np.pi * rng.uniform(5.5, 7.5) * t + rng.uniform(0, 2 * np.pi))
    wobble = lfilter([0.02], [1, -0.98], rng.standard_normal(m))
    st = st + actor.jitter * wobble / (np.std(wobble) + 1e-9)
    f0 = actor.f0 * 2.0 ** (st / 12.0)

    # glottal flow (Rosenberg-like) and its derivative
    frac = np.cumsum(f0 / sr) % 1.0
    b = float(np.clip(actor.breath + breath, 0.0, 0.6))
    oq = 0.55 + 0.5 * b
    tp = 0.65 * oq
    flow = np.where(frac < tp, 0.5 - 0.5 * np.cos(np.pi * frac / tp),
                    np.where(frac < oq, np.cos(0.5 * np.pi * (frac - tp) / (oq - tp)), 0.0))
    src = np.diff(flow, prepend=flow[0]) * (sr / actor.f0)
    src /= np.std(src) + 1e-9
    asp = sosfilt(_bandpass(800, 9000), rng.standard_normal(m)) * (0.35 + flow)
    src = src + 2.5 * b * asp / (np.std(asp) + 1e-9)
    a_tilt = float(np.clip(actor.tilt + tilt, 0.05, 0.93))
    src = lfilter([1 - a_tilt], [1, -a_tilt], src)

    # vocal tract: one cascade of formant resonators per vowel segment
    voiced = np.zeros(m)
    base = plan.syllables[0].c0
    pad, tail = int(0.005 * sr), int(0.04 * sr)
    vj = np.asarray(actor.vowel_jitter).reshape(len(_VOWELS), 4)
    bws = np.array([80.0, 100.0, 140.0, 200.0]) * actor.bandwidth * (1 + 1.5 * b)
    for syl in plan.syllables:
        segs = [(syl.vowel, syl.v0, syl.v1, 1.0)]
        if syl.coda in _VOWELS:
            segs.append((syl.coda, syl.v1, syl.end, 0.55))
        for vowel, ta, tb, g in segs:
            i0 = max(0, int((ta - base) * sr) - pad)
            i1 = min(m, int((tb - base) * sr) + pad)
            if i1 - i0 < 16:
                continue
            x = src[i0:i1] * _ramp_env(i1 - i0, int(0.02 * sr), int(0.035 * sr)) * (syl.amp * g)
            x = np.concatenate([x, np.zeros(min(tail, m - i1))])
            fs = np.array(_VOWELS[vowel]) * actor.formant_scale * (1 + vj[_VOWEL_INDEX[vowel]])
            for f, bw in zip(fs, bws):
                num, den = _resonator(f, bw)
                x = lfilter(num, den, x)
            num, den = _resonator(4500 * actor.formant_scale, 300)
            x = lfilter(num, den, x)
            voiced[i0:i0 + len(x)] += x
    speech = voiced / (np.sqrt(np.mean(voiced[voiced != 0] ** 2)) + 1e-9)

    # consonants: band-passed noise bursts
    for syl in plan.syllables:
        for kind, ta in ((syl.onset, syl.c0), ("z" if syl.coda == "z" else "", syl.v1)):
            if not kind:
                continue
            lo, hi, dur, amp = _CONSONANTS[kind]
            i0 = max(0, int((ta - base) * sr))
            k = min(int(dur * sr), m - i0)
            if k < 16:
                continue
            burst = sosfilt(_bandpass(lo, hi), rng.standard_normal(k))
            burst *= np.hanning(k) * amp * syl.amp * 1.6 / (np.std(burst) + 1e-9)
            speech[i0:i0 + k] += burst

    level_db = -27.0 + actor.loud + energy + rng.normal(0, 1.5)
    speech *= 10 ** (level_db / 20)
    out = np.zeros((2, n))
    noise_db = rng.uniform(-62, -54)
    for ch in range(2):
        bg = lfilter([1.0], [1, -0.9], rng.standard_normal(n))
        out[ch] = bg * (10 ** (noise_db / 20) / (np.std(bg) + 1e-9))
    out[0, s0:s1] += speech
    out[1, s0:s1] += speech * actor.balance
    # soft limiter above 0.7 full scale, so loud clips never hard-clip
    mag = np.abs(out)
    out = np.where(mag > 0.7, np.sign(out) * (0.7 + 0.29 * np.tanh((mag - 0.7) / 0.29)), out)
    return out.astype(np.float32)


def _talk_track(plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    """Per video frame: mouth opening and rounding from the syllables being spoken."""
    t = (np.arange(plan.nframes) + 0.5) / FPS
    open_ = np.zeros(plan.nframes)
    round_ = np.zeros(plan.nframes)
    for syl in plan.syllables:
        for vowel, ta, tb, g in ((syl.vowel, syl.v0, syl.v1, 1.0), (syl.coda, syl.v1, syl.end, 0.5)):
            if vowel not in _VOWELS or tb <= ta:
                continue
            x = np.clip(np.minimum(t - ta + 0.04, tb + 0.04 - t) / 0.06, 0, 1)
            open_ = np.maximum(open_, x * _VOWEL_OPEN[vowel] * syl.amp * g)
            round_ = np.where(x > 0.5, _VOWEL_ROUND[vowel], round_)
    return open_, round_


# ----------------------------------------------------------------------------------------------
# Face
# ----------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _face_track(spec: ClipSpec, actor: _Actor, plan: _Plan, face: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame face parameters (nframes x len(_FACE_KEYS)), pose (nframes x 4), blink factor."""
    nf = plan.nframes
    t = (np.arange(nf) + 0.5) / FPS
    # expression: builds up from near-neutral, holds, then fades
    on = max(0.03, plan.lead - rng.uniform(0.1, 0.55))
    rise = rng.uniform(0.35, 0.85)
    off = plan.duration - rng.uniform(0.45, 1.0)
    fade = rng.uniform(0.35, 0.8)
    end_level = rng.uniform(0.15, 0.5)
    level = _smoothstep((t - on) / rise) * (1 - (1 - end_level) * _smoothstep((t - off) / fade))
    params = np.asarray(actor.rest)[None, :] + level[:, None] * face[None, :]
    params = params + np.cumsum(rng.normal(0, 0.004, (nf, len(_FACE_KEYS))), axis=0)  # micro-movements

    talk_open, talk_round = _talk_track(plan)
    params[:, 0] += actor.talk * talk_open
    params[:, 1] += 0.5 * actor.talk * talk_round * (talk_open > 0.05)

    # blinks: 1 or 2, a few frames each
    blink = np.ones(nf)
    shape = np.array([0.6, 0.15, 0.0, 0.25, 0.7])
    for _ in range(1 + int(rng.random() < 0.5)):
        k = int(rng.integers(0, max(1, nf - len(shape))))
        blink[k:k + len(shape)] = np.minimum(blink[k:k + len(shape)], shape[: nf - k])

    # head pose: smooth sway (dx, dy), roll (degrees), scale
    pose = np.zeros((nf, 4))
    for j, amp in enumerate((actor.sway, 0.6 * actor.sway, actor.roll, 0.012)):
        for _ in range(3):
            f = rng.uniform(0.15, 1.2)
            pose[:, j] += amp / 2 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    pose[:, :2] += rng.normal(0, 0.4, (nf, 2))  # small per-frame jitter
    pose[:, 3] += 1.0
    return params, pose, blink


class _FaceRenderer:
    """Draws the face into a reused square BGR canvas (the frame's height) and pastes it into a
    reused I420 frame.  The face is designed on a 720-px canvas; at another ``height`` every
    coordinate, radius and line width is scaled, so a low-resolution corpus shows the same faces."""

    SHIFT = 4

    def __init__(self, actor: _Actor, height: int = HEIGHT):
        import cv2

        self.cv2 = cv2
        self.actor = actor
        width = frame_width(height)
        self.size = height
        self.zoom = height / FACE_SIZE
        self.canvas = np.empty((height, height, 3), np.uint8)
        self.i420 = np.empty((height * 3 // 2, width), np.uint8)
        self.i420[:height] = 235  # white in limited-range BT.601
        self.i420[height:] = 128
        x0 = (width - height) // 2
        self._y = self.i420[:height, x0:x0 + height]
        h4 = height // 4
        self._u = self.i420[height:height + h4].reshape(height // 2, width // 2)[:, x0 // 2:(x0 + height) // 2]
        self._v = self.i420[height + h4:].reshape(height // 2, width // 2)[:, x0 // 2:(x0 + height) // 2]
        ac = actor
        skin = np.array(ac.skin)
        self.skin = tuple(float(c) for c in skin)
        self.skin_dark = tuple(float(c) for c in skin * 0.72)
        self.line = tuple(float(c) for c in skin * 0.3)
        self.hair = tuple(float(c) for c in ac.hair)
        self.brow = tuple(float(c) for c in np.array(ac.hair) * 0.35 + 10)
        self.M = np.eye(2, 3)
        self.s = 1.0
        self.roll = 0.0

    # geometry helpers ----------------------------------------------------------------------
    def _set_pose(self, dx: float, dy: float, roll: float, scale: float) -> None:
        r = np.deg2rad(roll)
        scale = scale * self.zoom
        c, s = np.cos(r) * scale, np.sin(r) * scale
        cx, cy = self.actor.center
        k = self.zoom
        self.M = np.array([[c, -s, (cx + dx) * k], [s, c, (cy + dy) * k]])
        self.s, self.roll = scale, roll

    def _thick(self, thickness: int) -> int:
        """A line width of the 720-px design at this canvas size (filled shapes stay -1)."""
        return thickness if thickness < 0 or self.zoom == 1 else max(1, int(round(thickness * self.zoom)))

    def _p(self, xy) -> np.ndarray:
        xy = np.asarray(xy, float).reshape(-1, 2)
        return np.round((xy @ self.M[:, :2].T + self.M[:, 2]) * (1 << self.SHIFT)).astype(np.int32)

    def _ellipse(self, center, axes, color, thickness=-1, start=0, end=360, angle=0.0) -> None:
        c = self._p(center)[0]
        ax = (max(1, int(round(axes[0] * self.s * (1 << self.SHIFT)))),
              max(1, int(round(axes[1] * self.s * (1 << self.SHIFT)))))
        self.cv2.ellipse(self.canvas, (int(c[0]), int(c[1])), ax, angle + self.roll, start, end, color,
                         self._thick(thickness), self.cv2.LINE_AA, self.SHIFT)

    def _poly(self, pts, color, thickness, closed=False) -> None:
        self.cv2.polylines(self.canvas, [self._p(pts)], closed, color, self._thick(thickness), self.cv2.LINE_AA,
                           self.SHIFT)

    def _fill(self, pts, color) -> None:
        self.cv2.fillPoly(self.canvas, [self._p(pts)], color, self.cv2.LINE_AA, self.SHIFT)

    # drawing -------------------------------------------------------------------------------
    def draw(self, p: np.ndarray, pose: np.ndarray, blink: float) -> np.ndarray:
        ac = self.actor
        A, B = ac.head_a, ac.head_b
        op, width, curve, brow, tilt, eye, nose, lip, teeth = p
        self.canvas[:] = 255
        self._set_pose(*pose)

        # hair behind the head, neck, dark shirt, ears, head
        if not ac.male:
            self._ellipse((0, 0.1 * B), (1.2 * A, 1.08 * B), self.hair)
            self._fill([(-1.2 * A, 0.1 * B), (1.2 * A, 0.1 * B), (1.25 * A, 1.25 * B), (-1.25 * A, 1.25 * B)], self.hair)
        self._fill([(-0.42 * A, 0.6 * B), (0.42 * A, 0.6 * B), (0.45 * A, 1.2 * B), (-0.45 * A, 1.2 * B)], self.skin_dark)
        self._fill([(-0.5 * A, 1.08 * B), (0, 1.22 * B), (0.5 * A, 1.08 * B), (1.45 * A, 1.3 * B),
                    (1.68 * A, 1.6 * B), (1.72 * A, 3 * B), (-1.72 * A, 3 * B), (-1.68 * A, 1.6 * B),
                    (-1.45 * A, 1.3 * B)], (30, 30, 30))
        for sx in (-1, 1):
            self._ellipse((sx * 0.97 * A, -0.02 * B), (0.14 * A, 0.2 * B), self.skin_dark)
        self._ellipse((0, 0), (A, B), self.skin)
        self._ellipse((0, -0.5 * B), (1.03 * A, 0.58 * B), self.hair, -1, 180, 360)

        # eyes
        openness = float(np.clip(1.0 + eye, 0.05, 1.9)) * blink
        eh = ac.eye_h * openness
        for sx in (-1, 1):
            cx, cy = sx * ac.eye_sep, ac.eye_y
            if eh < 2.0:
                self._poly([(cx - ac.eye_w, cy), (cx + ac.eye_w, cy)], self.line, 4)
                continue
            self._ellipse((cx, cy), (ac.eye_w, eh), (248, 248, 248))
            r = 0.42 * ac.eye_w
            self._ellipse((cx, cy), (r, min(r, eh)), ac.iris)
            self._ellipse((cx, cy), (0.45 * r, min(0.45 * r, eh)), (20, 20, 20))
            self._ellipse((cx, cy), (ac.eye_w, eh), (30, 30, 30), 6, 180, 360)
            self._ellipse((cx, cy), (ac.eye_w, eh), self.skin_dark, 2, 0, 180)

        # brows: raised with `brow`, inner ends up (+) or down (-) with `tilt`
        by = ac.eye_y - ac.eye_h - 0.085 * B - 0.1 * B * brow
        for sx in (-1, 1):
            inner = (sx * (ac.eye_sep - 0.85 * ac.eye_w), by - 0.09 * B * tilt)
            mid = (sx * ac.eye_sep, by - 0.025 * B - 0.01 * B * tilt)
            outer = (sx * (ac.eye_sep + 1.1 * ac.eye_w), by + 0.02 * B + 0.02 * B * tilt)
            self._poly([inner, mid, outer], self.brow, ac.brow_th)

        # nose, wrinkles (disgust) and nasolabial folds (smile, disgust)
        ny = ac.nose_y
        self._poly([(0.0, ac.eye_y + 0.06 * B), (0.05 * A, ny - 0.03 * B), (0.0, ny), (-0.09 * A, ny - 0.01 * B)],
                   self.line, 3)
        for sx in (-1, 1):
            self._ellipse((sx * 0.07 * A, ny - 0.005 * B), (0.035 * A, 0.015 * B), self.line)
        wr = float(np.clip(nose, 0, 1.5))
        if wr > 0.05:
            col = self._mix(min(0.8, 0.55 * wr))
            for k in range(2):
                y = ac.eye_y + (0.03 + 0.045 * k) * B
                self._poly([(-0.1 * A, y + 0.01 * B), (0, y), (0.1 * A, y + 0.01 * B)], col, 5)
        fold = float(np.clip(max(0.8 * nose, 0.6 * curve), 0, 1.2))
        my, mw = ac.mouth_y, ac.mouth_w * (1 + width)
        if fold > 0.05:
            col = self._mix(min(0.75, 0.55 * fold))
            for sx in (-1, 1):
                self._poly([(sx * 0.13 * A, ny - 0.02 * B), (sx * (mw + 0.02 * A), 0.5 * (ny + my)),
                            (sx * (mw + 0.06 * A), my + 0.04 * B)], col, 6)

        # mouth
        s = np.linspace(-1.0, 1.0, 15)
        lift = 0.14 * B * curve
        base = my - lift * s * s + 0.35 * lift
        oh = 0.28 * B * max(0.0, op)
        bulge = 1 - s * s
        upper = base - 0.25 * oh * bulge - 0.08 * B * max(lip, 0) * np.clip(0.4 - s, 0, 1) * bulge
        lower = base + 0.75 * oh * bulge ** 0.8
        xs = s * mw
        if oh > 1.5:
            inside = np.concatenate([np.stack([xs, upper], 1), np.stack([xs[::-1], lower[::-1]], 1)])
            self._fill(inside, (25, 15, 35))
            th = float(np.clip(teeth, 0, 1)) * min(0.35 * oh, 0.05 * B)
            if th > 1.0:
                band = np.concatenate([np.stack([xs * 0.8, upper + 1], 1), np.stack([xs[::-1] * 0.8, upper[::-1] + th], 1)])
                self._fill(band, (240, 240, 240))
        self._poly(np.stack([xs, upper], 1), ac.lips, 9)
        self._poly(np.stack([xs, lower], 1), ac.lips, 11)
        return self.canvas

    def _mix(self, k: float) -> tuple:
        return tuple(float(a * (1 - k) + b * k) for a, b in zip(self.skin, self.line))

    def to_i420(self) -> np.ndarray:
        yuv = self.cv2.cvtColor(self.canvas, self.cv2.COLOR_BGR2YUV_I420)
        n, h2 = self.size, self.size // 2
        self._y[:] = yuv[:n]
        self._u[:] = yuv[n:n + n // 4].reshape(h2, h2)
        self._v[:] = yuv[n + n // 4:].reshape(h2, h2)
        return self.i420


# ----------------------------------------------------------------------------------------------
# One clip
# ----------------------------------------------------------------------------------------------


def _clip_cues(spec: ClipSpec, actor: _Actor, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    name = spec.emotion_name
    scale = _INTENSITY_SCALE[spec.intensity]
    face = (np.array(_FACE[name]) * scale * actor.face_expr * rng.uniform(0.85, 1.1)
            + rng.normal(0, 1, len(_FACE_KEYS)) * _FACE_CLIP_NOISE)
    values, contour = _VOICE[name]
    voice = (np.array(values) * scale * actor.voice_expr * rng.uniform(0.8, 1.15)
             + rng.normal(0, 1, len(_VOICE_KEYS)) * _VOICE_CLIP_NOISE)
    voice[_VOICE_KEYS.index("range")] += 2.5 * (1 - scale * actor.voice_expr)  # a neutral voice still moves
    return face, voice, contour


def _comment(seed: int, spec: ClipSpec) -> str:
    return json.dumps({"generator": GENERATOR_NAME, "generator_version": GENERATOR_VERSION, "seed": int(seed),
                       "clip": spec.filename}, sort_keys=True)


def render_clip(spec: ClipSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The clip's content without encoding: (audio (2, n) float32, face params, pose, blink)."""
    actor = _actor(seed, spec.actor)
    r_cue, r_time, r_audio, r_face = (np.random.default_rng(s) for s in np.random.SeedSequence(spec.clip_seed).spawn(4))
    face, voice, contour = _clip_cues(spec, actor, r_cue)
    plan = _plan(spec, actor, voice, r_time)
    audio = _synth_audio(spec, actor, plan, voice, contour, r_audio)
    params, pose, blink = _face_track(spec, actor, plan, face, r_face)
    return audio, params, pose, blink


def frame_width(height: int) -> int:
    """The 16:9 frame width for a frame ``height`` (1280 for RAVDESS's 720)."""
    return height * 16 // 9


def _check_height(height: int) -> None:
    # a multiple of 36 keeps 16:9 frames, the face square and its chroma planes on whole pixels
    if not isinstance(height, (int, np.integer)) or not 144 <= height <= 1080 or height % 36:
        raise CorpusError(f"height must be a multiple of 36 in 144..1080 (720 = RAVDESS), got {height!r}")


def _write_clip(path: Path, spec: ClipSpec, seed: int, height: int = HEIGHT) -> None:
    import av

    actor = _actor(seed, spec.actor)
    audio, params, pose, blink = render_clip(spec, seed)
    renderer = _FaceRenderer(actor, height)
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


def read_manifest(root: Path) -> dict | None:
    """The corpus manifest, or None when the folder has none (or an unreadable one)."""
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
    manifest = read_manifest(root)
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
    codes = _emotion_codes(emotions)
    _check_height(height)
    params = _params(seed, actors, repetitions, codes, height)

    old = read_manifest(root)
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
        current = read_manifest(root)
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
