"""Cut the frames of every clip window out of a video into one h5 per session.

Decoding is the cost: seeking decodes from the previous keyframe, so scattered frame
access is almost as slow as decoding everything. Windows are merged into spans, each span is
sought once and decoded sequentially, and only the sampled frames are kept. Frames are
resized by the decoder to ``size x size`` (the aspect ratio is not kept; top-view arenas
are close to square).

Seeking is not exact with every file and decoder build (decord after a keyframe seek on some
H.264 4:4:4 files gives grey smears that change run to run), so each video's seek path is
checked first: a few frames of its first minute decoded by seeking are compared with the
same frames of a straight sequential decode from frame 0. Where they differ, the whole video
is decoded sequentially (one pass, keeping only the needed frames).

Decoding always runs on one decoder thread (``DECODE_THREADS``): FFmpeg's frame-threaded
H.264 decoding conceals the decode errors of such files (the demo's open-field video logs
hundreds) depending on thread timing, so with two threads the same frame, sought or decoded
sequentially, differed run to run (mean absolute difference up to 1.4 / 255, measured); on
one thread seek and sequential decode agree exactly and every run gives the same bytes.
Clips are assembled as their frames arrive and written one at a time, so only frames still
needed are held.
Frames are stored JPEG-encoded by default (``results.write_clips``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from .errors import InputError
from .results import write_clips
from .video import open_video

#: frames of the decode check, spread over the first ``CHECK_SECONDS`` of the video
CHECK_FRAMES = 4
CHECK_SECONDS = 60.0
#: largest mean absolute difference (0-255) between seek and sequential decode that passes
CHECK_TOLERANCE = 1.0
#: decoder threads: one, since multi-threaded decoding is not deterministic (module docstring)
DECODE_THREADS = 1


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


def iter_seek_frames(
    vr, indices: np.ndarray, gap: int = 90, batch: int = 32
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` of the requested frames in increasing order, seeking once per span.

    Within a span decord's ``get_batch`` on sorted indices seeks once and then skips forward
    (decoding without colour conversion) between wanted frames, which measured faster than
    converting every frame with ``next()``; spans far apart get a fresh keyframe seek. A span
    is fetched ``batch`` frames at a time so a long one is never held whole.
    """
    idx = np.unique(np.asarray(indices, np.int64))
    for s, e in merge_spans(idx, gap):
        want = idx[(idx >= s) & (idx <= e)]
        for k in range(0, len(want), batch):
            part = want[k : k + batch]
            arr = vr.get_batch(part.tolist()).asnumpy()
            yield from zip(part.tolist(), arr, strict=True)


def iter_sequential_frames(vr, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, frame)`` of the requested frames from a straight decode of a fresh reader.

    Never seeks: every frame from 0 is decoded in order (``skip_frames`` decodes the frames in
    between without colour conversion). ``vr`` must not have been read from yet.
    """
    pos = 0
    for i in np.unique(np.asarray(indices, np.int64)).tolist():
        if i > pos:
            vr.skip_frames(i - pos)
        yield i, vr.next().asnumpy()
        pos = i + 1


def decode_frames(vr, indices: np.ndarray, gap: int = 90) -> dict[int, np.ndarray]:
    """The requested frames by the seek path, ``{index: frame}``."""
    return dict(iter_seek_frames(vr, indices, gap))


def check_frames(n_video: int, fps: float, n: int = CHECK_FRAMES) -> np.ndarray:
    """The frames of the decode check: ``n`` spread over the first ``CHECK_SECONDS`` of the
    video (frame 0 excluded: seeking to it is trivial), so the sequential reference is cheap."""
    limit = min(n_video, max(2, int(CHECK_SECONDS * fps)))
    if limit < 2:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(1, limit - 1, n).round().astype(np.int64))


def check_seeking(open_reader, samples: np.ndarray) -> float:
    """Largest mean absolute difference (0-255) between the seek path and a sequential decode
    on ``samples`` (each from a fresh reader from ``open_reader()``); 0.0 = exact."""
    if not len(samples):
        return 0.0
    seek = decode_frames(open_reader(), samples)
    seq = dict(iter_sequential_frames(open_reader(), samples))
    return max(
        float(np.abs(seek[i].astype(np.int16) - seq[i].astype(np.int16)).mean()) for i in seq
    )


def assemble_clips(
    idx: np.ndarray, frames: Iterable[tuple[int, np.ndarray]]
) -> Iterator[np.ndarray]:
    """Clips ``[F, H, W, 3]`` in the order of ``idx [N, F]`` from ``(index, frame)`` pairs in
    increasing order (each needed index once), holding only frames a later clip still uses."""
    remaining = Counter(idx.ravel().tolist())
    held: dict[int, np.ndarray] = {}
    it = iter(frames)
    for row in idx.tolist():
        for j in row:
            while j not in held:
                k, frame = next(it)
                held[k] = frame
        yield np.stack([held[j] for j in row])
        for j in row:
            remaining[j] -= 1
            if not remaining[j]:
                del held[j]


def extract_clips(
    video: str | os.PathLike,
    windows: pd.DataFrame,
    out_path: str | os.PathLike,
    fps_out: float = 2.0,
    frames_per_clip: int = 10,
    size: int = 448,
    pose_fps: float | None = None,
    fps_tolerance: float = 0.01,
    codec: str = "jpeg",
    jpeg_quality: int = 90,
    decode: str = "auto",
) -> dict:
    """Write the clips h5 (``results.write_clips``) of ``windows`` cut out of ``video``.

    ``decode``: ``auto`` checks the seek path (``check_seeking``) and decodes sequentially
    where it is not exact; ``seek`` / ``sequential`` force a path (the check still runs and
    is recorded). Frames are decoded on ``DECODE_THREADS`` (one) thread, the only
    deterministic setting. Attrs ``decode_path`` (``seek`` | ``sequential``),
    ``decode_check`` (``exact`` | ``mismatch`` | ``skipped`` when there is no clip),
    ``decode_check_mad`` (the largest mean absolute difference, 0-255) and
    ``decode_check_frames`` record it.
    """
    if frames_per_clip < 2 or frames_per_clip % 2:
        raise ValueError(f"frames_per_clip must be even and >= 2, got {frames_per_clip}")
    if decode not in ("auto", "seek", "sequential"):
        raise ValueError(f"decode must be auto, seek or sequential, got {decode!r}")

    def reader():
        return open_video(video, width=size, height=size, threads=DECODE_THREADS)

    vr = reader()
    n_video = len(vr)
    video_fps = float(vr.get_avg_fps())
    del vr
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
    n = len(starts)
    if n:
        samples = check_frames(n_video, video_fps)
        mad = check_seeking(reader, samples)
        exact = mad < CHECK_TOLERANCE
        path = decode if decode != "auto" else ("seek" if exact else "sequential")
        check = "exact" if exact else "mismatch"
        it = (iter_seek_frames if path == "seek" else iter_sequential_frames)(reader(), idx)
        clips = assemble_clips(idx, it)
    else:
        samples, mad, path, check, clips = np.zeros(0, np.int64), 0.0, "none", "skipped", iter(())
    seconds = (ends - starts) / video_fps
    write_clips(
        out_path,
        clips,
        starts,
        ends,
        idx,
        (frames_per_clip, size, size, 3),
        {
            "fps_out": float(np.mean(frames_per_clip / seconds)) if n else fps_out,
            "video": str(video),
            "video_fps": video_fps,
            "size": size,
            "decode_path": path,
            "decode_check": check,
            "decode_check_mad": float(mad),
            "decode_check_frames": np.asarray(samples, np.int64),
        },
        codec=codec,
        jpeg_quality=jpeg_quality,
    )
    return {
        "n_clips": n,
        "n_decoded": int(np.unique(idx).size),
        "decode_path": path,
        "decode_check": check,
        "decode_check_mad": float(mad),
    }
