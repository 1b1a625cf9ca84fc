"""Clip cutting on the demo videos: decode speed (one seek per merged span vs scattered
``get_batch``) and the h5 size per clip and per video-hour.

``python benchmarks/bench_clips.py [--coverage 0.3] [--size 448] [--frames 10]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from ethoflow.clips import decode_frames, extract_clips, sample_indices  # noqa: E402
from ethoflow.video import open_video, video_info  # noqa: E402

VIDEOS = [
    ROOT / "tests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4",
    ROOT / "tests/data/dlc_openfield/m3v1mp4.mp4",
]


def windows_for(n_frames: int, fps: float, coverage: float, clip_s: float = 5.0) -> pd.DataFrame:
    """Non-overlapping clip windows spread over the video covering ``coverage`` of it."""
    length = int(round(clip_s * fps))
    n = max(1, int(coverage * n_frames / length))
    starts = np.linspace(0, n_frames - length, n).astype(np.int64)
    return pd.DataFrame({"start_frame": starts, "end_frame": starts + length})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=float, default=0.3)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--frames", type=int, default=10)
    a = ap.parse_args()
    for video in VIDEOS:
        info = video_info(video)
        w = windows_for(info.n_frames, info.fps, a.coverage)
        idx = np.concatenate(
            [
                sample_indices(s, e, a.frames)
                for s, e in zip(w.start_frame, w.end_frame, strict=True)
            ]
        )
        vr = open_video(video, width=a.size, height=a.size)
        t0 = time.perf_counter()
        vr.get_batch(idx.tolist())
        t_scatter = time.perf_counter() - t0
        vr = open_video(video, width=a.size, height=a.size)
        t0 = time.perf_counter()
        decode_frames(vr, idx)
        t_span = time.perf_counter() - t0
        vr = open_video(video, width=a.size, height=a.size)
        t0 = time.perf_counter()
        for _ in range(len(vr)):
            vr.next()
        t_full = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "clips.h5"
            t0 = time.perf_counter()
            extract_clips(video, w, out, frames_per_clip=a.frames, size=a.size)
            t_cut = time.perf_counter() - t0
            nbytes = out.stat().st_size
        hours = info.n_frames / info.fps / 3600
        print(f"{video.name}: {info.n_frames} frames {info.width}x{info.height} @ {info.fps:.1f}")
        print(f"  {len(w)} clips x {a.frames} frames at {a.size}^2, coverage {a.coverage:.0%}")
        print(f"  full sequential decode   {t_full:6.2f} s ({info.n_frames / t_full:7.0f} fr/s)")
        print(f"  scattered get_batch      {t_scatter:6.2f} s")
        print(f"  one seek per merged span {t_span:6.2f} s")
        print(f"  extract_clips incl. gzip h5  {t_cut:6.2f} s")
        raw = a.frames * a.size * a.size * 3
        print(f"  bytes per clip {nbytes / len(w) / 1e6:6.2f} MB (raw {raw / 1e6:.2f} MB)")
        print(f"  per video-hour {nbytes / hours / 1e9:6.2f} GB at this coverage")


if __name__ == "__main__":
    main()
