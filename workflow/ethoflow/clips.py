"""Cut the frames of every clip window out of a video into one compressed h5 per session.

Decoding is the cost: seeking decodes from the previous keyframe, so scattered frame
access is almost as slow as decoding everything. Windows are merged into spans, each span is
sought once and decoded sequentially, and only the sampled frames are kept. Frames are
resized by the decoder to ``size x size`` (the aspect ratio is not kept; top-view arenas
are close to square) and stored uint8 ``[N, F, H, W, 3]``, one gzip chunk per clip.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .errors import InputError
from .results import write_clips
from .video import open_video


def sample_indices(start: int, end: int, n: int) -> np.ndarray:
    """``n`` frame indices spread evenly over ``[start, end)`` (centres of n equal bins)."""
    return (start + (np.arange(n) + 0.5) * (end - start) / n).astype(np.int64)


def merge_spans(indices: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Sorted frame indices -> inclusive spans, joining those closer than ``gap`` frames."""
    idx = np.unique(indices)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > gap)
    starts = np.r_[idx[0], idx[cut + 1]]
    ends = np.r_[idx[cut], idx[-1]]
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def decode_frames(vr, indices: np.ndarray, gap: int = 90) -> dict[int, np.ndarray]:
    """Decode the requested frames span by span, in increasing order.

    Within a span decord's ``get_batch`` on sorted indices seeks once and then skips forward
    (decoding without colour conversion) between wanted frames, which measured faster than
    converting every frame with ``next()``; spans far apart get a fresh keyframe seek.
    """
    out: dict[int, np.ndarray] = {}
    idx = np.unique(np.asarray(indices, np.int64))
    for s, e in merge_spans(idx, gap):
        want = idx[(idx >= s) & (idx <= e)]
        batch = vr.get_batch(want.tolist()).asnumpy()
        out.update({int(i): batch[k] for k, i in enumerate(want)})
    return out


def extract_clips(
    video: str | os.PathLike,
    windows: pd.DataFrame,
    out_path: str | os.PathLike,
    fps_out: float = 2.0,
    frames_per_clip: int = 10,
    size: int = 448,
    pose_fps: float | None = None,
    fps_tolerance: float = 0.01,
    threads: int = 0,
) -> dict:
    """Write ``/frames [N,F,H,W,3]``, ``/start_frame``, ``/end_frame``, ``/frame_index``."""
    if frames_per_clip < 2 or frames_per_clip % 2:
        raise ValueError(f"frames_per_clip must be even and >= 2, got {frames_per_clip}")
    vr = open_video(video, width=size, height=size, threads=threads)
    n_video = len(vr)
    video_fps = float(vr.get_avg_fps())
    if pose_fps and abs(video_fps - pose_fps) > fps_tolerance * pose_fps:
        raise InputError(
            video, f"video runs at {video_fps:.3f} fps but the pose at {pose_fps:.3f} fps"
        )
    starts = windows["start_frame"].to_numpy(np.int64)
    ends = windows["end_frame"].to_numpy(np.int64)
    if len(starts) and (ends.max() > n_video or starts.min() < 0):
        raise InputError(
            video, f"clip windows reach frame {ends.max()} but the video has {n_video} frames"
        )
    idx = (
        np.stack([sample_indices(s, e, frames_per_clip) for s, e in zip(starts, ends, strict=True)])
        if len(starts)
        else np.zeros((0, frames_per_clip), np.int64)
    )
    decoded = decode_frames(vr, idx.ravel()) if idx.size else {}
    n = len(starts)
    seconds = (ends - starts) / video_fps
    write_clips(
        out_path,
        (np.stack([decoded[int(j)] for j in idx[i]]) for i in range(n)),
        starts,
        ends,
        idx,
        (frames_per_clip, size, size, 3),
        {
            "fps_out": float(np.mean(frames_per_clip / seconds)) if n else fps_out,
            "video": str(video),
            "video_fps": video_fps,
            "size": size,
        },
    )
    return {"n_clips": n, "n_decoded": len(decoded)}
