"""A GPU budget for stage 2: which proposed clips go to the VLM.

With ``vlm.budget_gpu_hours`` set, the clips of a whole cohort compete for one budget: choose
the clips that cover the most expected action frames, i.e. the stage-1 probability mass
``sum p_action[f]`` over the frames ``f`` inside at least one chosen clip (overlapping clips
count a frame once), with ``sum chosen x seconds_per_clip <= budget``. This is a budgeted
maximum coverage problem, solved exactly as an integer program with PuLP (CBC):

    maximize  sum_s w_s y_s
    s.t.      y_s <= sum_{c covers s} x_c     for every segment s
              sum_c cost x_c <= budget
              x_c in {0, 1},  0 <= y_s <= 1

Frames are aggregated into *segments*, the pieces between consecutive clip boundaries of a
session: every frame of a segment is covered by the same clips, so ``w_s`` is the segment's
p_action mass and the problem has at most ``2 N`` coverage variables for ``N`` clips.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def _windows(w) -> np.ndarray:
    """``[N, 2]`` int64 (start, end exclusive) of a clip_windows frame or an array."""
    if hasattr(w, "columns"):
        w = w[["start_frame", "end_frame"]].to_numpy()
    return np.asarray(w, np.int64).reshape(-1, 2)


def segments(windows, p_action) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Pieces of a session between clip boundaries that lie inside at least one clip.

    Returns ``bounds [S, 2]`` (start, end exclusive), ``mass [S]`` (sum of p_action over the
    piece) and, per piece, the indices of the clips covering it.
    """
    w = _windows(windows)
    p = np.asarray(p_action, np.float64)
    n = len(p)
    w = np.clip(w, 0, n)
    if not len(w):
        return np.zeros((0, 2), np.int64), np.zeros(0), []
    points = np.unique(w.ravel())
    cum = np.concatenate([[0.0], np.cumsum(p)])
    covers: list[list[int]] = [[] for _ in range(len(points) - 1)]
    for c, (s, e) in enumerate(w):
        for j in range(np.searchsorted(points, s), np.searchsorted(points, e)):
            covers[j].append(c)
    keep = [j for j, cov in enumerate(covers) if cov]
    bounds = np.stack([points[:-1], points[1:]], 1)[keep]
    mass = cum[bounds[:, 1]] - cum[bounds[:, 0]]
    return bounds, mass, [np.asarray(covers[j], np.int64) for j in keep]


def covered_mass(windows, p_action, mask=None) -> float:
    """Stage-1 mass of the frames inside at least one selected clip (all clips by default)."""
    w = _windows(windows)
    covered = np.zeros(len(p_action), bool)
    for s, e in w if mask is None else w[np.asarray(mask, bool)]:
        covered[max(0, s) : max(0, e)] = True
    return float(np.asarray(p_action, np.float64)[covered].sum())


def select_clips(
    windows_per_session: Sequence,
    p_action_per_session: Sequence,
    seconds_per_clip: float,
    budget_seconds: float | None,
    time_limit: float = 120.0,
) -> list[np.ndarray]:
    """Boolean masks (one per session, one entry per clip) of the clips to send to the VLM.

    ``budget_seconds`` None or infinite, or enough for every clip: every clip. Otherwise the
    optimal subset (within CBC's ``time_limit`` seconds; the best found if it runs out) with no
    redundant clip: dropping any chosen clip would uncover some mass.
    """
    wins = [_windows(w) for w in windows_per_session]
    if len(wins) != len(p_action_per_session):
        raise ValueError("one p_action array per session of windows")
    if seconds_per_clip <= 0:
        raise ValueError("seconds_per_clip must be positive")
    n_total = sum(len(w) for w in wins)
    if budget_seconds is None or n_total * seconds_per_clip <= budget_seconds:
        return [np.ones(len(w), bool) for w in wins]
    masks = [np.zeros(len(w), bool) for w in wins]
    max_clips = math.floor(budget_seconds / seconds_per_clip + 1e-9)
    if max_clips <= 0:
        return masks
    segs = [segments(w, p) for w, p in zip(wins, p_action_per_session, strict=True)]
    # only clips that cover some positive mass can be worth their cost
    pieces = [
        (i, m, cov)
        for i, (_, mass, covs) in enumerate(segs)
        for m, cov in zip(mass, covs, strict=True)
        if m > 0
    ]
    useful = sorted({(i, int(c)) for i, _, cov in pieces for c in cov})
    if not useful:
        return masks
    if len(useful) <= max_clips:
        chosen = set(useful)
    else:
        chosen = _solve(pieces, useful, max_clips, time_limit)
    chosen = _prune(chosen, pieces)
    for i, c in chosen:
        masks[i][c] = True
    return masks


def _solver(time_limit: float):
    """CBC: an installed ``cbc`` (PuLP 4's way), else the one bundled with PuLP."""
    import pulp

    coin = pulp.COIN_CMD(msg=False, timeLimit=time_limit)
    if coin.available():
        return coin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)


def _solve(pieces, useful, max_clips: int, time_limit: float) -> set[tuple[int, int]]:
    import pulp

    prob = pulp.LpProblem("clip_budget", pulp.LpMaximize)
    if hasattr(prob, "add_variable"):  # PuLP >= 3.3
        var = prob.add_variable
    else:

        def var(name, lowBound=None, upBound=None, cat="Continuous"):
            return pulp.LpVariable(name, lowBound, upBound, cat=cat)

    x = {ic: var(f"x_{ic[0]}_{ic[1]}", cat="Binary") for ic in useful}
    y = [var(f"y_{j}", 0, 1) for j in range(len(pieces))]
    prob += pulp.lpSum(float(m) * y[j] for j, (_, m, _) in enumerate(pieces))
    for j, (i, _, cov) in enumerate(pieces):
        prob += y[j] <= pulp.lpSum(x[(i, int(c))] for c in cov)
    # equal cost per clip: the budget is a number of clips
    prob += pulp.lpSum(x.values()) <= max_clips
    prob.solve(_solver(time_limit))
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        raise RuntimeError(f"clip budget: CBC found no solution ({pulp.LpStatus[prob.status]})")
    return {ic for ic, v in x.items() if (v.value() or 0) > 0.5}


def _prune(chosen: set, pieces) -> set:
    """Drop chosen clips whose every positive piece another chosen clip also covers."""
    chosen = set(chosen)
    by_clip: dict[tuple[int, int], list[int]] = {}
    for j, (i, _, cov) in enumerate(pieces):
        for c in cov:
            by_clip.setdefault((i, int(c)), []).append(j)
    count = np.zeros(len(pieces), np.int64)
    for ic in chosen:
        count[by_clip.get(ic, [])] += 1
    for ic in sorted(chosen):
        js = by_clip.get(ic, [])
        if np.all(count[js] >= 2):
            chosen.discard(ic)
            count[js] -= 1
    return chosen


def tradeoff(
    windows_per_session: Sequence,
    p_action_per_session: Sequence,
    seconds_per_clip: float,
    budget_seconds: float | None,
    masks: list[np.ndarray] | None = None,
) -> dict[str, tuple[float, float]]:
    """Recall given up for the hours saved, for the report.

    ``{"without_budget": (covered, gpu_hours), "with_budget": (covered, gpu_hours)}``: the
    fraction of the cohort's expected action frames (its total p_action mass, all frames)
    inside the clips sent to the VLM, and the GPU hours those clips cost. ``masks`` from
    ``select_clips`` (computed here when not given).
    """
    if masks is None:
        masks = select_clips(
            windows_per_session, p_action_per_session, seconds_per_clip, budget_seconds
        )
    total = float(sum(np.asarray(p, np.float64).sum() for p in p_action_per_session))

    def side(ms):
        mass = sum(
            covered_mass(w, p, m)
            for w, p, m in zip(windows_per_session, p_action_per_session, ms, strict=True)
        )
        n = sum(int(np.sum(m)) for m in ms)
        return (mass / total if total > 0 else float("nan"), n * seconds_per_clip / 3600)

    every = [np.ones(len(_windows(w)), bool) for w in windows_per_session]
    return {"without_budget": side(every), "with_budget": side(masks)}


def cohort_inputs(cfg: dict, keys: Sequence[str], results_dir="results"):
    """Clip windows (session frames) and p_action of the given sessions from stage 1:
    ``results/stage1/{k}.h5`` and ``results/proposals/{k}.tsv``."""
    from pathlib import Path

    from . import results
    from .estimate import proposal_windows

    clip_seconds = float(cfg["proposals"]["clip_seconds"])
    windows, p_action = [], []
    for k in keys:
        st = results.read_stage1(Path(results_dir) / "stage1" / f"{k}.h5")
        prop = Path(results_dir) / "proposals" / f"{k}.tsv"
        windows.append(proposal_windows(prop, len(st["p_action"]), st["fps"], clip_seconds))
        p_action.append(st["p_action"])
    return windows, p_action
