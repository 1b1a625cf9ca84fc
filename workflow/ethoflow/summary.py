"""Cohort summaries: time budget, bouts, bout length and latency per behavior."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .atomic import atomic_path


def behavior_summary(labels: np.ndarray, fps: float, behaviors: list[str]) -> pd.DataFrame:
    """Per behavior: seconds, fraction of frames, bouts, mean bout (s), latency to first (s)."""
    y = np.asarray(labels)
    n = len(y)
    rows = []
    for c, name in enumerate(behaviors, start=1):
        on = (y == c).astype(np.int8)
        d = np.diff(np.r_[0, on, 0])
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        rows.append(
            {
                "behavior": name,
                "seconds": on.sum() / fps,
                "fraction": on.sum() / n if n else np.nan,
                "bouts": len(starts),
                "mean_bout_s": float(np.mean(ends - starts) / fps) if len(starts) else np.nan,
                "latency_s": starts[0] / fps if len(starts) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def plot_group_comparison(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Fraction of time per behavior, one panel per setup, one bar group per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setups = sorted(df["setup"].unique())
    fig, axes = plt.subplots(1, len(setups), figsize=(4.5 * len(setups), 3.5), squeeze=False)
    for ax, setup in zip(axes[0], setups, strict=True):
        part = df[df.setup == setup]
        groups = sorted(part["group"].unique())
        behaviors = list(dict.fromkeys(part["behavior"]))
        width = 0.8 / max(1, len(groups))
        for gi, g in enumerate(groups):
            sub = part[part.group == g].groupby("behavior")["fraction"]
            mean = sub.mean().reindex(behaviors)
            err = sub.std().reindex(behaviors).fillna(0)
            x = np.arange(len(behaviors)) + gi * width
            ax.bar(
                x, mean, width, yerr=err, label=f"{g} (n={part[part.group == g].session.nunique()})"
            )
            pts = part[part.group == g]
            for bi, b in enumerate(behaviors):
                vals = pts[pts.behavior == b]["fraction"]
                ax.scatter(np.full(len(vals), x[bi]), vals, color="k", s=8, zorder=3)
        ax.set_xticks(np.arange(len(behaviors)) + 0.4 - width / 2, behaviors, rotation=30)
        ax.set_ylabel("fraction of time")
        ax.set_title(setup)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


SESSION_COLUMNS = ["subject", "session", "setup", "group"]


def cohort_summary(sessions: list[dict]) -> pd.DataFrame:
    """``behavior_summary`` of every session, stacked: one row per session x behavior.

    Each session is a dict with ``subject, session, setup, group`` (the sheet row),
    ``labels`` (codes ``[T]``), ``fps`` and ``behaviors`` (its setup's vocabulary).
    """
    parts = []
    for s in sessions:
        df = behavior_summary(s["labels"], s["fps"], s["behaviors"])
        for i, col in enumerate(SESSION_COLUMNS):
            df.insert(i, col, s[col])
        parts.append(df)
    cols = [*SESSION_COLUMNS, "behavior", "seconds", "fraction", "bouts"]
    cols += ["mean_bout_s", "latency_s"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


BOUT_COLUMNS = [*SESSION_COLUMNS, "mode", "behavior", "start_s", "stop_s", "duration_s"]


def bouts_table(sessions: list[dict]) -> pd.DataFrame:
    """Every bout of every session, one tidy row each: ``subject, session, setup, group, mode,
    behavior, start_s, stop_s, duration_s`` (sorted by subject, session, mode, start).

    Each session is a dict with ``subject, session, setup, group`` (the sheet row), ``mode``
    and ``events``: the ``behavior, start_s, stop_s`` table of ``results.read_events`` (a
    DataFrame, or the path of the events CSV).
    """
    parts = []
    for s in sessions:
        ev = s["events"]
        if not isinstance(ev, pd.DataFrame):
            from .results import read_events

            ev = read_events(ev)
        missing = [c for c in ("behavior", "start_s", "stop_s") if c not in ev]
        if missing:
            raise ValueError(f"events of {s['subject']}/{s['session']} lack columns {missing}")
        df = ev[["behavior", "start_s", "stop_s"]].copy()
        df["duration_s"] = df["stop_s"] - df["start_s"]
        for i, col in enumerate([*SESSION_COLUMNS, "mode"]):
            df.insert(i, col, s[col])
        parts.append(df)
    if not parts:
        return pd.DataFrame(columns=BOUT_COLUMNS)
    out = pd.concat(parts, ignore_index=True)[BOUT_COLUMNS]
    return out.sort_values(["subject", "session", "mode", "start_s"], kind="stable").reset_index(
        drop=True
    )
