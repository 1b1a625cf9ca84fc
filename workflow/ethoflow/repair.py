"""Keypoint repair (confidence masking, short-gap interpolation) and a per-session QC table.

Swap heuristic (``swap_mask``): keypoint i is flagged at frame t when, between t-1 and t,

- it jumps farther than ``jump`` (0.4 x the median body size: twice the largest keypoint
  distance from the centroid, median over frames and animals), and
- it lands at least twice as close to where another keypoint j was at t-1 as to its own
  position at t-1, j having been farther than ``jump`` from i at t-1 (j of another animal:
  identity swap; j of the same animal: head/tail or left/right swap).

Points masked as low confidence are never flagged. All array operations, no frame loops.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from .pose_io import Pose

QC_COLUMNS = [
    "animal",
    "keypoint",
    "missing_fraction",
    "repaired_fraction",
    "longest_gap",
    "swap_frames",
    "unrepaired_fraction",
    "first_swap_frame",
]


def interpolate_gaps(x: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation over time of NaN runs of at most ``max_gap`` frames.

    ``x`` is ``[T, N, C]`` (the C coordinates of a point share their gaps). Runs touching the
    start or end of the recording are not interpolated. Returns ``(filled, repaired [T, N])``.
    """
    t = x.shape[0]
    missing = ~np.isfinite(x).all(-1)
    idx = np.arange(t)[:, None]
    prev = np.where(~missing, idx, -1)
    np.maximum.accumulate(prev, axis=0, out=prev)
    nxt = np.where(~missing, idx, t)
    nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
    run = nxt - prev - 1
    fix = missing & (prev >= 0) & (nxt < t) & (run <= max_gap)
    if not fix.any():
        return x.copy(), fix
    rows, cols = np.nonzero(fix)
    p, q = prev[rows, cols], nxt[rows, cols]
    w = ((rows - p) / (q - p)).astype(x.dtype)[:, None]
    out = x.copy()
    out[rows, cols] = x[p, cols] * (1 - w) + x[q, cols] * w
    return out, fix


def longest_runs(missing: np.ndarray) -> np.ndarray:
    """Longest run of True per column of a bool ``[T, N]`` mask."""
    t, n = missing.shape
    pad = np.zeros((n, t + 2), np.int8)
    pad[:, 1:-1] = missing.T
    d = np.diff(pad, axis=1)
    sc, st = np.nonzero(d == 1)
    _, en = np.nonzero(d == -1)
    out = np.zeros(n, np.int64)
    if st.size:
        np.maximum.at(out, sc, en - st)
    return out


def body_size(kp: np.ndarray) -> float:
    """Median over frames and animals of the largest keypoint distance from the centroid x 2."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        c = np.nanmean(kp, axis=2, keepdims=True)
        r = np.sqrt(((kp - c) ** 2).sum(-1))
        size = 2 * np.nanmax(np.where(np.isnan(r), -np.inf, r), axis=2)
    size = size[np.isfinite(size) & (size > 0)]
    return float(np.median(size)) if size.size else 0.0


def swap_mask(keypoints: np.ndarray, jump: float | None = None) -> np.ndarray:
    """Bool ``[T, A, K]``: frames where a keypoint jumps onto another keypoint's last place."""
    t, a, k, _ = keypoints.shape
    n = a * k
    out = np.zeros((t, n), bool)
    if t < 2 or n < 2:
        return out.reshape(t, a, k)
    if jump is None:
        jump = 0.4 * body_size(keypoints)
    if not jump > 0:
        return out.reshape(t, a, k)
    p = keypoints.reshape(t, n, 2)
    with np.errstate(invalid="ignore"):
        own = np.sqrt(((p[1:] - p[:-1]) ** 2).sum(-1))
    rows, cols = np.nonzero(own > jump)
    if rows.size == 0:
        return out.reshape(t, a, k)
    cur = p[rows + 1, cols]
    prev = p[rows]
    d = np.sqrt(((cur[:, None, :] - prev) ** 2).sum(-1))
    d[np.arange(rows.size), cols] = np.inf
    d = np.where(np.isnan(d), np.inf, d)
    best = d.argmin(1)
    other = d[np.arange(rows.size), best]
    apart = np.sqrt(((prev[np.arange(rows.size), best] - p[rows, cols]) ** 2).sum(-1))
    out[rows + 1, cols] = (2 * other < own[rows, cols]) & (apart > jump)
    return out.reshape(t, a, k)


def repair_pose(pose: Pose, min_confidence: float, max_gap: int) -> tuple[Pose, pd.DataFrame]:
    """Mask points under ``min_confidence``, interpolate gaps up to ``max_gap`` frames.

    Longer gaps stay NaN (flagged by ``longest_gap`` > ``max_gap`` and ``unrepaired_fraction``
    in the QC table). Confidence values are kept; NaN keypoints are the missing mask.
    """
    t, a, k, _ = pose.keypoints.shape
    kp = pose.keypoints.copy()
    low = pose.confidence < min_confidence
    kp[low] = np.nan
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    swaps = swap_mask(kp)
    flat = kp.reshape(t, a * k, 2)
    filled, fixed = interpolate_gaps(flat, int(max_gap))
    miss2 = missing.reshape(t, a * k)
    tt = max(t, 1)
    first = np.where(swaps.any(0), swaps.argmax(0), -1).reshape(-1)
    qc = pd.DataFrame(
        {
            "animal": np.repeat(pose.animal_ids, k),
            "keypoint": np.tile(pose.keypoint_names, a),
            "missing_fraction": miss2.sum(0) / tt,
            "repaired_fraction": fixed.sum(0) / tt,
            "longest_gap": longest_runs(miss2),
            "swap_frames": swaps.reshape(t, -1).sum(0),
            "unrepaired_fraction": (miss2 & ~fixed).sum(0) / tt,
            "first_swap_frame": first,
        },
        columns=QC_COLUMNS,
    )
    out = dataclasses.replace(pose, keypoints=filled.reshape(t, a, k, 2))
    return out, qc
