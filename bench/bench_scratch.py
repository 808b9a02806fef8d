"""Wall time of one cross-validation fold of a pipeline trained from scratch (default:
speech.panns_ft with its ``scratch`` profile on the full-size demo corpus, 1440 clips).

Prints the corpus, the recipe, the time to extract (cached after the first call), to train
(steps, seconds per step, training clips per second) and to predict the held-out actors, the
process CPU time, the peak GPU memory, and the fold's accuracy against ZeroR (one fold, for
orientation only: scores belong in the registry, through ``emokit run``).

    python bench/bench_scratch.py --device cuda                       # the GPU figure
    python bench/bench_scratch.py --device cpu --actors 10 -p max_epochs=2 -p crop_seconds=2
    python bench/bench_scratch.py --pipeline face.stn_vote --profile scratch --actors 10

``-p NAME=VALUE`` overrides a pipeline parameter as ``emokit run -p`` does.  The full-size
demo corpus is generated on first use into $EMOKIT_HOME/demo (minutes; ``--workers``).
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="speech.panns_ft")
    parser.add_argument("--profile", default="scratch")
    parser.add_argument("--device", default="auto", help="cuda, cpu, or auto")
    parser.add_argument("--actors", type=int, default=24, help="demo corpus actors (24 = 1440 clips, the paper's folds)")
    parser.add_argument("--fold", type=int, default=0, help="which fold to hold out")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="decoding processes")
    parser.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE (repeatable)")
    args = parser.parse_args()

    import torch

    from emokit_core.cache import FeatureCache
    from emokit_core.plugins import PluginHost
    from emokit_core.registry import Registry
    from emokit_core.progress import Reporter
    from emokit_core.folds import predict, seed_everything
    from emokit_core.runner import Runner
    from emokit_core.training import pick_device
    from emokit_plugins.corpora.demo import load_demo

    host = PluginHost()
    spec = host.pipeline(args.pipeline)
    overrides = dict(item.split("=", 1) for item in args.param)
    if "device" in spec.params:
        overrides.setdefault("device", args.device)
    profile, params = spec.resolve(args.profile, overrides)
    device = pick_device(str(params.get("device", "auto")))

    started = time.perf_counter()
    corpus = load_demo(actors=args.actors, workers=args.workers)
    print(f"corpus {corpus.name}: {len(corpus.clips)} clips, fold {args.fold} holds out actors "
          f"{' '.join(corpus.folds[args.fold])} ({time.perf_counter() - started:.1f} s to load)")

    class Quiet(Reporter):
        def warn(self, message: str) -> None:
            print(f"  note: {message}", file=sys.stderr)

    registry = Registry(Path(tempfile.mkdtemp()) / "bench.db")  # resolves -p weights=PATH; records nothing
    runner = Runner(host, registry, FeatureCache(), Quiet(), workers=args.workers)
    weights = runner.resolve_weights(spec, params)
    recipe = spec.create({**params, **weights})
    started = time.perf_counter()
    keys, skipped = runner.extract(corpus, {spec.name: recipe})
    print(f"features: {time.perf_counter() - started:.1f} s ({runner.cache.hits} cached, "
          f"{runner.cache.misses} extracted; {len(skipped)} clips skipped)")

    clips = [c for c in corpus.clips if c.id not in skipped]
    index = {c: i for i, c in enumerate(corpus.classes)}
    y = np.array([index[c.label] for c in clips])
    actors = np.array([c.actor for c in clips])
    test = np.isin(actors, corpus.folds[args.fold])
    inputs = [runner.cache.load(keys[spec.name][c.id], mmap=True) for c in clips]
    train_x = [inputs[i] for i in np.flatnonzero(~test)]
    test_x = [inputs[i] for i in np.flatnonzero(test)]

    shown = {k: v for k, v in params.items() if v != spec.defaults[k]}
    print(f"{spec.name}, profile {profile}, on {device} ({torch.get_num_threads()} CPU threads): "
          + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    model = recipe.model
    seed_everything(model, 0)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    model.fit(train_x, y[~test], groups=actors[~test])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, pred = predict(model, test_x)
    predict_seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)

    network = getattr(model, "frame_classifier_", model)  # a frame model trains its frame classifier
    steps = getattr(network, "n_steps_", None)
    print(f"train: {len(train_x)} clips, {fit_seconds:.1f} s"
          + (f", {steps} steps, {fit_seconds / steps:.3f} s/step" if steps else ""))
    print(f"predict: {len(test_x)} clips, {predict_seconds:.1f} s")
    print(f"fold wall time {fit_seconds + predict_seconds:.1f} s; process CPU time {cpu:.1f} s")
    if device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    zeror = np.bincount(y[~test], minlength=len(corpus.classes)).argmax()
    print(f"fold accuracy {100 * (pred == y[test]).mean():.1f} % (ZeroR {100 * (y[test] == zeror).mean():.1f} %)")


if __name__ == "__main__":
    main()
