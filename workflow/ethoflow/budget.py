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
import pandas as pd

from .results import SELECTION_COLUMNS


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

    def side(ms):
        _, recall, n = _coverage(windows_per_session, p_action_per_session, ms)
        return (recall, n * seconds_per_clip / 3600)

    every = [np.ones(len(_windows(w)), bool) for w in windows_per_session]
    return {"without_budget": side(every), "with_budget": side(masks)}


def _coverage(windows_per_session, p_action_per_session, masks) -> tuple[float, float, int]:
    """``(covered mass, recall, clips)`` of a selection: the stage-1 mass inside at least one
    chosen clip, that over the cohort's whole p_action mass (all frames), the clips chosen."""
    total = float(sum(np.asarray(p, np.float64).sum() for p in p_action_per_session))
    mass = sum(
        covered_mass(w, p, m)
        for w, p, m in zip(windows_per_session, p_action_per_session, masks, strict=True)
    )
    n = sum(int(np.sum(m)) for m in masks)
    return mass, (mass / total if total > 0 else float("nan")), n


def choose_clips(
    windows_per_session, p_action_per_session, seconds_per_clip, budget_seconds, time_limit=120.0
) -> list[np.ndarray]:
    """``select_clips``, except that every clip is chosen when a clip costs nothing (a config
    with no VLM task)."""
    if seconds_per_clip <= 0:
        return [np.ones(len(_windows(w)), bool) for w in windows_per_session]
    return select_clips(
        windows_per_session, p_action_per_session, seconds_per_clip, budget_seconds, time_limit
    )


def session_inputs(stage1_path, proposals_path, clip_seconds: float):
    """``(windows, p_action)`` of one session: the clip windows ``cut_clips`` cuts from its
    proposals (session frames, as ``estimate.proposal_windows``) and its stage-1 p_action."""
    from . import results
    from .estimate import proposal_windows

    st = results.read_stage1(stage1_path)
    n = len(st["p_action"])
    return proposal_windows(proposals_path, n, st["fps"], float(clip_seconds)), st["p_action"]


def sessions_inputs(stage1_paths, proposals_paths, clip_seconds: float):
    """``(windows per session, p_action per session)`` of ``session_inputs``, session by
    session."""
    pairs = [
        session_inputs(s1, prop, clip_seconds)
        for s1, prop in zip(stage1_paths, proposals_paths, strict=True)
    ]
    return [w for w, _ in pairs], [p for _, p in pairs]


def cohort_inputs(cfg: dict, keys: Sequence[str], results_dir="results"):
    """Clip windows (session frames) and p_action of the given sessions from stage 1:
    ``results/stage1/{k}.h5`` and ``results/proposals/{k}.tsv``."""
    from pathlib import Path

    root = Path(results_dir)
    return sessions_inputs(
        [root / "stage1" / f"{k}.h5" for k in keys],
        [root / "proposals" / f"{k}.tsv" for k in keys],
        cfg["proposals"]["clip_seconds"],
    )


# ---------------------------------------------------------------- the workflow's tables
TRADEOFF_COLUMNS = [
    "budget",
    "budget_gpu_hours",
    "clips",
    "gpu_hours",
    "covered_mass",
    "recall",
    "recall_given_up",
    "hours_saved",
]
TRADEOFF_FRACTIONS = (0.75, 0.5, 0.25)
"""Budgets of the trade-off table besides the chosen one: fractions of the hours of all
proposed clips."""


def selection_table(keys: Sequence[str], windows_per_session, p_action_per_session, masks):
    """One row per proposed clip of the cohort (``SELECTION_COLUMNS``): its session, index
    among the session's clip windows, window (session frames, end exclusive), ``chosen``
    (0/1) and ``mass``, the stage-1 p_action summed over the clip's own frames."""
    rows = []
    for k, w, p, m in zip(keys, windows_per_session, p_action_per_session, masks, strict=True):
        subject, session = str(k).split("/", 1)
        win = _windows(w)
        cum = np.concatenate([[0.0], np.cumsum(np.asarray(p, np.float64))])
        n = len(cum) - 1
        for c, (s, e) in enumerate(win):
            s_, e_ = min(max(int(s), 0), n), min(max(int(e), 0), n)
            mass = float(cum[e_] - cum[s_]) if e_ > s_ else 0.0
            rows.append((subject, session, c, int(s), int(e), int(bool(m[c])), mass))
    df = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    return df.astype({"clip": np.int64, "start_frame": np.int64, "end_frame": np.int64})


def tradeoff_table(
    windows_per_session,
    p_action_per_session,
    seconds_per_clip: float,
    budget_seconds: float | None,
    masks: list[np.ndarray] | None = None,
    fractions: Sequence[float] = TRADEOFF_FRACTIONS,
    time_limit: float = 120.0,
) -> pd.DataFrame:
    """Recall given up for the hours saved (``TRADEOFF_COLUMNS``), one row per budget:
    ``none`` (every proposed clip), ``chosen`` (``budget_seconds``; ``masks`` its selection
    when already solved) and each fraction of the hours of every clip (a solve each).
    ``recall``: the covered stage-1 mass over the cohort's whole p_action mass (all frames,
    as ``tradeoff``); ``recall_given_up`` and ``hours_saved`` are relative to ``none``."""
    n_all = sum(len(_windows(w)) for w in windows_per_session)
    all_hours = n_all * seconds_per_clip / 3600

    def row(name, budget_h, ms):
        mass, recall, n = _coverage(windows_per_session, p_action_per_session, ms)
        return {
            "budget": name,
            "budget_gpu_hours": budget_h,
            "clips": n,
            "gpu_hours": n * seconds_per_clip / 3600,
            "covered_mass": mass,
            "recall": recall,
        }

    def solve(budget_s):
        return choose_clips(
            windows_per_session, p_action_per_session, seconds_per_clip, budget_s, time_limit
        )

    every = [np.ones(len(_windows(w)), bool) for w in windows_per_session]
    rows = [row("none", float("nan"), every)]
    if masks is None:
        masks = solve(budget_seconds)
    chosen_h = float("nan") if budget_seconds is None else budget_seconds / 3600
    rows.append(row("chosen", chosen_h, masks))
    for f in fractions:
        rows.append(row(f"{f:.0%} of all", f * all_hours, solve(f * all_hours * 3600)))
    df = pd.DataFrame(rows)
    df["recall_given_up"] = df["recall"].iloc[0] - df["recall"]
    df["hours_saved"] = df["gpu_hours"].iloc[0] - df["gpu_hours"]
    return df[TRADEOFF_COLUMNS]


def chosen_by_session(selection: pd.DataFrame) -> dict[str, list[list[int]]]:
    """``{subject/session: [[start_frame, end_frame], ...]}`` (session frames, clip order) of
    the chosen clips of every session of a selection table (one pass: the workflow calls it
    once per selection file for every cut_clips job)."""
    out: dict[str, list[list[int]]] = {}
    df = selection.sort_values(["subject", "session", "clip"], kind="stable")
    for subject, session, chosen, s, e in zip(
        df.subject.astype(str),
        df.session.astype(str),
        df.chosen.astype(int),
        df.start_frame.astype(int),
        df.end_frame.astype(int),
        strict=True,
    ):
        windows = out.setdefault(f"{subject}/{session}", [])
        if chosen:
            windows.append([int(s), int(e)])
    return out


def keep_windows(windows: pd.DataFrame, selected) -> pd.DataFrame:
    """The rows of a session's clip windows whose (start, end) is in ``selected``; every
    selected window must be one of them (else the selection is not of these proposals)."""
    want = {(int(s), int(e)) for s, e in selected}
    have = list(zip(windows.start_frame.astype(int), windows.end_frame.astype(int), strict=True))
    missing = want - set(have)
    if missing:
        raise ValueError(
            f"the budget selection names clip windows {sorted(missing)[:5]} that the "
            "session's proposals do not give (a selection of other proposals)"
        )
    keep = np.array([w in want for w in have], bool)
    return windows[keep].reset_index(drop=True)
