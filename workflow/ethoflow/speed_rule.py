"""The ``kinematic`` mode: the speed rule labs use today, as the baseline to beat.

BehaviorDEPOT-style: an animal is freezing (or immobile, resting...) while its smoothed
keypoint speed stays under a threshold for at least a minimum bout, and in locomotion while
it stays above one. The threshold and the minimum bout of each behavior are tuned on the
setup's train split by grid search for F1; behaviors that no speed rule describes are never
predicted by this mode (it says so in the training log).

The speed is the mean over keypoints of each keypoint's speed (less noisy than the
centroid's, whose jitter sums every keypoint's), measured over ``smooth_s`` seconds, the
fastest animal taken. It is in cm/s when the setup gives ``px_per_cm``, else in body sizes
per second, where the body size is the median over frames of the animal's radius of
gyration (root mean square distance of its keypoints from their centroid). That scale does
not hinge on two named keypoints (nose and tail base), so rigs that track other keypoints
still agree within the spread of their keypoints over the body.
"""

from __future__ import annotations

import warnings

import numpy as np

from .config import defaults
from .kinematic import fill_nan

DEFAULTS = defaults("kinematic_baseline")  # the config schema's defaults
SLOW = ("freez", "immob", "still", "rest", "sleep", "quiet")
FAST = ("locomot", "walk", "run", "dart", "flee", "escap", "explor")


def direction(behavior: str) -> str | None:
    """``below`` for behaviors that a low speed defines, ``above`` for fast ones, else None."""
    name = behavior.lower()
    if any(w in name for w in SLOW):
        return "below"
    if any(w in name for w in FAST):
        return "above"
    return None


def body_size(keypoints: np.ndarray) -> float:
    """Median radius of gyration of the animals' keypoints, in pixels (``[T, A, K, 2]``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        c = np.nanmean(keypoints, axis=2, keepdims=True)
        rg = np.sqrt(np.nanmean(((keypoints - c) ** 2).sum(-1), axis=2))
        size = float(np.nanmedian(rg)) if np.isfinite(rg).any() else 0.0
    return size if size > 0 else 1.0


def _at(kp: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``kp`` at fractional frame positions (linear interpolation, clipped to the ends)."""
    pos = np.clip(pos, 0, len(kp) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(kp) - 1)
    w = (pos - lo).reshape(-1, *([1] * (kp.ndim - 1)))
    return kp[lo] * (1 - w) + kp[hi] * w


def lag_window(t: int, fps: float, lag_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``t`` frames the fractional frame positions ``t - lag_s/2`` and
    ``t + lag_s/2`` (clipped to the recording) and the time between them (s)."""
    i = np.arange(t, dtype=np.float64)
    h = lag_s * fps / 2
    lo, hi = np.clip(i - h, 0, t - 1), np.clip(i + h, 0, t - 1)
    return lo, hi, np.maximum(hi - lo, 1e-9) / fps


def lag_speed(kp: np.ndarray, fps: float, lag_s: float) -> np.ndarray:
    """Speed of every point of ``kp [T, ..., 2]`` (filled, no NaN): its displacement between
    ``t - lag_s/2`` and ``t + lag_s/2`` over that time, positions interpolated between
    frames so that the lag is the same at any frame rate."""
    if len(kp) < 2:
        return np.zeros(kp.shape[:-1])
    lo, hi, dt = lag_window(len(kp), fps, lag_s)
    d = np.sqrt(((_at(kp, hi) - _at(kp, lo)) ** 2).sum(-1))
    return d / dt.reshape(-1, *([1] * (d.ndim - 1)))


def keypoint_speed(
    keypoints: np.ndarray, fps: float, px_per_cm: float | None = None, smooth_s: float = 0.2
) -> np.ndarray:
    """Speed ``[T]`` (cm/s or body sizes/s): the mean keypoint speed of the fastest animal.

    Each keypoint's speed is its displacement over ``smooth_s`` seconds (centred) divided by
    that time, not its frame-to-frame displacement: tracking jitter then adds the same speed
    at any frame rate, and so does resampling, where frame-to-frame speeds grow with the fps.
    """
    kp = fill_nan(np.asarray(keypoints, np.float64))
    v = lag_speed(kp, fps, smooth_s).mean(axis=2)  # [T, A]
    unit = px_per_cm if px_per_cm else body_size(keypoints)
    return (v.max(axis=1) if v.shape[1] else np.zeros(len(kp))) / unit


def _drop_short(mask: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or not mask.any():
        return mask
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    out = mask.copy()
    for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        if e - s < n:
            out[s:e] = False
    return out


def rule_mask(speed: np.ndarray, fps: float, rule: dict) -> np.ndarray:
    """Frames where one behavior's rule holds (threshold, then minimum bout)."""
    if rule["direction"] == "below":
        mask = speed < rule["threshold"]
    else:
        mask = speed > rule["threshold"]
    return _drop_short(mask, int(round(rule["min_bout_s"] * fps)))


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum(y & pred)
    return float(2 * tp / max(1, y.sum() + pred.sum()))


def fit(
    speeds: list[np.ndarray],
    labels: list[np.ndarray],
    fps: list[float],
    behaviors: list[str],
    cfg: dict | None = None,
) -> dict:
    """Grid-search the threshold and minimum bout of each speed-defined behavior for F1 on
    the given (train) sessions. Returns ``{"rules": {behavior: rule}, "skipped": [...]}``."""
    cfg = {**DEFAULTS, **(cfg or {})}
    allspeed = np.concatenate(speeds) if speeds else np.zeros(0)
    rules, skipped = {}, []
    for code, b in enumerate(behaviors, start=1):
        d = direction(b)
        ys = [np.asarray(y) == code for y in labels]
        if d is None or not any(y.any() for y in ys) or not len(allspeed):
            skipped.append(b)
            continue
        grid = np.unique(np.quantile(allspeed, np.linspace(0.01, 0.99, int(cfg["n_thresholds"]))))
        scores = []
        for thr in grid:
            for mb in cfg["min_bout_grid_s"]:
                rule = {"direction": d, "threshold": float(thr), "min_bout_s": float(mb)}
                preds = [rule_mask(s, f, rule) for s, f in zip(speeds, fps, strict=True)]
                scores.append((_f1(np.concatenate(ys), np.concatenate(preds)), rule))
        # the middle of the plateau of near-best rules, not the single best grid point: a
        # threshold at the edge of the plateau flips on small shifts between recordings
        top = max(f for f, _ in scores)
        near = [r for f, r in scores if f >= top - cfg["plateau_f1"]]
        mb = float(np.median([r["min_bout_s"] for r in near]))
        mb = min(cfg["min_bout_grid_s"], key=lambda v: abs(v - mb))
        thr = float(np.median([r["threshold"] for r in near if r["min_bout_s"] == mb]))
        rule = {"direction": d, "threshold": thr, "min_bout_s": float(mb)}
        preds = [rule_mask(s, f, rule) for s, f in zip(speeds, fps, strict=True)]
        rules[b] = {**rule, "train_f1": _f1(np.concatenate(ys), np.concatenate(preds))}
    return {"rules": rules, "skipped": skipped, "smooth_s": float(cfg["smooth_s"])}


def predict(speed: np.ndarray, fps: float, model: dict, behaviors: list[str]) -> np.ndarray:
    """Per-frame probabilities ``[T, C+1]`` (0/1): the first behavior in vocabulary order
    whose rule holds, else the background."""
    t = len(speed)
    probs = np.zeros((t, len(behaviors) + 1))
    free = np.ones(t, bool)
    for code, b in enumerate(behaviors, start=1):
        if b in model["rules"]:
            m = rule_mask(speed, fps, model["rules"][b]) & free
            probs[m, code] = 1.0
            free &= ~m
    probs[free, 0] = 1.0
    return probs
