"""Speech feature and training throughput on this machine (CPU, or CUDA where there is one).

* DeepSpectrum images and AlexNet fc7 per second;
* CNN14 embeddings (model alone, channels-last) in clips/s at each batch size, fp32 and bf16;
* one CNN14 fine-tuning step (Adam, NLL) at batch 24;
* where the time of a CNN14 batch goes (torch profiler, top operators);
* ``--e2e``: every clip of the demo corpus embedded from its file (decoding and resampling in
  worker processes, the batched model in this one), cold feature cache.

    python bench/bench_speech_features.py [--device cpu|cuda] [--seconds 4] [--batches 1,8,64]
                                          [--width 1.0] [--e2e --actors 24 --workers 16]
"""

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from emokit_plugins.speech.cnn14 import Cnn14, replace_head
from emokit_plugins.speech.deepspectrum import AlexNetFeatures, fc7_features, spectrogram_image

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--seconds", type=float, default=4.0)
parser.add_argument("--batches", default=None, help="comma-separated [cpu: 1,8,64; cuda: 1,8,32,64,128,256]")
parser.add_argument("--width", type=float, default=1.0, help="CNN14 width (1.0 = the published network)")
parser.add_argument("--e2e", action="store_true", help="also embed the demo corpus from its files")
parser.add_argument("--actors", type=int, default=24, help="--e2e: demo corpus actors (24 = 1440 clips)")
parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="--e2e: decoding processes")
args = parser.parse_args()
cuda = args.device.startswith("cuda")
batches = [int(b) for b in (args.batches or ("1,8,32,64,128,256" if cuda else "1,8,64")).split(",")]
samples = int(16000 * args.seconds)
rng = np.random.default_rng(0)


def sync():
    if cuda:
        torch.cuda.synchronize()


def best_seconds(fn, repeats=3):
    fn()  # warm-up (cuDNN autotuning, allocator)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def autocast(enabled):
    return torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=enabled)


print(f"device {args.device} ({torch.cuda.get_device_name() if cuda else f'{torch.get_num_threads()} threads'}), "
      f"{args.seconds:g}-s clips at 16 kHz, torch {torch.__version__}")
clips = rng.normal(0, 0.1, (32, samples)).astype(np.float32)
print(f"DeepSpectrum images: {32 / best_seconds(lambda: [spectrogram_image(c) for c in clips]):.0f} clips/s (1 process)")
images = np.stack([spectrogram_image(c) for c in clips])
alexnet = AlexNetFeatures()
fc7 = best_seconds(lambda: fc7_features(images, alexnet, batch_size=32, device=args.device))
print(f"AlexNet fc7 (batch 32): {32 / fc7:.0f} images/s")

net = Cnn14(width=args.width).to(args.device).eval().to(memory_format=torch.channels_last)
print(f"\nCNN14 width {args.width:g} embeddings, model alone (clips/s):")
print(f"{'batch':>6} {'fp32':>10} {'bf16':>10}")
for batch in batches:
    x = torch.randn(batch, samples, device=args.device) * 0.1
    rates = []
    for bf16 in (False, True):
        def forward(x=x, bf16=bf16):
            with torch.inference_mode(), autocast(bf16):
                net(x)

        rates.append(batch / best_seconds(forward, repeats=3 if cuda or batch < 64 else 1))
    print(f"{batch:>6} {rates[0]:>10.1f} {rates[1]:>10.1f}")

train_net = replace_head(Cnn14(width=args.width), 8).to(args.device).train().to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(train_net.parameters(), lr=1e-3)
x = torch.randn(24, samples, device=args.device) * 0.1
y = torch.randint(0, 8, (24,), device=args.device)


def train_step():
    with autocast(cuda):
        log_probs = train_net(x)["log_probs"]
    loss = torch.nn.functional.nll_loss(log_probs.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


steps = 10 if cuda else 2
step = best_seconds(lambda: [train_step() for _ in range(steps)], repeats=2) / steps
print(f"\nfine-tuning step at batch 24 ({'bf16 autocast' if cuda else 'fp32'}): {1000 * step:.1f} ms")

x = torch.randn(64 if cuda else 8, samples, device=args.device) * 0.1
print(f"\nwhere a batch-{len(x)} {'bf16' if cuda else 'fp32'} forward spends its time (top operators by self time):")
activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
with torch.profiler.profile(activities=activities) as prof, torch.inference_mode(), autocast(cuda):
    net(x)
    sync()
sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
print(prof.key_averages().table(sort_by=sort, row_limit=8))

if args.e2e:
    from emokit_core.cache import FeatureCache
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.runner import Runner
    from emokit_plugins.corpora.demo import load_demo
    from emokit_plugins.speech.extractors import PannsEmbedding
    from emokit_core.specs import Recipe

    corpus = load_demo(actors=args.actors, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(PluginHost(), Registry(f"{tmp}/r.db"), FeatureCache(f"{tmp}/cache"), workers=args.workers)
        recipe = Recipe(PannsEmbedding(width=args.width, device=args.device), None)
        start = time.perf_counter()
        _, skipped = runner.extract(corpus, {"speech.panns_svc": recipe})
        seconds = time.perf_counter() - start
    n = len(corpus.clips) - len(skipped)
    print(f"\nend to end from files: {n} clips of the demo corpus ({args.actors} actors) embedded in {seconds:.1f} s "
          f"({n / seconds:.0f} clips/s; {args.workers} decoding workers, cold cache)")
