"""What the demo corpus's clips are made of: the clip list, the emotion cue tables, the actors
and the timing that voice and face share (``emokit_plugins.corpora.demo_synth`` renders them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from emokit_core.errors import CorpusError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
FPS = 30
HEIGHT = 720  # RAVDESS's frame height (1280x720); tests may ask for less
FACE_SIZE = 720  # the face is designed inside the central FACE_SIZE x FACE_SIZE square
SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
MIN_DURATION, MAX_DURATION = 2.9, 4.2

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


def emotion_codes(emotions: Iterable[str | int] | None) -> tuple[int, ...]:
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
    codes = emotion_codes(emotions)
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
FACE_KEYS = ("open", "width", "curve", "brow", "tilt", "eye", "nose", "lip", "teeth")
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
class Actor:
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


def make_actor(seed: int, actor: int) -> Actor:
    rng = np.random.default_rng([int(seed), actor, 0xAC70])
    male = actor % 2 == 1
    u = rng.uniform
    a = u(185, 205) * (1.03 if male else 0.97)
    b = a * u(1.22, 1.30)
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * u(0, 0.6) + rng.normal(0, 5, 3)
    lips = skin * np.array([0.45, 0.4, 0.7])
    rest = np.zeros(len(FACE_KEYS))
    rest[FACE_KEYS.index("curve")] = rng.normal(0, 0.12)
    rest[FACE_KEYS.index("brow")] = rng.normal(0, 0.12)
    rest[FACE_KEYS.index("tilt")] = rng.normal(0, 0.12)
    rest[FACE_KEYS.index("eye")] = rng.normal(0, 0.08)
    rest[FACE_KEYS.index("width")] = rng.normal(0, 0.06)
    vowel_jitter = tuple(rng.normal(0, 0.04, 4 * len(VOWELS)))
    return Actor(
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

VOWELS = {  # F1..F4 in Hz for a reference adult male voice
    "i": (280, 2250, 2890, 3500),
    "e": (500, 1750, 2480, 3500),
    "a": (710, 1150, 2450, 3500),
    "ae": (650, 1700, 2450, 3500),
    "o": (520, 880, 2400, 3400),
    "u": (320, 950, 2300, 3400),
    "er": (480, 1350, 1700, 3300),
    "ng": (300, 1100, 2300, 3300),
}
VOWEL_INDEX = {v: i for i, v in enumerate(VOWELS)}
VOWEL_OPEN = {"i": 0.35, "e": 0.6, "a": 1.0, "ae": 0.85, "o": 0.75, "u": 0.4, "er": 0.5, "ng": 0.2}
VOWEL_ROUND = {"i": 0.2, "e": 0.1, "a": 0.0, "ae": 0.05, "o": -0.3, "u": -0.4, "er": -0.1, "ng": 0.0}
# (onset consonant, vowel, coda, stress): "Kids are talking by the door" / "Dogs are sitting by the door"
_STATEMENTS = {
    1: (("k", "i", "z", 1.0), ("", "a", "er", 0.8), ("t", "a", "", 1.2), ("k", "i", "ng", 0.75),
        ("b", "ae", "", 1.0), ("dh", "e", "", 0.6), ("d", "o", "er", 1.4)),
    2: (("d", "o", "z", 1.15), ("", "er", "", 0.8), ("s", "i", "", 1.1), ("t", "i", "ng", 0.75),
        ("b", "ae", "", 1.0), ("dh", "e", "", 0.6), ("d", "u", "er", 1.4)),
}
# consonant noise: (low Hz, high Hz, duration s, amplitude relative to the vowels)
CONSONANTS = {
    "k": (1500, 3500, 0.03, 0.45), "t": (3500, 8000, 0.025, 0.45), "d": (2000, 5000, 0.02, 0.3),
    "b": (300, 1500, 0.015, 0.25), "s": (4500, 10000, 0.10, 0.30), "z": (3500, 9000, 0.07, 0.18),
    "dh": (1000, 6000, 0.045, 0.10),
}


@dataclass
class Syllable:
    onset: str
    vowel: str
    coda: str
    c0: float  # consonant start (s)
    v0: float  # vowel start
    v1: float  # vowel end
    end: float  # coda end
    amp: float


@dataclass
class Plan:
    nframes: int
    duration: float
    lead: float
    syllables: list


def plan_clip(spec: ClipSpec, actor: Actor, voice: np.ndarray, rng: np.random.Generator) -> Plan:
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
        c_d = min(CONSONANTS[onset][2], 0.3 * d) if onset else 0.0
        coda_d = 0.25 * d if coda else 0.0
        syllables.append(Syllable(onset, vowel, coda, t, t + c_d, t + d - coda_d, t + d, float(amp)))
        t += d
    return Plan(nframes, nframes / FPS, lead, syllables)


def clip_cues(spec: ClipSpec, actor: Actor, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    name = spec.emotion_name
    scale = _INTENSITY_SCALE[spec.intensity]
    face = (np.array(_FACE[name]) * scale * actor.face_expr * rng.uniform(0.85, 1.1)
            + rng.normal(0, 1, len(FACE_KEYS)) * _FACE_CLIP_NOISE)
    values, contour = _VOICE[name]
    voice = (np.array(values) * scale * actor.voice_expr * rng.uniform(0.8, 1.15)
             + rng.normal(0, 1, len(_VOICE_KEYS)) * _VOICE_CLIP_NOISE)
    voice[_VOICE_KEYS.index("range")] += 2.5 * (1 - scale * actor.voice_expr)  # a neutral voice still moves
    return face, voice, contour


def frame_width(height: int) -> int:
    """The 16:9 frame width for a frame ``height`` (1280 for RAVDESS's 720)."""
    return height * 16 // 9
