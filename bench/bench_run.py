"""Wall time and peak memory of the README main command (or the baselines) on the demo corpus, cold (features
not cached) and warm (second run: version 2, cached features), and optionally on the
full-size 1440-clip demo corpus.

    python bench/bench_run.py            # default demo (10 actors, 300 clips)
    python bench/bench_run.py --full     # also the full-size corpus (24 actors x 2 repetitions)
    python bench/bench_run.py --baselines
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure  # noqa: E402

MAIN = ["speech.panns_ft", "face.stn_bilstm", "fuse.svm_linear"]
BASELINES = ["speech.mfcc_svm", "face.pixels_vote", "fuse.svm_linear"]

parser = argparse.ArgumentParser()
parser.add_argument("--baselines", action="store_true", help=f"time {' '.join(BASELINES)} instead")
parser.add_argument("--full", action="store_true", help="also run the 1440-clip corpus")
parser.add_argument("--home", help="EMOKIT_HOME to use (default: a fresh temporary folder)")
args = parser.parse_args()
pipelines = BASELINES if args.baselines else MAIN

home = Path(args.home or tempfile.mkdtemp(prefix="emokit-bench-"))
sizes = [("default demo (10 actors, 300 clips)", [])]
if args.full:
    sizes.append(("full demo (24 actors, 1440 clips)", ["--actors", "24"]))
for label, extra in sizes:
    env = {"EMOKIT_HOME": str(home)}
    gen = measure(["emokit", "data", "demo", *extra], env=env)
    print(f"{label}: generation {gen['seconds']:.1f} s, peak {gen['peak_rss_mib']:.0f} MiB")
    registry = home / f"registry-{int(time.time())}.db"
    for attempt in ("cold cache", "warm cache (version 2)"):
        result = measure(["emokit", "run", *pipelines, *extra, "--registry", str(registry)], env=env)
        print(f"{label}: main command, {attempt}: {result['seconds']:.1f} s, peak {result['peak_rss_mib']:.0f} MiB")
