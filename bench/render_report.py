"""Render an HTML file (an `emokit report`) in headless Chromium to a PNG screenshot and print
how much of it is not blank.

    python bench/render_report.py emokit-report-1-2-3.html [--png shot.png] [--height 2000] [--trim]

Prints the render time, the share of pixels that are not background white, the number of
distinct colours and how far down the page content reaches; exits 1 when the screenshot looks
blank (under --min-ink of non-white pixels or under --min-colours colours), 2 when Chromium is
missing or fails. Chromium: Debian's `chromium` package (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WHITE_ABOVE = 245  # a pixel whose channels are all above this counts as background


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, *, width: int = 1280, height: int = 2000, chromium: str | None = None,
               timeout: float = 120.0) -> float:
    """Screenshot ``html`` (the top ``height`` pixels) into ``png``; returns the seconds taken."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no chromium binary on PATH (Debian: apt-get install chromium)")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="emokit-chromium-") as profile:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   f"--screenshot={png.resolve()}", html.resolve().as_uri()]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "HOME": profile})
        seconds = time.perf_counter() - start
    if not png.is_file():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"chromium wrote no screenshot (exit {result.returncode}): " + " | ".join(tail))
    return seconds


def ink(png: Path) -> dict:
    """``{"width", "height", "share", "colours", "last_row"}``: the share of non-white pixels, the
    distinct colours (5 bits per channel) and the last row holding any non-white pixel."""
    import cv2
    import numpy as np

    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"{png}: not a readable image")
    inked = (image <= WHITE_ABOVE).any(axis=2)
    rows = np.flatnonzero(inked.any(axis=1))
    quantised = (image >> 3).reshape(-1, 3).astype(np.int32)
    colours = len(np.unique(quantised[:, 0] << 10 | quantised[:, 1] << 5 | quantised[:, 2]))
    return {"width": image.shape[1], "height": image.shape[0], "share": float(inked.mean()), "colours": colours,
            "last_row": int(rows[-1]) if rows.size else -1}


def trim(png: Path, last_row: int, margin: int = 24) -> None:
    """Cut the blank rows below the content (a tall window leaves them)."""
    import cv2

    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    cv2.imwrite(str(png), image[:min(image.shape[0], last_row + 1 + margin)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--png", type=Path, help="screenshot path [default: the HTML's name with .png]")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000, help="window height: how much of the page is shot")
    parser.add_argument("--chromium", help="browser binary [default: chromium on PATH]")
    parser.add_argument("--trim", action="store_true", help="cut blank rows below the content")
    parser.add_argument("--min-ink", type=float, default=0.03, help="least share of non-white pixels")
    parser.add_argument("--min-colours", type=int, default=16, help="least number of distinct colours")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"{args.html}: no such file", file=sys.stderr)
        return 2
    png = args.png or args.html.with_suffix(".png")
    try:
        seconds = screenshot(args.html, png, width=args.width, height=args.height, chromium=args.chromium)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"cannot render {args.html}: {exc}", file=sys.stderr)
        return 2
    figures = ink(png)
    if args.trim and figures["last_row"] >= 0:
        trim(png, figures["last_row"])
    blank = figures["share"] < args.min_ink or figures["colours"] < args.min_colours
    print(f"{args.html} -> {png}: rendered in {seconds:.1f} s at {figures['width']}x{figures['height']}; "
          f"{100 * figures['share']:.1f} % of pixels not white, {figures['colours']} distinct colours, "
          f"content down to row {figures['last_row']}" + ("; looks BLANK" if blank else ""))
    return 1 if blank else 0


if __name__ == "__main__":
    sys.exit(main())
