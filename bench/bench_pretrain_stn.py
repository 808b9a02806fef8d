"""Reproduce the STN that emokit ships (``stn-fer2013`` in plugins/face/weights/): unpack
FER-2013 from ../shared/data into its image-folder layout, run the command its record names
(``emokit pretrain face.stn --epochs 30 --seed 0``) in a fresh EMOKIT_HOME, and print the wall
time, the peak memory, the test accuracy and whether the weights are the shipped file's bytes.

    python bench/bench_pretrain_stn.py [--epochs 30] [--seed 0] [--device cpu] [--out bench/out/pretrain]

Measured on 2 CPU cores: 16 min 41 s of training once the 35,887 faces are extracted (about a
minute), test accuracy 49.58 %. Whether the bytes match depends on the torch build and the
number of threads (float sums in another order); the test accuracy should agree to a few
tenths of a point either way.
"""

import argparse
import json
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FER2013 = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.tar.gz"

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--device", default="cpu")
parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "pretrain"))
args = parser.parse_args()

out = Path(args.out)
data = out / "fer"
if not (data / "test").is_dir():
    print(f"unpacking {FER2013} to {data}", file=sys.stderr)
    data.mkdir(parents=True, exist_ok=True)
    with tarfile.open(FER2013, "r:gz") as archive:
        archive.extractall(data, filter="data")

shipped = json.loads((ROOT / "plugins" / "face" / "weights" / "stn-fer2013.json").read_text())
home = out / "home"
started = time.perf_counter()
command = [sys.executable, "-m", "emokit_cli", "pretrain", "face.stn", "--data", str(data), "--epochs",
           str(args.epochs), "--seed", str(args.seed), "--device", args.device, "--name", "stn-fer2013-bench",
           "--replace", "--registry", str(out / "registry.db"), "--json"]
result = subprocess.run(command, capture_output=True, text=True, env={**__import__("os").environ,
                                                                        "EMOKIT_HOME": str(home)})
seconds = time.perf_counter() - started
if result.returncode:
    sys.exit(f"emokit pretrain failed:\n{result.stderr[-2000:]}")
made = json.loads(result.stdout)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
same = made["weights"]["sha256"] == shipped["sha256"]
print(f"emokit pretrain face.stn --epochs {args.epochs} --seed {args.seed}: {seconds / 60:.1f} min wall "
      f"(features included), peak RSS {peak:.2f} GiB")
print(f"test accuracy {100 * made['test_accuracy']:.2f} % (shipped: {100 * shipped['test_accuracy']:.2f} %), "
      f"best epoch {made['best_epoch']}")
print("recall per class: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in made["recall"].items()))
print(f"weights {made['weights']['sha256'][:16]}… {'are' if same else 'are not'} the shipped file's bytes "
      f"({shipped['sha256'][:16]}…)")
