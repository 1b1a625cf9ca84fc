"""Clip cutting on the demo videos: decode cost of the two paths (one seek per merged span vs
a straight sequential decode) and of the seek check, the h5 size per clip and per
video-hour for both frame codecs, the JPEG decode speed and its pixel error against raw.

``python benchmarks/bench_clips.py [--coverage 0.3] [--size 448] [--frames 10] [--quality 90]``
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

from ethoflow.clips import (  # noqa: E402
    check_frames,
    check_seeking,
    extract_clips,
    iter_seek_frames,
    iter_sequential_frames,
    sample_indices,
)
from ethoflow.results import read_clips  # noqa: E402
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


def bench_video(video: Path, a: argparse.Namespace) -> None:
    info = video_info(video)
    w = windows_for(info.n_frames, info.fps, a.coverage)
    idx = np.concatenate(
        [sample_indices(s, e, a.frames) for s, e in zip(w.start_frame, w.end_frame, strict=True)]
    )

    def reader():
        return open_video(video, width=a.size, height=a.size)

    t0 = time.perf_counter()
    sum(1 for _ in iter_seek_frames(reader(), idx))
    t_seek = time.perf_counter() - t0
    t0 = time.perf_counter()
    sum(1 for _ in iter_sequential_frames(reader(), idx))
    t_seq = time.perf_counter() - t0
    samples = check_frames(info.n_frames, info.fps)
    t0 = time.perf_counter()
    mad = check_seeking(reader, samples)
    t_check = time.perf_counter() - t0
    hours = info.n_frames / info.fps / 3600
    print(f"{video.name}: {info.n_frames} frames {info.width}x{info.height} @ {info.fps:.1f}")
    print(f"  {len(w)} clips x {a.frames} frames at {a.size}^2, coverage {a.coverage:.0%}")
    print(f"  seek path (merged spans)  {t_seek:6.2f} s")
    print(f"  sequential path           {t_seq:6.2f} s (to frame {idx.max()})")
    print(f"  seek check {samples.tolist()}  {t_check:6.2f} s, mad {mad:.2f}")
    frames = {}
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("raw", "jpeg"):
            out = Path(tmp) / f"{codec}.h5"
            t0 = time.perf_counter()
            extract_clips(
                video,
                w,
                out,
                frames_per_clip=a.frames,
                size=a.size,
                codec=codec,
                jpeg_quality=a.quality,
            )
            t_cut = time.perf_counter() - t0
            nbytes = out.stat().st_size
            t0 = time.perf_counter()
            frames[codec] = read_clips(out)["frames"]
            t_read = time.perf_counter() - t0
            print(
                f"  {codec:4s}: extract_clips {t_cut:5.2f} s, {nbytes / len(w) / 1e6:5.2f}"
                f" MB/clip, {nbytes / hours / 1e6:6.0f} MB per video-hour,"
                f" read {len(w) / t_read:6.1f} clips/s"
            )
    err = np.abs(frames["jpeg"].astype(np.int16) - frames["raw"]).mean()
    print(f"  jpeg q{a.quality} mean abs diff vs raw {err:.2f} / 255")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=float, default=0.3)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    for video in VIDEOS:
        bench_video(video, a)


if __name__ == "__main__":
    main()
