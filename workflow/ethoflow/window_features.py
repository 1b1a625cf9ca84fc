"""Multi-scale window features of pose, in seconds (JABS/SimBA style), for stage 1.

Everything is measured in time and in a length unit, never in frames or pixels, so that a
model trained on one rig applies to recordings at another frame rate or image scale.
``px_per_unit`` is the number of pixels of that unit: pixels per cm when the session's
``px_per_cm`` is known (``stage1.length_units``), else the session's body size (the median
over frames of the RMS distance of the keypoints to their centroid, ``speed_rule.body_size``,
which depends on no named keypoint).

Base signals per animal ``a``:

- ``{a}_{kp}_logspeed``: log speed of every keypoint (displacement over 0.2 s / that time);
- ``{a}_logspeed_{lag}s``: log mean keypoint speed over 0.2, 0.5 and 1 s;
- ``{a}_logspeed_centroid_{lag}s``: log speed of the keypoints' centroid over the same lags;
- ``{a}_logspread``: log radius of gyration of the keypoints (posture size);
- ``{a}_elongation``: sqrt of the ratio of the small to the large eigenvalue of the
  keypoints' covariance (1 = round, 0 = a line);
- ``{a}_logturn_axis``: log angular speed (rad/s, over 0.5 s) of the body's principal axis
  (from that covariance: no named keypoint);
- ``{a}_logturn_head``: log angular speed of the head direction (centroid -> head keypoint);
- ``{a}_bend_cos``: cosine of the angle between the two body segments tail -> centroid and
  centroid -> head (1 = straight, -1 = folded back).

Per pair of animals ``a-b``: log centroid distance ``_logdist``, log closest keypoint
distance ``_logmindist``, log distance of either head to any keypoint of the other
``_lognosebody``, and ``_facing_ab``/``_facing_ba``: cosine of the angle between one animal's
head direction and the direction to the other's centroid. With several animals also the
identity-free ``all_{signal}_max``/``_min`` over animals (and ``all_{pair signal}_min``
over pairs), since which animal does something is seldom what a behavior is about.

Every base signal enters as its value and its mean, standard deviation, minimum and maximum
over centred windows of ``windows_s`` seconds (default 0.25, 0.5, 1, 2 s).

``standardize`` (optional, ``localizer.standardize_per_session``) z-scores every column within
the session, which removes what is left of a rig's offset at the cost of the session's own
baseline level.
"""

from __future__ import annotations

import warnings

import numpy as np

from .kinematic import fill_nan
from .speed_rule import _at, body_size, lag_speed, lag_window

LAGS_S = (0.2, 0.5, 1.0)
TURN_LAG_S = 0.5
STATS = ("mean", "std", "min", "max")
EPS = 1e-3


def _window_stats(x: np.ndarray, n: int) -> list[np.ndarray]:
    from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

    if n <= 1:
        return [x, np.zeros_like(x), x, x]
    m = uniform_filter1d(x, n, axis=0, mode="nearest")
    m2 = uniform_filter1d(x * x, n, axis=0, mode="nearest")
    return [
        m,
        np.sqrt(np.maximum(m2 - m * m, 0.0)),
        minimum_filter1d(x, n, axis=0, mode="nearest"),
        maximum_filter1d(x, n, axis=0, mode="nearest"),
    ]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.sqrt((v**2).sum(-1, keepdims=True))
    return np.where(n > 1e-9, v / np.maximum(n, 1e-12), 0.0)


def angular_speed(direction: np.ndarray, fps: float, lag_s: float) -> np.ndarray:
    """Angular speed (rad/s) of a direction ``[T, ..., 2]`` (any length; 0 = undefined):
    the angle between its value at ``t - lag_s/2`` and at ``t + lag_s/2`` over that time."""
    u = _unit(np.asarray(direction, np.float64))
    if len(u) < 2:
        return np.zeros(u.shape[:-1])
    lo, hi, dt = lag_window(len(u), fps, lag_s)
    a, b = _unit(_at(u, lo)), _unit(_at(u, hi))
    ang = np.abs(np.arctan2(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0], (a * b).sum(-1)))
    return ang / dt.reshape(-1, *([1] * (ang.ndim - 1)))


def body_axes(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal-axis direction as a doubled-angle vector ``[..., 2]`` (the axis has no
    sign) and the elongation ``[...]`` of keypoints ``[..., K, 2]``."""
    rel = kp - kp.mean(-2, keepdims=True)
    sxx = (rel[..., 0] ** 2).mean(-1)
    syy = (rel[..., 1] ** 2).mean(-1)
    sxy = (rel[..., 0] * rel[..., 1]).mean(-1)
    half = (sxx - syy) / 2
    r = np.sqrt(half**2 + sxy**2)
    mid = (sxx + syy) / 2
    elong = np.sqrt(np.clip(mid - r, 0, None) / np.maximum(mid + r, 1e-12))
    elong = np.where(mid + r > 1e-12, elong, 1.0)
    return np.stack([half, sxy], -1), elong


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (_unit(a) * _unit(b)).sum(-1)


def window_features(
    keypoints: np.ndarray,
    fps: float,
    keypoint_names: list[str],
    animal_ids: list[str],
    px_per_unit: float | None = None,
    windows_s: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0),
    standardize: bool = False,
    head: str | None = None,
    tail: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Features ``f4 [T, F]`` and their names (see the module docstring); the base signals
    come first (``n_base(names, windows_s)`` of them)."""
    from .features import HEAD_NAMES, TAIL_NAMES, find_keypoint

    raw = np.asarray(keypoints, np.float64)
    t, a, k, _ = raw.shape
    kp = fill_nan(raw)
    unit = px_per_unit if px_per_unit and np.isfinite(px_per_unit) else body_size(raw)
    h = find_keypoint(keypoint_names, head, HEAD_NAMES, 0)
    tl = find_keypoint(keypoint_names, tail, TAIL_NAMES, k - 1)
    cols, names = [], []

    def add(x: np.ndarray, name: str) -> None:
        cols.append(x)
        names.append(name)

    centroids = kp.mean(axis=2)  # [T, A, 2]
    head_dir = kp[:, :, h] - centroids
    axis, elong = body_axes(kp)
    per_animal: dict[str, list[np.ndarray]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        turn_axis = angular_speed(axis, fps, TURN_LAG_S) / 2  # doubled angle -> axis angle
        turn_head = angular_speed(head_dir, fps, TURN_LAG_S)
        bend = _cos(centroids - kp[:, :, tl], head_dir)
    for i, an in enumerate(animal_ids):
        v = {lag: lag_speed(kp[:, i], fps, lag) / unit for lag in LAGS_S}  # [T, K] each
        for j, kn in enumerate(keypoint_names):
            add(np.log(v[LAGS_S[0]][:, j] + EPS), f"{an}_{kn}_logspeed")
        animal = [np.log(v[lag].mean(1) + EPS) for lag in LAGS_S]
        anames = [f"logspeed_{lag:g}s" for lag in LAGS_S]
        for lag in LAGS_S:
            animal.append(np.log(lag_speed(centroids[:, i], fps, lag) / unit + EPS))
            anames.append(f"logspeed_centroid_{lag:g}s")
        rg = np.sqrt(((kp[:, i] - centroids[:, i, None]) ** 2).sum(-1).mean(1)) / unit
        animal += [
            np.log(rg + EPS),
            elong[:, i],
            np.log(turn_axis[:, i] + EPS),
            np.log(turn_head[:, i] + EPS),
            bend[:, i],
        ]
        anames += ["logspread", "elongation", "logturn_axis", "logturn_head", "bend_cos"]
        for x, nm in zip(animal, anames, strict=True):
            add(x, f"{an}_{nm}")
            per_animal.setdefault(nm, []).append(x)
    per_pair: dict[str, list[np.ndarray]] = {}
    for i in range(a):
        for j in range(i + 1, a):
            pre = f"{animal_ids[i]}-{animal_ids[j]}"
            d = np.sqrt(((centroids[:, i] - centroids[:, j]) ** 2).sum(-1)) / unit
            dk = np.sqrt(((kp[:, i, :, None] - kp[:, j, None, :]) ** 2).sum(-1)) / unit
            pair = {
                "logdist": np.log(d + EPS),
                "logmindist": np.log(dk.min(axis=(1, 2)) + EPS),
                "lognosebody": np.log(np.minimum(dk[:, h].min(1), dk[:, :, h].min(1)) + EPS),
            }
            for nm, x in pair.items():
                add(x, f"{pre}_{nm}")
                per_pair.setdefault(nm, []).append(x)
            add(_cos(head_dir[:, i], centroids[:, j] - centroids[:, i]), f"{pre}_facing_ab")
            add(_cos(head_dir[:, j], centroids[:, i] - centroids[:, j]), f"{pre}_facing_ba")
    if a > 1:
        for nm, xs in per_animal.items():
            st = np.stack(xs, 1)
            add(st.max(1), f"all_{nm}_max")
            add(st.min(1), f"all_{nm}_min")
    if a > 2:
        for nm, xs in per_pair.items():
            add(np.stack(xs, 1).min(1), f"all_{nm}_min")
    base = np.stack(cols, 1) if cols else np.zeros((t, 0))
    out, out_names = [base], list(names)
    for w in windows_s:
        n = max(1, int(round(w * fps)))
        for stat, x in zip(STATS, _window_stats(base, n), strict=True):
            out.append(x)
            out_names += [f"{nm}_{stat}{w:g}s" for nm in names]
    x = np.concatenate(out, 1, dtype=np.float64 if standardize else np.float32)
    if standardize and len(x):
        sd = x.std(0)
        x = ((x - x.mean(0)) / np.where(sd > 1e-6, sd, 1.0)).astype(np.float32)
    x[~np.isfinite(x)] = 0.0
    return x, out_names


def n_base(names: list[str], windows_s) -> int:
    """How many of ``names`` (from :func:`window_features`) are base signals."""
    return len(names) // (1 + len(STATS) * len(tuple(windows_s)))
