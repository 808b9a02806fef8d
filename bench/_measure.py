"""Run a command and report its wall time and the peak memory of its whole process tree
(the main process plus any worker processes), sampled from /proc every half second (often enough
for memory, which changes slowly, and rarely enough to take no measurable CPU from the command)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def _tree_rss(root_pid: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(cmd: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
            stdout: bool = False) -> dict:
    """Wall seconds and peak RSS of the process tree; with ``stdout``, what the command printed.
    Output goes to temporary files (a pipe that fills up would stall the command)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=out, stderr=err, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.5)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        printed, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    result = {"seconds": seconds, "peak_rss_mib": peak / 2**20}
    if stdout:
        result["stdout"] = printed
    return result
