"""Wall time, peak memory and where the time goes for the README's main command on the demo corpus,
as a newcomer runs it: a fresh EMOKIT_HOME (so the demo corpus is generated) and a fresh registry.

    python bench/bench_run.py              # the main command, cold (corpus generated, no features cached)
    python bench/bench_run.py --warm       # then again: version 2 of each run, features from the cache
    python bench/bench_run.py --full       # the full-size corpus (24 actors x 2 repetitions) instead
    python bench/bench_run.py --baselines  # the cheap baselines instead of the paper's networks

Stages come from the command's own ``--json`` output: the corpus (generation on first use),
feature extraction, each pipeline's cross-validation; "other" is start-up, planning and output.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure  # noqa: E402

MAIN = ["speech.panns_ft", "face.stn_bilstm", "fuse.svm_linear"]
BASELINES = ["speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear"]

parser = argparse.ArgumentParser()
parser.add_argument("--baselines", action="store_true", help=f"time {' '.join(BASELINES)} instead")
parser.add_argument("--full", action="store_true", help="the 1440-clip corpus (--actors 24)")
parser.add_argument("--warm", action="store_true", help="run the command a second time, on cached features")
parser.add_argument("--home", help="EMOKIT_HOME to use (default: a fresh temporary folder)")
args = parser.parse_args()
pipelines = BASELINES if args.baselines else MAIN

home = Path(args.home or tempfile.mkdtemp(prefix="emokit-bench-"))
registry = home / "registry.db"
extra = ["--actors", "24"] if args.full else []
emokit = str(Path(sys.executable).with_name("emokit"))
print(f"{os.cpu_count()} CPUs; EMOKIT_HOME={home}; emokit run {' '.join(pipelines + extra)}")
for attempt in ("cold", "warm (version 2, cached features)") if args.warm else ("cold",):
    result = measure([emokit, "run", *pipelines, *extra, "--registry", str(registry), "--json"],
                     env={"EMOKIT_HOME": str(home)}, stdout=True)
    out = json.loads(result["stdout"])
    modal = [r for r in out["runs"] if r["modality"] != "fusion"]
    fusers = [r for r in out["runs"] if r["modality"] == "fusion"]
    stages = [("corpus (generated on first use)", out["seconds"]["corpus"]),
              ("feature extraction", out["seconds"]["extraction"]),
              ("folds of " + " + ".join(r["pipeline"] for r in modal), out["seconds"]["cross_validation"])]
    stages += [(f"{r['pipeline']} ({r['profile']})", r["seconds"]) for r in fusers]
    stages.append(("other (start-up, planning, output)", result["seconds"] - sum(s for _, s in stages)))
    print(f"\n{attempt}: {result['seconds']:.1f} s wall, peak memory {result['peak_rss_mib']:.0f} MiB "
          f"(the process tree)")
    for label, seconds in stages:
        print(f"  {label:<56} {seconds:7.1f} s")
    # The modality pipelines' folds may run side by side: each one's time until its last fold.
    for r in modal:
        print(f"    {r['pipeline']} ({r['profile']}): last fold done after {r['seconds']:.1f} s")
    print("  accuracy (pooled, 95 % CI):")
    for r in out["runs"]:
        pooled = r["pooled"]
        print(f"  {r['pipeline']:<40} {100 * pooled['accuracy']:6.2f} ± {100 * pooled['ci95']:.2f} %"
              f"   (ZeroR {100 * r['zeror']:.2f} %)")
