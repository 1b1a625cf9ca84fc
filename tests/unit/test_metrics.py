"""Per-class metrics whose values are known by construction."""

import numpy as np
import pandas as pd

from ethoflow.metrics import (
    cohort_comparison,
    comparison_table,
    confusion,
    per_class_metrics,
    plot_confusion,
)

BEHAVIORS = ["attack", "freeze"]


def _truth():
    # 60 other, 30 attack, 10 freeze, 5 unlabelled
    return np.r_[np.zeros(60), np.ones(30), np.full(10, 2), np.full(5, -1)].astype(int)


def test_known_swaps_give_exact_f1(tmp_path):
    y = _truth()
    pred = y.copy()
    pred[60:66] = 0  # 6 attack frames called other
    pred[0:4] = 2  # 4 other frames called freeze
    pred[-5:] = 1  # unlabelled frames: ignored whatever is predicted
    m = per_class_metrics(y, pred, None, BEHAVIORS).set_index("behavior")
    # attack: tp 24, fp 0, fn 6
    assert m.loc["attack", "precision"] == 1.0
    assert m.loc["attack", "recall"] == 24 / 30
    assert np.isclose(m.loc["attack", "f1"], 2 * 24 / (24 + 30))
    # freeze: tp 10, fp 4
    assert np.isclose(m.loc["freeze", "f1"], 2 * 10 / (14 + 10))
    # other: tp 56, fp 6, fn 4
    assert np.isclose(m.loc["other", "f1"], 2 * 56 / (62 + 60))
    assert m.loc["other", "support"] == 60 and m.loc["attack", "support"] == 30
    assert np.isclose(m.loc["macro", "f1"], (48 / 54 + 20 / 24) / 2)
    assert np.isclose(m.loc["macro_all", "f1"], (48 / 54 + 20 / 24 + 112 / 122) / 3)
    cm = confusion(y, pred, 3)
    assert cm.sum() == 100
    np.testing.assert_array_equal(cm, [[56, 0, 4], [6, 24, 0], [0, 0, 10]])
    plot_confusion(cm, ["other", *BEHAVIORS], tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_average_precision_perfect_and_inverted_ranking():
    y = _truth()
    onehot = np.eye(3)[np.clip(y, 0, None)]
    m = per_class_metrics(y, y, onehot, BEHAVIORS).set_index("behavior")
    assert np.allclose(m.loc[["other", "attack", "freeze", "macro"], "ap"], 1.0)
    worst = per_class_metrics(y, y, 1 - onehot, BEHAVIORS).set_index("behavior")
    # every freeze frame scored below every other frame: the only threshold that finds them
    # finds all 100 labelled frames, so AP is the prevalence 10/100
    assert np.isclose(worst.loc["freeze", "ap"], 0.1)
    # a graded ranking with freeze frames at ranks 1, 3, 5, ..., 19: AP = mean(k / (2k - 1))
    score = np.zeros_like(onehot)
    order = np.r_[np.flatnonzero(y == 2), np.flatnonzero((y >= 0) & (y != 2))]
    rank = np.empty(len(order), int)
    rank[np.r_[np.arange(0, 20, 2), np.arange(1, 20, 2), np.arange(20, 100)]] = order
    score[rank, 2] = np.linspace(1, 0, len(rank))
    graded = per_class_metrics(y, y, score, BEHAVIORS).set_index("behavior")
    k = np.arange(1, 11)
    assert np.isclose(graded.loc["freeze", "ap"], np.mean(k / (2 * k - 1)))


def test_comparison_table_one_row_per_mode():
    y = _truth()
    bad = np.where(y == 2, 0, y)  # freeze never found
    tables = {
        "pose": per_class_metrics(y, bad, None, BEHAVIORS),
        "linear": per_class_metrics(y, y, None, BEHAVIORS),
    }
    t = comparison_table(tables).set_index("mode")
    assert list(t.index) == ["pose", "linear"]
    assert t.loc["linear", "macro_f1"] == 1.0
    assert np.isclose(t.loc["pose", "macro_f1"], 0.5)
    assert t.loc["pose", "f1_freeze"] == 0.0
    assert isinstance(t, pd.DataFrame)


def test_cohort_comparison_adds_stage1_rows():
    y = _truth()
    tables = {("rig", "pose"): per_class_metrics(y, y, None, BEHAVIORS)}
    s1 = pd.DataFrame(
        {
            "table": ["localization", "per_class"],
            "f1": [0.8, 0.1],
            "ap": [0.9, 0.2],
            "proposal_recall": [0.95, np.nan],
            "coverage": [0.3, np.nan],
        }
    )
    t = cohort_comparison(tables, {"rig": s1})
    assert list(t.columns[:4]) == ["setup", "mode", "macro_f1", "mAP"]
    assert t["mode"].tolist() == ["pose", "stage1 localization"]
    row = t.iloc[1]
    assert (row.macro_f1, row.mAP, row.proposal_recall, row.coverage) == (0.8, 0.9, 0.95, 0.3)
    assert t.iloc[0].macro_f1 == 1.0
