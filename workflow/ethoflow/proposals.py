"""Action proposals from stage-1 probabilities, clip windows, and stage-1 evaluation.

Proposals are hysteresis segments of a smoothed probability (``make_proposals``). With
``target_recall`` (default 0.95) the stage-1 model carries one threshold per behavior, chosen
on its validation predictions (``tune_thresholds``): the largest on-threshold of that
behavior's probability whose proposals still cover ``target_recall`` of the behavior's
frames, i.e. the least video sent to the GPU at that recall. A session's proposals are then
the union of the behaviors' proposals (``propose``). Without it (``target_recall: null``),
the fixed ``on_threshold``/``off_threshold`` apply to ``p_action``.
"""

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
    return _table(_merge(starts, ends, round(cfg["merge_gap_s"] * fps)), p)


def _merge(starts, ends, gap: int) -> list[list[int]]:
    """Sorted segments, those less than ``gap`` frames apart merged."""
    merged: list[list[int]] = []
    for s, e in sorted(zip(starts, ends, strict=True)):
        if merged and s - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], int(e))
        else:
            merged.append([int(s), int(e)])
    return merged


def _table(segments: list[list[int]], p: np.ndarray) -> pd.DataFrame:
    rows = [(s, e, float(p[s:e].mean())) for s, e in segments]
    return pd.DataFrame(rows, columns=COLUMNS).astype(
        {"start_frame": np.int64, "end_frame": np.int64, "score": np.float64}
    )


def _at_threshold(cfg: dict, t: float) -> dict:
    """``cfg`` with the on-threshold ``t`` and the off-threshold in the configured ratio."""
    ratio = cfg["off_threshold"] / cfg["on_threshold"] if cfg["on_threshold"] > 0 else 1.0
    return {**cfg, "on_threshold": float(t), "off_threshold": float(t) * min(1.0, ratio)}


def propose(
    p_class: np.ndarray, fps: float, cfg: dict, thresholds: dict[int, float] | None = None
) -> pd.DataFrame:
    """A session's proposals: the union of every behavior's proposals from its own
    probability column at its threshold (``{class code: on-threshold}``), segments closer
    than ``merge_gap_s`` merged; scored by the mean ``p_action`` (1 - p_other). Without
    thresholds: ``make_proposals`` of ``p_action`` at the configured thresholds."""
    cfg = {**DEFAULTS, **cfg}
    p = np.asarray(p_class, np.float32)
    p_action = 1.0 - p[:, 0] if p.ndim == 2 and p.shape[1] else np.zeros(len(p), np.float32)
    if not thresholds:
        return make_proposals(p_action, fps, cfg)
    starts, ends = [], []
    for c, t in thresholds.items():
        one = make_proposals(p[:, int(c)], fps, _at_threshold(cfg, t))
        starts += one.start_frame.tolist()
        ends += one.end_frame.tolist()
    return _table(_merge(starts, ends, round(cfg["merge_gap_s"] * fps)), p_action)


THRESHOLD_GRID = np.round(np.arange(0.02, 0.991, 0.02), 2)
TARGET_GRID = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)


def tune_thresholds(
    p_class: list[np.ndarray],
    labels: list[np.ndarray],
    fps: list[float],
    cfg: dict,
    behaviors: list[str],
) -> dict:
    """Per-behavior proposal thresholds reaching ``cfg["target_recall"]`` of that behavior's
    frames at the least coverage, on validation predictions ``p_class`` (per session, at
    session frames) with their ``labels``.

    Returns ``{"target_recall", "thresholds": {code: t}, "behaviors": {name: {threshold,
    recall, coverage}}, "recall", "coverage", "clip_coverage"`` (of the union, all action
    frames), ``"curves"`` (per behavior: ``threshold``, ``recall``, ``coverage`` arrays over
    ``THRESHOLD_GRID``) and ``"curve"`` (the union's ``target``, ``recall``, ``coverage``,
    ``clip_coverage`` when the thresholds are chosen for each of ``TARGET_GRID``)}``."""
    cfg = {**DEFAULTS, **cfg}
    target = float(cfg["target_recall"])
    n_total = sum(len(y) for y in labels)
    curves, chosen, per = {}, {}, {}
    for c, name in enumerate(behaviors, start=1):
        support = sum(int(np.sum(y == c)) for y in labels)
        if not support:
            continue
        rec, cov = [], []
        for t in THRESHOLD_GRID:
            hit = cover = 0
            for p, y, f in zip(p_class, labels, fps, strict=True):
                m = covered(make_proposals(p[:, c], f, _at_threshold(cfg, t)), len(y))
                hit += int(np.sum(m & (y == c)))
                cover += int(m.sum())
            rec.append(hit / support)
            cov.append(cover / max(1, n_total))
        rec, cov = np.asarray(rec), np.asarray(cov)
        curves[name] = {"threshold": THRESHOLD_GRID.tolist(), "recall": rec.tolist()}
        curves[name]["coverage"] = cov.tolist()
        k = _pick(rec, cov, target)
        chosen[c] = float(THRESHOLD_GRID[k])
        per[name] = {"threshold": chosen[c], "recall": float(rec[k]), "coverage": float(cov[k])}

    def union(thr: dict[int, float]) -> tuple[float, float, float]:
        hit = act = cover = clip = 0
        for p, y, f in zip(p_class, labels, fps, strict=True):
            props = propose(p, f, cfg, thr) if thr else _table([], np.zeros(0))
            m = covered(props, len(y))
            hit += int(np.sum(m & (y > 0)))
            act += int(np.sum(y > 0))
            cover += int(m.sum())
            if "clip_seconds" in cfg and len(props):
                clip += int(
                    covered(clip_windows(props, len(y), f, cfg["clip_seconds"]), len(y)).sum()
                )
        n = max(1, n_total)
        return (hit / act if act else float("nan")), cover / n, clip / n

    curve = {"target": [], "recall": [], "coverage": [], "clip_coverage": []}
    for r in TARGET_GRID:
        thr = {
            c: float(
                THRESHOLD_GRID[_pick(np.asarray(curves[b]["recall"]), curves[b]["coverage"], r)]
            )
            for c, b in enumerate(behaviors, start=1)
            if b in curves
        }
        for key, v in zip(("recall", "coverage", "clip_coverage"), union(thr), strict=True):
            curve[key].append(v)
        curve["target"].append(r)
    rec, cov, clip = union(chosen)
    return {
        "target_recall": target,
        "thresholds": chosen,
        "behaviors": per,
        "recall": rec,
        "coverage": cov,
        "clip_coverage": clip,
        "curves": curves,
        "curve": curve,
    }


def _pick(recall: np.ndarray, coverage, target: float) -> int:
    """Index of the threshold of least coverage whose recall reaches ``target`` (the larger
    threshold on ties), else of the most recall."""
    recall, coverage = np.asarray(recall), np.asarray(coverage)
    ok = np.flatnonzero(recall >= target - 1e-12)
    if not len(ok):
        return int(np.flatnonzero(recall == recall.max()).max())
    return int(ok[coverage[ok] == coverage[ok].min()].max())


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
