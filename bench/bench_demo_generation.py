"""Time the generation of the synthetic demo corpus.

    python bench/bench_demo_generation.py [--actors 10] [--repetitions 1] [--workers 2] [--height 720] [--root DIR] [--keep]

Generates the corpus into a fresh temporary folder (or --root, which must not hold a corpus
yet) and prints the clip rate, the wall time, the corpus size and the peak RSS of this process
and of its worker processes.  A second call to generate() on the finished folder is timed too
(the idempotent fast path).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    from emokit_plugins.corpora import demo_synth as ds
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from plugins.corpora import demo_synth as ds  # type: ignore


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actors", type=int, default=10)
    ap.add_argument("--repetitions", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--height", type=int, default=ds.HEIGHT, help="frame height (16:9)")
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus")
    args = ap.parse_args(argv)

    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.mkdtemp(prefix="emokit-demo-bench-")
        root = Path(tmp) / "corpus"
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] > 10:
            last[0] = now
            print(f"  {done}/{total} clips, {now - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    ds.generate(root, actors=args.actors, repetitions=args.repetitions, seed=args.seed,
                workers=args.workers, progress=progress, height=args.height)
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    ds.generate(root, actors=args.actors, repetitions=args.repetitions, seed=args.seed, workers=args.workers,
                height=args.height)
    again = time.perf_counter() - t1

    manifest = ds.read_generation_record(root)
    n = manifest["clips"]
    size = sum(f["bytes"] for f in manifest["files"])
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"generator {ds.GENERATOR_NAME} v{ds.GENERATOR_VERSION}: actors={args.actors} "
          f"repetitions={manifest['repetitions']} seed={args.seed} workers={args.workers} cpus={os.cpu_count()} "
          f"frames {manifest['width']}x{manifest['height']}")
    print(f"clips: {n}   time: {elapsed:.1f} s   rate: {n / elapsed:.2f} clips/s   "
          f"size: {size / 2**20:.1f} MiB ({size / n / 1024:.0f} KiB/clip)")
    print(f"second call (already generated): {again * 1000:.1f} ms")
    print(f"peak RSS: main {self_rss:.0f} MiB, largest worker {child_rss:.0f} MiB")
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    elif args.keep:
        print(f"corpus kept at {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
