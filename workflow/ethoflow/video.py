"""Video metadata and decoding with decord (seek once per span, decode through it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    width: int
    height: int


def open_video(path: str | os.PathLike, width: int = -1, height: int = -1, threads: int = 0):
    """A decord VideoReader, or an InputError naming the file."""
    import decord

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "video file not found")
    if p.stat().st_size == 0:
        raise InputError(p, "video file is empty")
    try:
        return decord.VideoReader(str(p), width=width, height=height, num_threads=threads)
    except Exception as err:  # decord raises its own DECORDError for corrupt files
        raise InputError(p, f"cannot decode video ({str(err).splitlines()[0][:200]})") from err


def video_info(path: str | os.PathLike) -> VideoInfo:
    vr = open_video(path)
    n = len(vr)
    if n == 0:
        raise InputError(path, "video has no frames")
    h, w = vr[0].shape[:2]
    fps = float(vr.get_avg_fps())
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(path, f"video reports an invalid frame rate ({fps})")
    return VideoInfo(n_frames=n, fps=fps, width=int(w), height=int(h))
