"""Local executor vs Ray on this machine, in one sitting: a five-fold baseline run
(speech.mfcc_svm face.pixels_vote fuse.logreg) and then the 27-point fusion grid on its two
modality runs, each through both executors into registries of their own, from the same cached
features; plus Ray's round trip for an empty task.

    python bench/bench_executor.py [--home DIR] [--actors 10]

Prints the wall time of each, the Ray/local ratio, Ray's start-up and its overhead per fold task,
and whether both executors recorded the same posteriors.

Measured on 2 cores, the 300-clip demo, 150 fold tasks: the baseline run 10.3 s local vs 8.9 s Ray
(0.86), the grid 16.5 s vs 13.2 s (0.80); Ray's start-up 5.2 s and 0.9 ms a task; the same
posteriors from both.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--home", help="EMOKIT_HOME with the demo corpus and its features (default: a fresh one)")
parser.add_argument("--actors", type=int, default=10)
args = parser.parse_args()
os.environ["EMOKIT_HOME"] = args.home or tempfile.mkdtemp(prefix="emokit-bench-executor-")

from emokit_core.cache import FeatureCache  # noqa: E402
from emokit_core.executors import LocalExecutor, RayExecutor, usable_cores  # noqa: E402
from emokit_core.fusion_grid import run_grid  # noqa: E402
from emokit_core.plugins import get_host  # noqa: E402
from emokit_core.registry import Registry  # noqa: E402
from emokit_core.runner import Runner  # noqa: E402

PROTOCOL = ["speech.mfcc_svm", "face.pixels_vote", "fuse.logreg"]
host = get_host()
corpus = host.read_corpus("demo", None, actors=args.actors, workers=usable_cores())
out = Path(tempfile.mkdtemp(prefix="emokit-bench-executor-registries-"))
cache = FeatureCache()
Runner(host, Registry(out / "warm.db"), cache, workers=usable_cores()).extract(
    corpus, {n: host.pipeline(n).create(host.pipeline(n).resolve(None)[1]) for n in PROTOCOL[:2]})

started = time.perf_counter()
ray_executor = RayExecutor()
ray = ray_executor._connect()
startup = time.perf_counter() - started
noop = ray.remote(lambda: None)
ray.get([noop.remote() for _ in range(20)])  # workers up
started = time.perf_counter()
ray.get([noop.remote() for _ in range(200)])
round_trip = (time.perf_counter() - started) / 200

results = {}
for name, executor in (("local", LocalExecutor(usable_cores())), ("ray", ray_executor)):
    with Registry(out / f"{name}.db") as reg:
        runner = Runner(host, reg, cache, workers=usable_cores(), executor=executor)
        started = time.perf_counter()
        outcome = runner.run(PROTOCOL, corpus, resume=False)
        run_seconds = time.perf_counter() - started
        started = time.perf_counter()
        grid = run_grid(host, reg, [r.run_id for r in outcome.runs[:2]], executor=executor)
        grid_seconds = time.perf_counter() - started
        n_tasks = len(outcome.runs) * len(corpus.folds) + sum(1 for e in grid.entries if e.run) * len(corpus.folds)
        rows = {r.pipeline: [(p.clip_id, p.pred, tuple(p.probs)) for p in reg.predictions(r.run_id)]
                for r in outcome.runs}
        results[name] = (run_seconds, grid_seconds, n_tasks, rows)
ray_executor.close()

(lr, lg, n, local_rows), (rr, rg, _, ray_rows) = results["local"], results["ray"]
print(f"corpus: {len(corpus.clips)} clips, {len(corpus.folds)} folds; {usable_cores()} cores; {n} fold tasks")
print(f"baseline run ({' '.join(PROTOCOL)}): local {lr:.1f} s, ray {rr:.1f} s (ratio {rr / lr:.2f})")
print(f"fusion grid (27 points): local {lg:.1f} s, ray {rg:.1f} s (ratio {rg / lg:.2f})")
print(f"ray start-up {startup:.1f} s; Ray's overhead per task (an empty task's round trip) {1000 * round_trip:.1f} ms; "
      f"wall-time difference per fold task, ray - local {(rr + rg - lr - lg) / n * 1000:+.0f} ms "
      f"(negative: Ray runs the folds that train without torch side by side, local runs them one after another)")
print(f"same posteriors on both executors: {local_rows == ray_rows}")
