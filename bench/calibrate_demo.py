"""Calibrate the synthetic demo corpus with cheap baselines under subject-wise 5-fold CV.

    python bench/calibrate_demo.py [--actors 10] [--repetitions 1] [--seed 0] [--root DIR]
                                   [--workers 2] [--direct] [--leaky]

Generates the demo corpus (into a temporary folder unless --root is given), decodes every mp4
with PyAV and scores three baselines, with actor a in fold (a - 1) % 5:

* speech: MFCC (20 incl. c0, 16 kHz mono) mean + std per clip -> StandardScaler + RBF SVC;
* face: every 3rd frame, centre 720x720 crop -> 48x48 grayscale -> PCA(50) + logistic
  regression per frame -> max vote per clip;
* fusion: speech SVC decision values + face mean frame posteriors, out-of-fold, concatenated ->
  logistic regression, same folds.

It prints each accuracy beside ZeroR and the per-class recall.  --direct skips encoding and
decoding (renders the clips in memory; for quick iterations on the generator); --leaky also
prints clip-wise (actor-mixed) CV, which shows how much memorising actors would inflate scores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

try:
    from emokit_plugins.corpora import demo_synth as ds
    from emokit_plugins.corpora.synth_cues import make_actor
    from emokit_plugins.corpora.synth_face import FaceRenderer
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from plugins.corpora import demo_synth as ds  # type: ignore
    from plugins.corpora.synth_cues import make_actor  # type: ignore
    from plugins.corpora.synth_face import FaceRenderer  # type: ignore

SR = 16000
N_MFCC = 20
FRAME_STEP = 3


# ----------------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------------

_MEL = None


def _mel_bank(n_fft: int = 512, n_mels: int = 40) -> np.ndarray:
    def hz2mel(f):
        return 2595 * np.log10(1 + f / 700)

    def mel2hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    pts = mel2hz(np.linspace(hz2mel(20), hz2mel(SR / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / SR)
    bank = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        bank[i] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return bank


def mfcc_stats(x: np.ndarray) -> np.ndarray:
    """20 MFCCs (25 ms / 10 ms, 40 mel bands) -> mean and std over the clip."""
    from scipy.fft import dct

    global _MEL
    if _MEL is None:
        _MEL = _mel_bank()
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    win, hop = 400, 160
    n = 1 + max(0, (len(x) - win) // hop)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx] * np.hamming(win)
    power = np.abs(np.fft.rfft(frames, 512)) ** 2
    logmel = np.log(power @ _MEL.T + 1e-10)
    c = dct(logmel, type=2, axis=1, norm="ortho")[:, :N_MFCC]
    return np.concatenate([c.mean(0), c.std(0)])


def _face48(gray720: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(gray720, (48, 48), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0


def features_from_mp4(path: str) -> tuple[np.ndarray, np.ndarray]:
    import av
    from scipy.signal import resample_poly

    x0 = (ds.frame_width(ds.HEIGHT) - ds.HEIGHT) // 2
    faces, chunks = [], []
    with av.open(path) as box:
        for k, frame in enumerate(box.decode(video=0)):
            if k % FRAME_STEP == 0:
                gray = frame.to_ndarray(format="gray")
                faces.append(_face48(np.ascontiguousarray(gray[:, x0:x0 + ds.HEIGHT])))
    with av.open(path) as box:
        for frame in box.decode(audio=0):
            a = frame.to_ndarray()  # AAC decodes to planar float: (channels, samples)
            chunks.append(a if frame.format.is_planar else a.reshape(-1, len(frame.layout.channels)).T)
    audio = np.concatenate(chunks, axis=1).mean(0)
    mono = resample_poly(audio.astype(np.float64), 1, 3)
    return mfcc_stats(mono), np.stack(faces)


def features_direct(spec: ds.ClipSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2
    from scipy.signal import resample_poly

    audio, params, pose, blink = ds.render_clip(spec, seed)
    renderer = FaceRenderer(make_actor(seed, spec.actor))
    faces = []
    for k in range(0, len(params), FRAME_STEP):
        img = renderer.draw(params[k], pose[k], blink[k])
        faces.append(_face48(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)))
    mono = resample_poly(audio.mean(0).astype(np.float64), 1, 3)
    return mfcc_stats(mono), np.stack(faces)


def _job(args):
    mode, payload, seed = args
    import cv2

    cv2.setNumThreads(1)
    return features_from_mp4(payload) if mode == "mp4" else features_direct(payload, seed)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------


def _speech_model():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(C=1.0, gamma="scale", decision_function_shape="ovr"))


def _face_model():
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(PCA(50, random_state=0), LogisticRegression(C=1.0, max_iter=1000))


def _fusion_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000)


def evaluate(y, folds, speech, faces):
    """Out-of-fold predictions for speech, face and fusion.

    Fusion sees the speech SVC's one-vs-rest decision values and the face model's mean frame
    posteriors, both out-of-fold."""
    n, k = len(y), 8
    sp_post = np.zeros((n, k))
    fa_post = np.zeros((n, k))
    fa_pred = np.zeros(n, int)
    sp_pred = np.zeros(n, int)
    frame_clip = np.concatenate([np.full(len(f), i) for i, f in enumerate(faces)])
    frames = np.concatenate(faces)
    classes = np.arange(1, 9)
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        m = _speech_model().fit(speech[tr], y[tr])
        sp_pred[te] = m.predict(speech[te])
        sp_post[np.ix_(te, np.searchsorted(classes, m.classes_))] = m.decision_function(speech[te])
        ftr = tr[frame_clip]
        fm = _face_model().fit(frames[ftr], y[frame_clip[ftr]])
        cols = np.searchsorted(classes, fm.classes_)
        for i in np.where(te)[0]:
            p = fm.predict_proba(frames[frame_clip == i])
            votes = np.bincount(p.argmax(1), minlength=len(cols))
            best = np.flatnonzero(votes == votes.max())
            choice = best[np.argmax(p.mean(0)[best])]  # ties: the larger mean posterior
            fa_pred[i] = fm.classes_[choice]
            fa_post[i, cols] = p.mean(0)
    fused = np.hstack([sp_post, fa_post])
    fu_pred = np.zeros(n, int)
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        fu_pred[te] = _fusion_model().fit(fused[tr], y[tr]).predict(fused[te])
    return sp_pred, fa_pred, fu_pred


def report(title, y, preds) -> dict:
    zeror = np.bincount(y).max() / len(y)
    print(f"\n{title}  (n={len(y)}, ZeroR {zeror:.1%})")
    print("  " + "model".ljust(8) + "acc    " + " ".join(e[:5].rjust(6) for e in ds.EMOTIONS))
    out = {"zeror": zeror}
    for name, p in preds.items():
        rec = [np.mean(p[y == c] == c) if np.any(y == c) else float("nan") for c in range(1, 9)]
        acc = np.mean(p == y)
        out[name] = acc
        print(f"  {name.ljust(8)}{acc:6.1%} " + " ".join(f"{r:6.0%}" for r in rec))
    return out


def confusion(y, p, title):
    print(f"\n{title} confusion (rows true, cols predicted)")
    print("          " + " ".join(e[:5].rjust(5) for e in ds.EMOTIONS))
    for c in range(1, 9):
        row = [np.sum((y == c) & (p == d)) for d in range(1, 9)]
        print(f"  {ds.EMOTIONS[c - 1][:8].ljust(8)}" + " ".join(f"{v:5d}" for v in row))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actors", type=int, default=10)
    ap.add_argument("--repetitions", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", type=Path, default=None, help="corpus folder (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--direct", action="store_true", help="render in memory instead of encoding/decoding mp4")
    ap.add_argument("--leaky", action="store_true", help="also score clip-wise (actor-mixed) CV")
    ap.add_argument("--confusion", action="store_true", help="print confusion matrices")
    args = ap.parse_args(argv)

    reps = args.repetitions or ds.default_repetitions(args.actors)
    specs = ds.clip_specs(args.actors, reps, args.seed)
    t0 = time.time()
    tmp = None
    if args.direct:
        jobs = [("direct", s, args.seed) for s in specs]
    else:
        root = args.root
        if root is None:
            tmp = tempfile.TemporaryDirectory(prefix="emokit-demo-cal-")
            root = Path(tmp.name) / "corpus"
        ds.generate(root, actors=args.actors, repetitions=reps, seed=args.seed, workers=args.workers)
        print(f"corpus: {root} ({len(specs)} clips, generated/found in {time.time() - t0:.1f} s)")
        jobs = [("mp4", str(root / s.relpath), args.seed) for s in specs]
    t1 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        feats = list(pool.map(_job, jobs, chunksize=4))
    if tmp is not None:
        tmp.cleanup()
    print(f"features: {time.time() - t1:.1f} s ({'in-memory render' if args.direct else 'decoded mp4'})")

    y = np.array([s.emotion for s in specs])
    actors = np.array([s.actor for s in specs])
    speech = np.stack([f[0] for f in feats])
    faces = [f[1] for f in feats]
    t2 = time.time()
    folds = (actors - 1) % 5
    sp, fa, fu = evaluate(y, folds, speech, faces)
    res = report("subject-wise 5-fold CV", y, {"speech": sp, "face": fa, "fusion": fu})
    if args.confusion:
        confusion(y, sp, "speech")
        confusion(y, fa, "face")
        confusion(y, fu, "fusion")
    if args.leaky:
        rng = np.random.default_rng(0)
        leaky = np.empty(len(y), int)
        for c in np.unique(y):  # stratified clip-wise folds, actors mixed
            idx = np.flatnonzero(y == c)
            leaky[rng.permutation(idx)] = np.arange(len(idx)) % 5
        lsp, lfa, lfu = evaluate(y, leaky, speech, faces)
        report("clip-wise 5-fold CV (actors leak across folds)", y, {"speech": lsp, "face": lfa, "fusion": lfu})
    print(f"\ntraining/scoring: {time.time() - t2:.1f} s; total {time.time() - t0:.1f} s")
    ok = all(0.35 <= res[m] <= 0.80 for m in ("speech", "face", "fusion")) and res["fusion"] > max(res["speech"], res["face"])
    print("calibration:", "OK" if ok else "OUT OF RANGE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
