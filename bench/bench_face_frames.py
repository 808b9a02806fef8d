"""Frames per second of the face frame pipeline (decode, crop, saliency, resize) on demo clips,
in one process and in N parallel worker processes (target: 300 frames/s on 2 cores).

    python bench/bench_face_frames.py [--clips 40] [--workers 2] [--saliency spectral_residual] [--height 720]

The clips are the demo corpus's at RAVDESS's frame size (1280x720) unless --height says otherwise.
"""

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

from emokit_core.contracts import Clip
from emokit_core.media import decode
from emokit_plugins.corpora.demo import load_demo
from emokit_plugins.face.frames import FaceSaliencyFrames


def frames_of(args):
    path, saliency = args
    extractor = FaceSaliencyFrames(saliency=saliency)
    clip = Clip(path.stem, "00", "x", video_path=path)
    sinks = []

    def on_video(info):
        sinks.append(extractor.open_clip(clip, info))
        return [(sinks[0].pixel_format, sinks[0].add)]

    decode(path, audio=False, on_video=on_video)
    return len(sinks[0].close())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--saliency", default="spectral_residual")
    parser.add_argument("--height", type=int, default=720, help="frame height of the demo clips (720: RAVDESS)")
    args = parser.parse_args()
    paths = [c.video_path for c in load_demo(height=args.height, workers=args.workers).clips[: args.clips]]
    jobs = [(p, args.saliency) for p in paths]
    start = time.perf_counter()
    n = sum(map(frames_of, jobs))
    single = time.perf_counter() - start
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        n_parallel = sum(pool.map(frames_of, jobs))
    parallel = time.perf_counter() - start
    print(f"{args.saliency}: {n} frames of {len(paths)} clips (1280x720): 1 process {n / single:.0f} frames/s, "
          f"{args.workers} workers {n_parallel / parallel:.0f} frames/s")


if __name__ == "__main__":
    main()
