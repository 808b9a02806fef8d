"""Speech feature throughput on this machine (CPU, or CUDA where there is one):
DeepSpectrum images, AlexNet fc7, CNN14 embeddings at batch 1..64 and two widths.

    python bench/bench_speech_features.py [--device cpu|cuda] [--seconds 4]
"""

import argparse
import time

import numpy as np
import torch

from emokit_plugins.speech.cnn14 import Cnn14
from emokit_plugins.speech.deepspectrum import AlexNetFeatures, fc7_features, spectrogram_image

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--seconds", type=float, default=4.0)
args = parser.parse_args()
rng = np.random.default_rng(0)
clips = rng.normal(0, 0.1, (64, int(16000 * args.seconds))).astype(np.float32)


def rate(fn, n, repeats=3):
    fn()  # warm-up
    best = min(_timed(fn) for _ in range(repeats))
    return n / best


def _timed(fn):
    start = time.perf_counter()
    fn()
    if args.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


print(f"device {args.device}, {args.seconds:.0f}-s clips, torch {torch.__version__}, threads {torch.get_num_threads()}")
print(f"DeepSpectrum images: {rate(lambda: [spectrogram_image(c) for c in clips[:32]], 32):.0f} clips/s")
images = np.stack([spectrogram_image(c) for c in clips[:32]])
alexnet = AlexNetFeatures()
print(f"AlexNet fc7 (batch 32): {rate(lambda: fc7_features(images, alexnet, batch_size=32, device=args.device), 32):.0f} images/s")
for width in (0.25, 1.0):
    net = Cnn14(width=width).to(args.device).eval().to(memory_format=torch.channels_last)
    for batch in (1, 8, 64):
        x = torch.from_numpy(clips[:batch]).to(args.device)

        def run(x=x, net=net):
            with torch.inference_mode(), torch.autocast(args.device, dtype=torch.bfloat16,
                                                        enabled=args.device == "cuda"):
                net(x)

        print(f"CNN14 width {width}: batch {batch}: {rate(run, batch, repeats=2):.1f} clips/s")
