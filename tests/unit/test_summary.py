"""Time budgets, bouts and latencies on hand-made label vectors."""

import numpy as np

from ethoflow.summary import behavior_summary, cohort_summary, plot_group_comparison

BEHAVIORS = ["groom", "freeze", "rear"]


def test_bouts_latency_and_never_seen():
    # fps 2: groom bouts of 4 and 2 frames starting at frames 3 and 10; freeze 1 frame at 14
    y = np.zeros(20, int)
    y[3:7] = 1
    y[10:12] = 1
    y[14] = 2
    s = behavior_summary(y, 2.0, BEHAVIORS).set_index("behavior")
    assert s.loc["groom", "bouts"] == 2
    assert s.loc["groom", "seconds"] == 3.0
    assert s.loc["groom", "fraction"] == 6 / 20
    assert s.loc["groom", "mean_bout_s"] == 1.5
    assert s.loc["groom", "latency_s"] == 1.5
    assert s.loc["freeze", "bouts"] == 1 and s.loc["freeze", "latency_s"] == 7.0
    assert s.loc["rear", "bouts"] == 0 and s.loc["rear", "seconds"] == 0
    assert np.isnan(s.loc["rear", "latency_s"]) and np.isnan(s.loc["rear", "mean_bout_s"])


def test_bout_at_the_very_start_and_end():
    y = np.array([3, 3, 0, 0, 3])
    s = behavior_summary(y, 1.0, BEHAVIORS).set_index("behavior")
    assert s.loc["rear", "bouts"] == 2 and s.loc["rear", "latency_s"] == 0.0
    assert s.loc["rear", "mean_bout_s"] == 1.5


def test_cohort_summary_and_group_plot(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        group = "ctrl" if i < 2 else "drug"
        y = rng.integers(0, 4, 300)
        rows.append(
            {
                "subject": f"m{i}",
                "session": "s1",
                "setup": "rig",
                "group": group,
                "labels": y,
                "fps": 30.0,
                "behaviors": BEHAVIORS,
            }
        )
    df = cohort_summary(rows)
    assert len(df) == 4 * len(BEHAVIORS)
    assert set(df.group) == {"ctrl", "drug"}
    one = df[(df.subject == "m2") & (df.behavior == "freeze")].iloc[0]
    assert one.seconds == np.sum(rows[2]["labels"] == 2) / 30.0
    df["setup"] = "rig"
    plot_group_comparison(df, tmp_path / "groups.png")
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"
