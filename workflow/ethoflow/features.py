"""Per-frame pose features for stage 1 and the pose classifier (CalMS21-baseline style).

For every animal ``a`` (names start with the animal id):

- ``{a}_{kp}_x/_y``: keypoints normalised to the arena (``frame_size`` if given, else the 1st to
  99th percentile extent of all keypoints of the session) -> about [0, 1]; raw pixels if
  ``normalize`` is false;
- ``{a}_{kp}_ego_x/_y``: keypoints in the animal's own frame (origin at its centroid, x axis
  tail->head), divided by the body length scale;
- ``{a}_speed``, ``{a}_accel``: centroid speed and its change, per second;
  ``{a}_v_forward``, ``{a}_v_lateral``: velocity along and across the body axis;
- ``{a}_body_length``: head-tail distance; ``{a}_heading_sin/_cos``; ``{a}_turn``: heading change
  in rad/s; ``{a}_missing``: fraction of the animal's keypoints missing in the frame.

For every pair of animals ``a``, ``b`` (``pairwise``): ``{a}-{b}_dist`` (centroids),
``_min_dist`` (closest keypoints), ``_approach`` (rate of change of the centroid distance),
``_nose_nose``, ``_nose_tail`` (nose of a to tail of b), ``_tail_nose``, and the bearing of b
seen from a and of a from b (``_bearing_ab_sin/_cos``, ``_bearing_ba_sin/_cos``).

Lengths are in body lengths (the median head-tail distance of the session) when ``normalize``
is true, else pixels. Head and tail keypoints: ``cfg["head"]``/``cfg["tail"]``, else the first
keypoint named like nose/snout/head and like tail base/tail, else the first and last keypoint.
Missing values (after repair) are filled forward, then backward, then with 0.

cfg keys (defaults: ``DEFAULTS``, read from the config schema): ``allocentric`` (True: include
the arena coordinates; false keeps only arena-independent features, which generalise better
across rigs), ``normalize`` (True), ``speed_smooth_frames`` (5, a centred moving average applied
to speeds, accelerations and turning rates), ``pairwise`` (True); not config keys, set by the
caller: optional ``head``, ``tail``, ``frame_size`` ([width, height] in pixels).
"""

from __future__ import annotations

import warnings

import numpy as np

from .config import defaults
from .pose_io import Pose
from .skeleton import norm_name

DEFAULTS = defaults("features")  # the schema's `features` defaults
HEAD_NAMES = ("nose", "snout", "head", "nosetip")
TAIL_NAMES = ("tailbase", "tail base", "tail_base", "tail-base", "tailroot", "tail")


def find_keypoint(names: list[str], wanted: str | None, candidates: tuple, default: int) -> int:
    """Index of ``wanted`` in ``names``, else of the first candidate name, else ``default``."""
    normed = [norm_name(n) for n in names]
    if wanted:
        if norm_name(wanted) in normed:
            return normed.index(norm_name(wanted))
        raise ValueError(f"keypoint {wanted!r} not in {names}")
    for c in candidates:
        if norm_name(c) in normed:
            return normed.index(norm_name(c))
    return default


def fill_missing(x: np.ndarray) -> np.ndarray:
    """Forward fill, then backward fill along axis 0; columns that are all NaN become 0."""
    t = x.shape[0]
    flat = x.reshape(t, -1)
    ok = np.isfinite(flat)
    if ok.all():
        return x.copy()
    idx = np.arange(t)[:, None]
    fwd = np.where(ok, idx, -1)
    np.maximum.accumulate(fwd, axis=0, out=fwd)
    bwd = np.where(ok, idx, t)
    bwd = np.minimum.accumulate(bwd[::-1], axis=0)[::-1]
    src = np.where(fwd >= 0, fwd, bwd)
    cols = np.broadcast_to(np.arange(flat.shape[1]), flat.shape)
    out = flat[np.minimum(src, t - 1), cols]
    out = np.where(src < t, out, 0.0)
    out = np.where(np.isfinite(out), out, 0.0)
    return out.reshape(x.shape).astype(x.dtype)


def smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over axis 0 (edges use the available frames)."""
    n = int(n)
    if n <= 1 or x.shape[0] == 0:
        return x
    t = x.shape[0]
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:]), np.float64), x], 0), 0)
    lo = np.clip(np.arange(t) - n // 2, 0, t)
    hi = np.clip(np.arange(t) - n // 2 + n, 0, t)
    shape = (t,) + (1,) * (x.ndim - 1)
    return ((c[hi] - c[lo]) / (hi - lo).reshape(shape)).astype(x.dtype)


def _diff(x: np.ndarray, fps: float) -> np.ndarray:
    """Per-second difference over axis 0, same length (first frame copies the second)."""
    d = np.zeros_like(x)
    if x.shape[0] > 1:
        d[1:] = (x[1:] - x[:-1]) * fps
        d[0] = d[1]
    return d


def _dist(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt(((p - q) ** 2).sum(-1))


def compute_features(pose: Pose, cfg: dict | None = None) -> tuple[np.ndarray, list[str]]:
    """Features ``f4 [T, F]`` and their names for one session (see the module docstring)."""
    cfg = {**DEFAULTS, **(cfg or {})}
    kp_raw = pose.keypoints.astype(np.float64)
    t, a, k, _ = kp_raw.shape
    fps = float(pose.fps)
    sm = int(cfg["speed_smooth_frames"] or 1)
    ids, parts = pose.animal_ids, pose.keypoint_names
    h = find_keypoint(parts, cfg.get("head"), HEAD_NAMES, 0)
    tl = find_keypoint(parts, cfg.get("tail"), TAIL_NAMES, k - 1)
    missing = ~np.isfinite(kp_raw).all(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centroid = np.nanmean(kp_raw, axis=2)  # [T, A, 2]
        raw_len = _dist(kp_raw[:, :, h], kp_raw[:, :, tl])
        scale = float(np.nanmedian(raw_len)) if np.isfinite(raw_len).any() else 0.0
    kp = fill_missing(kp_raw)
    centroid = fill_missing(centroid)
    if not cfg["normalize"] or not scale > 0:
        scale = 1.0
    cols: list[np.ndarray] = []
    names: list[str] = []

    def add(values: np.ndarray, name: str) -> None:
        cols.append(values)
        names.append(name)

    # allocentric coordinates
    if cfg["normalize"]:
        if cfg.get("frame_size"):
            lo = np.zeros(2)
            span = np.asarray(cfg["frame_size"], np.float64)
        else:
            flat = kp_raw.reshape(-1, 2)
            flat = flat[np.isfinite(flat).all(1)]
            lo = np.percentile(flat, 1, axis=0) if len(flat) else np.zeros(2)
            hi = np.percentile(flat, 99, axis=0) if len(flat) else np.ones(2)
            span = np.where(hi - lo > 0, hi - lo, 1.0)
        allo = (kp - lo) / span
    else:
        allo = kp
    # body axis and egocentric coordinates
    axis = kp[:, :, h] - kp[:, :, tl]  # [T, A, 2]
    heading = np.arctan2(axis[..., 1], axis[..., 0])
    cos, sin = np.cos(heading), np.sin(heading)
    rel = kp - centroid[:, :, None]
    ego_x = (rel[..., 0] * cos[..., None] + rel[..., 1] * sin[..., None]) / scale
    ego_y = (-rel[..., 0] * sin[..., None] + rel[..., 1] * cos[..., None]) / scale
    vel = _diff(centroid, fps) / scale  # [T, A, 2]
    vel = smooth(vel, sm)
    speed = np.sqrt((vel**2).sum(-1))
    accel = smooth(_diff(speed, fps), sm)
    v_fwd = vel[..., 0] * cos + vel[..., 1] * sin
    v_lat = -vel[..., 0] * sin + vel[..., 1] * cos
    dhead = np.zeros_like(heading)
    if t > 1:
        dhead[1:] = np.angle(np.exp(1j * (heading[1:] - heading[:-1]))) * fps
        dhead[0] = dhead[1]
    turn = smooth(dhead, sm)
    body_len = _dist(kp[:, :, h], kp[:, :, tl]) / scale
    miss_frac = missing.mean(2)
    for i, an in enumerate(ids):
        for j, kn in enumerate(parts):
            if cfg["allocentric"]:
                add(allo[:, i, j, 0], f"{an}_{kn}_x")
                add(allo[:, i, j, 1], f"{an}_{kn}_y")
        for j, kn in enumerate(parts):
            add(ego_x[:, i, j], f"{an}_{kn}_ego_x")
            add(ego_y[:, i, j], f"{an}_{kn}_ego_y")
        add(speed[:, i], f"{an}_speed")
        add(accel[:, i], f"{an}_accel")
        add(v_fwd[:, i], f"{an}_v_forward")
        add(v_lat[:, i], f"{an}_v_lateral")
        add(body_len[:, i], f"{an}_body_length")
        add(sin[:, i], f"{an}_heading_sin")
        add(cos[:, i], f"{an}_heading_cos")
        add(turn[:, i], f"{an}_turn")
        add(miss_frac[:, i], f"{an}_missing")
    if cfg["pairwise"] and a > 1:
        for i in range(a):
            for j in range(i + 1, a):
                pre = f"{ids[i]}-{ids[j]}"
                dist = _dist(centroid[:, i], centroid[:, j]) / scale
                add(dist, f"{pre}_dist")
                allpairs = _dist(kp[:, i, :, None], kp[:, j, None, :]).min(axis=(1, 2))
                add(allpairs / scale, f"{pre}_min_dist")
                add(smooth(_diff(dist, fps), sm), f"{pre}_approach")
                add(_dist(kp[:, i, h], kp[:, j, h]) / scale, f"{pre}_nose_nose")
                add(_dist(kp[:, i, h], kp[:, j, tl]) / scale, f"{pre}_nose_tail")
                add(_dist(kp[:, i, tl], kp[:, j, h]) / scale, f"{pre}_tail_nose")
                for src, dst, tag in ((i, j, "ab"), (j, i, "ba")):
                    d = centroid[:, dst] - centroid[:, src]
                    bearing = np.arctan2(d[:, 1], d[:, 0]) - heading[:, src]
                    add(np.sin(bearing), f"{pre}_bearing_{tag}_sin")
                    add(np.cos(bearing), f"{pre}_bearing_{tag}_cos")
    feats = np.stack(cols, axis=1) if cols else np.zeros((t, 0))
    feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    return feats, names
