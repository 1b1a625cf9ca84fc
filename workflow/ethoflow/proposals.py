"""Action proposals from stage-1 probabilities, clip windows, and stage-1 evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import defaults
from .vocab import classes

COLUMNS = ["start_frame", "end_frame", "score"]
DEFAULTS = defaults("proposals")  # the config schema's `proposals` defaults


def _smooth(p: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(p) == 0:
        return p
    c = np.cumsum(np.pad(p.astype(np.float64), (n // 2 + 1, n - n // 2 - 1), mode="edge"))
    return ((c[n:] - c[:-n]) / n).astype(np.float32)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the True runs of a boolean array."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def make_proposals(p_action: np.ndarray, fps: float, cfg: dict) -> pd.DataFrame:
    """Smoothed p_action -> hysteresis segments -> min duration -> padding -> merged gaps."""
    cfg = {**DEFAULTS, **cfg}
    p = np.asarray(p_action, np.float32)
    n = len(p)
    ps = _smooth(p, max(1, round(cfg["smooth_s"] * fps)))
    starts, ends = _runs(ps > cfg["off_threshold"])
    # hysteresis: keep the low-threshold runs that reach the high threshold somewhere
    peak = np.array([ps[s:e].max() for s, e in zip(starts, ends, strict=True)])
    keep = peak > cfg["on_threshold"] if len(peak) else np.zeros(0, bool)
    keep &= (ends - starts) >= max(1, round(cfg["min_duration_s"] * fps))
    starts, ends = starts[keep], ends[keep]
    pad = round(cfg["pad_s"] * fps)
    starts = np.clip(starts - pad, 0, n)
    ends = np.clip(ends + pad, 0, n)
    gap = round(cfg["merge_gap_s"] * fps)
    merged: list[list[int]] = []
    for s, e in zip(starts, ends, strict=True):
        if merged and s - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], int(e))
        else:
            merged.append([int(s), int(e)])
    rows = [(s, e, float(p[s:e].mean())) for s, e in merged]
    return pd.DataFrame(rows, columns=COLUMNS).astype(
        {"start_frame": np.int64, "end_frame": np.int64, "score": np.float64}
    )


def clip_windows(
    proposals: pd.DataFrame, n_frames: int, fps: float, clip_seconds: float = 5.0
) -> pd.DataFrame:
    """Fixed-length clips covering every proposal.

    A proposal no longer than a clip gets one clip centred on it; a longer one gets
    ``ceil(length / clip)`` clips spread evenly from its start to its end. Clips stay inside
    ``[0, n_frames)``; a video shorter than a clip gives clips of the whole video. Identical
    windows are kept once.
    """
    length = max(1, min(n_frames, round(clip_seconds * fps)))
    rows = []
    for i, r in enumerate(proposals.itertuples(index=False)):
        s, e = int(r.start_frame), int(r.end_frame)
        k = max(1, math.ceil((e - s) / length))
        if k == 1:
            centre = (s + e) / 2
            starts = [round(centre - length / 2)]
        else:
            starts = np.linspace(s, e - length, k).round().astype(int).tolist()
        for st in starts:
            st = min(max(0, st), n_frames - length)
            rows.append((st, st + length, float(r.score), i))
    df = pd.DataFrame(rows, columns=[*COLUMNS, "proposal"])
    df = df.drop_duplicates(subset=["start_frame", "end_frame"]).reset_index(drop=True)
    return df.astype({"start_frame": np.int64, "end_frame": np.int64, "proposal": np.int64})


def _f1(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(y & pred))
    prec = tp / pred.sum() if pred.sum() else 0.0
    rec = tp / y.sum() if y.sum() else float("nan")
    f1 = 2 * prec * rec / (prec + rec) if (prec + rec) > 0 else 0.0
    return prec, rec, f1


def _ap(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score  # lazy: ~1 s of start-up

    return float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def covered(proposals: pd.DataFrame, n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for s, e in zip(proposals.start_frame, proposals.end_frame, strict=True):
        mask[int(s) : int(e)] = True
    return mask


def stage1_metrics(
    p_action: np.ndarray,
    p_class: np.ndarray,
    labels: np.ndarray,
    proposals: pd.DataFrame,
    behaviors: list[str],
) -> dict[str, pd.DataFrame]:
    """Frame-level localization and per-class metrics; recall and coverage of proposals."""
    known = labels >= 0
    y = labels[known]
    act = y > 0
    pa = p_action[known]
    prec, rec, f1 = _f1(act, pa > 0.5)
    cov = covered(proposals, len(labels))
    loc = pd.DataFrame(
        [
            {
                "metric_of": "action_vs_other",
                "precision": prec,
                "recall": rec,
                "f1": f1,
                "ap": _ap(act, pa),
                "proposal_recall": float(cov[known][act].mean()) if act.any() else float("nan"),
                "coverage": float(cov.mean()),
                "n_proposals": len(proposals),
                "n_frames": len(labels),
            }
        ]
    )
    pc = p_class[known]
    pred = pc.argmax(1)
    rows = []
    for c, name in enumerate(classes(behaviors)):
        prec, rec, f1 = _f1(y == c, pred == c)
        rows.append(
            {
                "metric_of": name,
                "precision": prec,
                "recall": rec,
                "f1": f1,
                "ap": _ap(y == c, pc[:, c]),
                "support": int(np.sum(y == c)),
            }
        )
    return {"localization": loc, "classes": pd.DataFrame(rows)}


def threshold_sweep(
    p_action: np.ndarray, labels: np.ndarray, fps: float, cfg: dict, thresholds
) -> pd.DataFrame:
    """Recall of annotated action frames vs share of video sent to the GPU, per threshold."""
    cfg = {**DEFAULTS, **cfg}
    act = labels > 0
    rows = []
    for t in thresholds:
        props = make_proposals(
            p_action, fps, {**cfg, "on_threshold": float(t), "off_threshold": 0.6 * float(t)}
        )
        cov = covered(props, len(labels))
        rows.append(
            {
                "on_threshold": float(t),
                "proposal_recall": float(cov[act].mean()) if act.any() else float("nan"),
                "coverage": float(cov.mean()),
                "n_proposals": len(props),
            }
        )
    return pd.DataFrame(rows)
