"""The demo corpus's voices: a source-filter speech synthesiser driven by the clip's plan."""

from __future__ import annotations

import numpy as np

from .synth_cues import (CONSONANTS, FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, VOWEL_INDEX, VOWEL_OPEN, VOWEL_ROUND, VOWELS,
                         Actor, ClipSpec, Plan)


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


def synth_audio(spec: ClipSpec, actor: Actor, plan: Plan, voice: np.ndarray, contour: str,
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
    vj = np.asarray(actor.vowel_jitter).reshape(len(VOWELS), 4)
    bws = np.array([80.0, 100.0, 140.0, 200.0]) * actor.bandwidth * (1 + 1.5 * b)
    for syl in plan.syllables:
        segs = [(syl.vowel, syl.v0, syl.v1, 1.0)]
        if syl.coda in VOWELS:
            segs.append((syl.coda, syl.v1, syl.end, 0.55))
        for vowel, ta, tb, g in segs:
            i0 = max(0, int((ta - base) * sr) - pad)
            i1 = min(m, int((tb - base) * sr) + pad)
            if i1 - i0 < 16:
                continue
            x = src[i0:i1] * _ramp_env(i1 - i0, int(0.02 * sr), int(0.035 * sr)) * (syl.amp * g)
            x = np.concatenate([x, np.zeros(min(tail, m - i1))])
            fs = np.array(VOWELS[vowel]) * actor.formant_scale * (1 + vj[VOWEL_INDEX[vowel]])
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
            lo, hi, dur, amp = CONSONANTS[kind]
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


def talk_track(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Per video frame: mouth opening and rounding from the syllables being spoken."""
    t = (np.arange(plan.nframes) + 0.5) / FPS
    open_ = np.zeros(plan.nframes)
    round_ = np.zeros(plan.nframes)
    for syl in plan.syllables:
        for vowel, ta, tb, g in ((syl.vowel, syl.v0, syl.v1, 1.0), (syl.coda, syl.v1, syl.end, 0.5)):
            if vowel not in VOWELS or tb <= ta:
                continue
            x = np.clip(np.minimum(t - ta + 0.04, tb + 0.04 - t) / 0.06, 0, 1)
            open_ = np.maximum(open_, x * VOWEL_OPEN[vowel] * syl.amp * g)
            round_ = np.where(x > 0.5, VOWEL_ROUND[vowel], round_)
    return open_, round_
