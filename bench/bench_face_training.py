"""Face training times on a demo corpus: one STN epoch over every frame of the training
clips (paper: batch 128, Adam), then the paper's bi-LSTM (2 layers of 300 units, 2 attention
layers) on the STN's flatten-810 sequences, per epoch; peak host and GPU memory.

    python bench/bench_face_training.py [--actors 24] [--device cuda] [--workers 16] [--lstm-epochs 3]

Frames come from the feature cache (extracted first if missing, in --workers processes), so a
second call times the training alone.
"""

import argparse
import os
import resource
import time

import numpy as np
import torch

from emokit_core.cache import FeatureCache
from emokit_core.plugins import PluginHost
from emokit_core.registry import Registry
from emokit_core.runner import Runner
from emokit_core.specs import Recipe
from emokit_plugins.corpora.demo import load_demo
from emokit_plugins.face.bilstm import BiLSTMAggregator
from emokit_plugins.face.frames import FaceSaliencyFrames
from emokit_plugins.face.recognizer import STNFrameClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--actors", type=int, default=24, help="demo corpus actors (24 = 1440 clips)")
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
parser.add_argument("--lstm-epochs", type=int, default=3)
parser.add_argument("--registry", default="bench/out/face-training.db")
args = parser.parse_args()
cuda = args.device.startswith("cuda")


def sync():
    if cuda:
        torch.cuda.synchronize()


corpus = load_demo(actors=args.actors, workers=args.workers)
os.makedirs(os.path.dirname(args.registry) or ".", exist_ok=True)
cache = FeatureCache()
runner = Runner(PluginHost(), Registry(args.registry), cache, workers=args.workers)
start = time.perf_counter()
keys, skipped = runner.extract(corpus, {"face": Recipe(FaceSaliencyFrames(), None)})
print(f"frames of {len(corpus.clips)} clips ready in {time.perf_counter() - start:.1f} s "
      f"(cache hits {cache.hits}, misses {cache.misses})")
clips = [c for c in corpus.clips if c.id not in skipped]
classes = {c: i for i, c in enumerate(corpus.classes)}
held_out = set(corpus.folds[0])
train = [c for c in clips if c.actor not in held_out]
sequences = [cache.load(keys["face"][c.id], mmap=True) for c in train]
frames = np.concatenate([np.asarray(s).reshape(len(s), -1) for s in sequences])
labels = np.repeat([classes[c.label] for c in train], [len(s) for s in sequences])
print(f"fold 0 training part: {len(train)} clips, {len(frames)} frames")

stn = STNFrameClassifier(max_epochs=1, patience=1, val_fraction=0.0, frame_output="flatten", device=args.device)
sync()
start = time.perf_counter()
stn.fit(frames, labels)
sync()
stn_epoch = time.perf_counter() - start
print(f"STN: one epoch over {len(frames)} frames at batch 128 on {args.device}: {stn_epoch:.1f} s "
      f"({len(frames) / stn_epoch:.0f} frames/s)")

start = time.perf_counter()
flatten = [stn.transform(np.asarray(s).reshape(len(s), -1)) for s in sequences]
sync()
print(f"STN flatten-810 of every training frame: {time.perf_counter() - start:.1f} s")

y = np.array([classes[c.label] for c in train])
lstm = BiLSTMAggregator(layers=2, hidden=300, max_epochs=args.lstm_epochs, patience=args.lstm_epochs + 1,
                        val_fraction=0.0, device=args.device)
sync()
start = time.perf_counter()
lstm.fit(flatten, y)
sync()
per_epoch = (time.perf_counter() - start) / args.lstm_epochs
print(f"bi-LSTM (2x300, 2 attention layers) on {len(train)} sequences, batch 64: {per_epoch:.2f} s per epoch "
      f"(paper budget 500 epochs at most, patience 30)")
print(f"peak host memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
      + (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if cuda else ""))
