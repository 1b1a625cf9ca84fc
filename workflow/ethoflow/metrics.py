"""Evaluation against per-frame labels: per-class metrics, confusion, comparison table."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .vocab import BACKGROUND, classes


def per_class_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray | None, behaviors: list[str]
) -> pd.DataFrame:
    """Precision, recall, F1, AP and support per class (``other`` included), plus macro rows.

    Frames labelled -1 are ignored. ``macro`` averages the behaviors (not ``other``) present
    in the labels; ``macro_all`` includes ``other``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    keep = y_true >= 0
    y_true, y_pred = y_true[keep], y_pred[keep]
    probs = None if probs is None else np.asarray(probs)[keep]
    rows = []
    for c, name in enumerate(classes(behaviors)):
        t, p = y_true == c, y_pred == c
        tp = float(np.sum(t & p))
        prec = tp / p.sum() if p.sum() else (np.nan if not t.sum() else 0.0)
        rec = tp / t.sum() if t.sum() else np.nan
        f1 = 2 * tp / (p.sum() + t.sum()) if (p.sum() + t.sum()) else np.nan
        ap = np.nan
        if probs is not None and 0 < t.sum() < len(t):
            from sklearn.metrics import average_precision_score  # lazy: ~1 s of start-up

            ap = float(average_precision_score(t, probs[:, c]))
        rows.append(
            {
                "behavior": name,
                "precision": prec,
                "recall": rec,
                "f1": f1,
                "ap": ap,
                "support": int(t.sum()),
            }
        )
    df = pd.DataFrame(rows)
    present = df[(df.support > 0) & (df.behavior != BACKGROUND)]
    allp = df[df.support > 0]
    for name, part in (("macro", present), ("macro_all", allp)):
        df.loc[len(df)] = {
            "behavior": name,
            "precision": part.precision.mean(),
            "recall": part.recall.mean(),
            "f1": part.f1.mean(),
            "ap": part.ap.mean(),
            "support": int(part.support.sum()),
        }
    return df


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    keep = y_true >= 0
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (y_true[keep], y_pred[keep]), 1)
    return cm


def plot_confusion(cm: np.ndarray, names: list[str], path: str | os.PathLike, title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.1 * len(names) + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{cm[i, j]}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("labelled")
    ax.set_title(title or "confusion (rows normalised)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def comparison_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per mode: macro F1 and mAP over behaviors, and F1 per behavior."""
    rows = []
    for mode, t in tables.items():
        t = t.set_index("behavior")
        row = {"mode": mode, "macro_f1": t.loc["macro", "f1"], "mAP": t.loc["macro", "ap"]}
        for b in t.index:
            if b not in ("macro", "macro_all"):
                row[f"f1_{b}"] = t.loc[b, "f1"]
        rows.append(row)
    return pd.DataFrame(rows)


def cohort_comparison(
    mode_tables: dict[tuple[str, str], pd.DataFrame], stage1_tables: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """The seed experiment's table: one row per setup x mode (``comparison_table``), then
    one ``stage1 localization`` row per setup (action vs other, proposal recall, coverage)."""
    by_setup: dict[str, dict] = {}
    for (setup, mode), table in mode_tables.items():
        by_setup.setdefault(setup, {})[mode] = table
    rows = [comparison_table(tables).assign(setup=setup) for setup, tables in by_setup.items()]
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    for setup, s1 in stage1_tables.items():
        loc = s1[s1["table"] == "localization"].iloc[0]
        row = {
            "mode": "stage1 localization",
            "setup": setup,
            "macro_f1": loc["f1"],
            "mAP": loc["ap"],
            "proposal_recall": loc["proposal_recall"],
            "coverage": loc["coverage"],
        }
        out = pd.concat([out, pd.DataFrame([row])], ignore_index=True)
    first = ["setup", "mode", "macro_f1", "mAP"]
    return out[first + [c for c in out.columns if c not in first]]
