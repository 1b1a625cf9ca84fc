"""Multi-scale window features of pose, in seconds (JABS/SimBA style), for stage 1.

Everything is measured in time and body sizes, never in frames or pixels, so that a model
trained on one rig applies to recordings at another frame rate or image scale:

- base signals per animal: the log speed of every keypoint (displacement over 0.2 s divided
  by that time), the log mean keypoint speed over 0.2, 0.5 and 1 s, and the log radius of
  gyration (spread of the keypoints, in body sizes); per pair of animals, the log centroid
  distance. Body size: ``px_per_cm`` when given (speeds in cm/s), else the session's median
  radius of gyration (``speed_rule.body_size``);
- for every base signal: its value, and its mean, minimum and maximum over centred windows
  of ``windows_s`` seconds (default 0.25, 0.5, 1, 2 s).

``standardize`` (optional) z-scores every column within the session, which removes what is
left of a rig's offset at the cost of the session's own baseline level.
"""

from __future__ import annotations

import numpy as np

from .kinematic import fill_nan
from .speed_rule import body_size, lag_speed

LAGS_S = (0.2, 0.5, 1.0)
EPS = 1e-3


def _window_stats(x: np.ndarray, n: int) -> list[np.ndarray]:
    from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

    if n <= 1:
        return [x, x, x]
    return [
        uniform_filter1d(x, n, axis=0, mode="nearest"),
        minimum_filter1d(x, n, axis=0, mode="nearest"),
        maximum_filter1d(x, n, axis=0, mode="nearest"),
    ]


def window_features(
    keypoints: np.ndarray,
    fps: float,
    keypoint_names: list[str],
    animal_ids: list[str],
    px_per_cm: float | None = None,
    windows_s: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0),
    standardize: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Features ``f4 [T, F]`` and their names (see the module docstring)."""
    raw = np.asarray(keypoints, np.float64)
    t, a, k, _ = raw.shape
    kp = fill_nan(raw)
    unit = px_per_cm if px_per_cm else body_size(raw)
    cols, names = [], []
    centroids = kp.mean(axis=2)
    for i, an in enumerate(animal_ids):
        v = {lag: lag_speed(kp[:, i], fps, lag) / unit for lag in LAGS_S}  # [T, K] each
        for j, kn in enumerate(keypoint_names):
            cols.append(np.log(v[LAGS_S[0]][:, j] + EPS))
            names.append(f"{an}_{kn}_logspeed")
        for lag in LAGS_S:
            cols.append(np.log(v[lag].mean(1) + EPS))
            names.append(f"{an}_logspeed_{lag:g}s")
        rg = np.sqrt(((kp[:, i] - centroids[:, i, None]) ** 2).sum(-1).mean(1)) / unit
        cols.append(np.log(rg + EPS))
        names.append(f"{an}_logspread")
    for i in range(a):
        for j in range(i + 1, a):
            d = np.sqrt(((centroids[:, i] - centroids[:, j]) ** 2).sum(-1)) / unit
            cols.append(np.log(d + EPS))
            names.append(f"{animal_ids[i]}-{animal_ids[j]}_logdist")
    base = np.stack(cols, 1) if cols else np.zeros((t, 0))
    out, out_names = [base], list(names)
    for w in windows_s:
        n = max(1, int(round(w * fps)))
        for stat, x in zip(("mean", "min", "max"), _window_stats(base, n), strict=True):
            out.append(x)
            out_names += [f"{nm}_{stat}{w:g}s" for nm in names]
    x = np.concatenate(out, 1)
    if standardize and len(x):
        sd = x.std(0)
        x = (x - x.mean(0)) / np.where(sd > 1e-6, sd, 1.0)
    return np.nan_to_num(x).astype(np.float32), out_names
