"""Time `emokit --help` (target: under 0.3 s; no torch imported at start-up)."""

import statistics
import subprocess
import sys
import time

runs = []
for _ in range(7):
    start = time.perf_counter()
    subprocess.run(["emokit", "--help"], check=True, capture_output=True)
    runs.append(time.perf_counter() - start)
imported = subprocess.run([sys.executable, "-c", "import sys, emokit_cli.app as a; a._add_plugin_commands(); "
                           "print(','.join(m for m in ('torch','sklearn','numpy','sqlalchemy') if m in sys.modules) or 'none')"],
                          capture_output=True, text=True, check=True).stdout.strip()
print(f"emokit --help: median {statistics.median(runs):.3f} s, min {min(runs):.3f} s over {len(runs)} runs "
      f"(heavy modules imported at start-up: {imported})")
