"""Rule-based kinematic labels for recordings without human annotations.

These labels are a documented, reproducible rule applied to pose: they let the demo cohort
exercise training and evaluation end to end. They are *not* ground truth.

The rule, in body lengths (BL, the median head-to-tail distance over animals and frames):

- centroid speed of every animal, smoothed with a moving average of ``smooth_s`` seconds;
- ``contact``: the head keypoint of one animal is within ``contact_distance`` BL of any
  keypoint of another animal (multi-animal setups only);
- ``locomotion``: the fastest animal moves faster than ``locomotion_speed`` BL/s;
- ``immobile``: every animal moves slower than ``immobile_speed`` BL/s;
- priority contact > locomotion > immobile; everything else is ``other``;
- bouts shorter than ``min_bout_s`` become ``other``.

Only the behaviors in the setup's vocabulary are labelled (a vocabulary without ``contact``
simply never gets it).
"""

from __future__ import annotations

import numpy as np

from .config import defaults
from .errors import InputError

RULE_BEHAVIORS = ("contact", "locomotion", "immobile")
DEFAULTS = defaults("kinematic_labels")  # the config schema's `kinematic_labels` defaults


def fill_nan(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over time (axis 0) of every column; all-NaN columns become 0."""
    flat = x.reshape(x.shape[0], -1).copy()
    t = np.arange(flat.shape[0])
    for j in range(flat.shape[1]):
        ok = np.isfinite(flat[:, j])
        if ok.all():
            continue
        flat[:, j] = np.interp(t, t[ok], flat[ok, j]) if ok.any() else 0.0
    return flat.reshape(x.shape)


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    kernel = np.ones(n) / n
    pad = np.pad(x, [(n // 2, n - 1 - n // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, pad)


def _drop_short_bouts(labels: np.ndarray, min_len: int) -> np.ndarray:
    if min_len <= 1 or labels.size == 0:
        return labels
    out = labels.copy()
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, labels.size]
    for s, e in zip(starts, ends, strict=True):
        if e - s < min_len:
            out[s:e] = 0
    return out


def body_length(keypoints: np.ndarray, head: int, tail: int) -> float:
    """Median head-to-tail distance over frames and animals (pixels)."""
    d = np.linalg.norm(keypoints[:, :, head] - keypoints[:, :, tail], axis=-1)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size == 0:
        raise ValueError("no frame has both head and tail keypoints")
    return float(np.median(d))


def kinematic_labels(
    keypoints: np.ndarray,
    fps: float,
    keypoint_names: list[str],
    behaviors: list[str],
    head: str,
    tail: str,
    cfg: dict | None = None,
    source: str | None = None,
) -> np.ndarray:
    """Per-frame labels (0 = other, i = behaviors[i-1]) from ``keypoints [T, A, K, 2]``."""
    cfg = {**DEFAULTS, **(cfg or {})}
    unknown = [b for b in behaviors if b not in RULE_BEHAVIORS]
    if unknown:
        raise InputError(
            source,
            f"rule:kinematic defines only {RULE_BEHAVIORS}; the vocabulary also has {unknown}",
        )
    for name in (head, tail):
        if name not in keypoint_names:
            raise InputError(source, f"keypoint {name!r} (setup head/tail) not in the skeleton")
    kp = fill_nan(np.asarray(keypoints, dtype=np.float64))
    n_frames, n_animals = kp.shape[:2]
    bl = body_length(kp, keypoint_names.index(head), keypoint_names.index(tail))
    centroid = kp.mean(axis=2)  # [T, A, 2]
    step = np.zeros((n_frames, n_animals))
    step[1:] = np.linalg.norm(np.diff(centroid, axis=0), axis=-1)
    speed = _moving_average(step * fps / bl, max(1, round(cfg["smooth_s"] * fps)))
    fastest = speed.max(axis=1)

    labels = np.zeros(n_frames, dtype=np.int64)
    code = {b: i + 1 for i, b in enumerate(behaviors)}
    if "immobile" in code:
        labels[fastest < cfg["immobile_speed"]] = code["immobile"]
    if "locomotion" in code:
        labels[fastest > cfg["locomotion_speed"]] = code["locomotion"]
    if "contact" in code and n_animals > 1:
        nose = kp[:, :, keypoint_names.index(head)]  # [T, A, 2]
        # distance from each animal's head to every keypoint of every other animal
        d = np.linalg.norm(nose[:, :, None, None, :] - kp[:, None, :, :, :], axis=-1)
        d[:, np.arange(n_animals), np.arange(n_animals)] = np.inf
        near = d.min(axis=(1, 2, 3)) / bl < cfg["contact_distance"]
        labels[near] = code["contact"]
    return _drop_short_bouts(labels, max(1, round(cfg["min_bout_s"] * fps)))
