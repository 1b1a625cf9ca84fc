"""The GPU budget in the workflow's steps: the cohort selection (rule clip_budget) against a
brute-force optimum on a small hand-made cohort, the trade-off table against hand sums, and
cut_clips cutting exactly the chosen windows of its session."""

import itertools

import h5py
import numpy as np
import pandas as pd
import pytest

from ethoflow import budget, results
from ethoflow.report_html import budget_section
from ethoflow.steps.clips import clip_budget, cut_clips

MABE = "tests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4"
FPS = 30.0
CLIP_S = 1.0  # 30-frame clips: a proposal of <= 30 frames gives exactly its own window
COST = 4.0  # GPU seconds per clip
# session a/1: clips A [0,30), B [18,48), C [36,66); p = 1 on [0,30) and [36,66), 1.5 on
# [30,36): own masses A 30, B 12 + 9 + 12 = 33, C 30; A+C 60, A+B = B+C 51.
# session b/2: one clip S [60,90) of mass 45 (p = 1.5 there).
WINDOWS = {"a/1": [(0, 30), (18, 48), (36, 66)], "b/2": [(60, 90)]}
P1 = np.zeros(300)
P1[0:30] = 1.0
P1[30:36] = 1.5
P1[36:66] = 1.0
P2 = np.zeros(300)
P2[60:90] = 1.5
P = {"a/1": P1, "b/2": P2}
TOTAL = P1.sum() + P2.sum()  # 69 + 45 = 114, every frame of it inside some clip


def _cohort(tmp_path, extra_failed=False):
    stage1, proposals, keys = [], [], []
    for k, wins in WINDOWS.items():
        s1 = tmp_path / f"s1_{k.replace('/', '_')}.h5"
        prop = tmp_path / f"prop_{k.replace('/', '_')}.tsv"
        p = P[k]
        results.write_stage1(s1, p, np.stack([1 - p, p], 1), FPS, "m")
        rows = pd.DataFrame(wins, columns=["start_frame", "end_frame"]).assign(score=0.9)
        results.write_proposals(rows, prop)
        stage1.append(str(s1))
        proposals.append(str(prop))
        keys.append(k)
    if extra_failed:  # a session whose stage 1 failed: left out of the selection
        for path in (tmp_path / "s1_bad.h5", tmp_path / "prop_bad.tsv"):
            results.write_failed(path, "localize: bad.csv: broken")
        stage1.append(str(tmp_path / "s1_bad.h5"))
        proposals.append(str(tmp_path / "prop_bad.tsv"))
        keys.append("c/3")
    return stage1, proposals, keys


def _brute_force(k_clips):
    """Every best subset of at most k clips, by covered frames counted directly."""
    clips = [(key, w) for key, wins in WINDOWS.items() for w in wins]
    best, arg = -1.0, []
    for r in range(k_clips + 1):
        for subset in itertools.combinations(clips, r):
            mass = 0.0
            for key in WINDOWS:
                frames = set()
                for kk, (s, e) in subset:
                    if kk == key:
                        frames |= set(range(s, e))
                mass += sum(P[key][f] for f in frames)
            if mass > best + 1e-9:
                best, arg = mass, [subset]
            elif abs(mass - best) <= 1e-9:
                arg.append(subset)
    return best, arg


def _run_budget(tmp_path, k_clips, **kw):
    stage1, proposals, keys = _cohort(tmp_path, **kw)
    sel, trade = tmp_path / "selection.tsv", tmp_path / "tradeoff.tsv"
    clip_budget(
        stage1,
        proposals,
        str(sel),
        str(trade),
        keys,
        budget_gpu_hours=k_clips * COST / 3600,  # fits exactly k clips
        seconds_per_clip=COST,
        clip_seconds=CLIP_S,
    )
    return results.read_selection(sel), results.read_table(trade)


@pytest.mark.parametrize(
    ("k_clips", "expected"),
    [
        (1, {"b/2": [[60, 90]]}),  # S (45) beats B (33)
        (2, {"a/1": [[18, 48]], "b/2": [[60, 90]]}),  # B + S = 78 > A+S = 75 > A+C = 60
        (3, {"a/1": [[0, 30], [36, 66]], "b/2": [[60, 90]]}),  # A + C + S = 105 > A+B+S 96
    ],
)
def test_selection_is_the_brute_force_optimum_per_session(tmp_path, k_clips, expected):
    best, args = _brute_force(k_clips)
    assert len(args) == 1, "the instance has one optimum"
    by_hand = {}
    for key, w in args[0]:
        by_hand.setdefault(key, []).append(list(w))
    assert by_hand == expected
    sel, _ = _run_budget(tmp_path, k_clips)
    by_session = budget.chosen_by_session(sel)
    for key in WINDOWS:
        assert by_session[key] == sorted(expected.get(key, []))
    assert len(sel) == 4 and sel["chosen"].sum() == k_clips
    # each clip's own mass, summed by hand
    assert sel.set_index(["subject", "clip"])["mass"].to_dict() == pytest.approx(
        {("a", 0): 30, ("a", 1): 33, ("a", 2): 30, ("b", 0): 45}
    )
    assert best == pytest.approx({1: 45, 2: 78, 3: 105}[k_clips])


def approx(v):
    return pytest.approx(v, rel=1e-5)  # the table is written with 6 significant digits


def test_tradeoff_table_recall_given_up_for_hours_saved(tmp_path):
    _, trade = _run_budget(tmp_path, 2)
    rows = trade.set_index("budget")
    assert list(rows.index[:2]) == ["none", "chosen"]
    assert rows.loc["none", "clips"] == 4 and rows.loc["none", "recall"] == approx(1.0)
    assert rows.loc["none", "gpu_hours"] == approx(4 * COST / 3600)
    chosen = rows.loc["chosen"]
    assert chosen.clips == 2 and chosen.covered_mass == approx(78)
    assert chosen.recall == approx(78 / TOTAL)
    assert chosen.recall_given_up == approx(1 - 78 / TOTAL)
    assert chosen.hours_saved == approx(2 * COST / 3600)
    assert chosen.budget_gpu_hours == approx(2 * COST / 3600)
    # 75 % of the 4 clips' hours fits 3 clips (A + C + S = 105), 50 % two, 25 % one (S)
    assert rows.loc["75% of all", "covered_mass"] == approx(105)
    assert rows.loc["50% of all", "covered_mass"] == approx(78)
    assert rows.loc["25% of all", "covered_mass"] == approx(45)
    text = budget_section(trade)
    assert "2 of 4</b> clips" in text and f"{78 / TOTAL:.1%}" in text
    assert f"{1 - 78 / TOTAL:.1%}</b> given up" in text


def test_failed_sessions_are_left_out_of_the_selection(tmp_path):
    sel, _ = _run_budget(tmp_path, 2, extra_failed=True)
    assert set(sel["subject"]) == {"a", "b"}
    assert "c/3" not in budget.chosen_by_session(sel)


def _pose_h5(path, n_frames, offset):
    with h5py.File(path, "w") as f:
        f.create_dataset("keypoints", data=np.zeros((n_frames, 1, 1, 2), np.float32))
        f.attrs["fps"] = FPS
        f.attrs["frame_offset"] = offset


CLIPS_CFG = {"fps": 2.0, "frames_per_clip": 2, "size": 32, "fps_tolerance": 0.01}


def test_cut_clips_cuts_exactly_the_chosen_windows(tmp_path):
    sel, _ = _run_budget(tmp_path, 3)
    pose = tmp_path / "pose.h5"
    _pose_h5(pose, 300, offset=100)  # session frames + 100 = video frames
    prop = tmp_path / "prop_a_1.tsv"
    out_all, out_budget = tmp_path / "all.h5", tmp_path / "budget.h5"
    cut_clips(MABE, str(prop), str(pose), str(out_all), CLIPS_CFG, CLIP_S)
    chosen = budget.chosen_by_session(sel)["a/1"]
    assert chosen == [[0, 30], [36, 66]]
    cut_clips(
        MABE,
        str(prop),
        str(pose),
        str(out_budget),
        CLIPS_CFG,
        CLIP_S,
        selected=chosen,
    )
    every, kept = results.read_clips(out_all), results.read_clips(out_budget)
    assert every["start_frame"].tolist() == [100, 118, 136]
    assert kept["start_frame"].tolist() == [100, 136]
    assert kept["end_frame"].tolist() == [130, 166]
    # the same clips as the unbudgeted cut, frame for frame
    np.testing.assert_array_equal(kept["frame_index"], every["frame_index"][[0, 2]])
    np.testing.assert_array_equal(kept["frames"], every["frames"][[0, 2]])
    # no chosen clip: an empty clips file
    empty = tmp_path / "none.h5"
    cut_clips(MABE, str(prop), str(pose), str(empty), CLIPS_CFG, CLIP_S, selected=[])
    assert results.read_clips(empty, frames=False)["n_clips"] == 0


def test_a_selection_of_other_proposals_is_refused(tmp_path):
    windows = pd.DataFrame({"start_frame": [0, 18], "end_frame": [30, 48]})
    assert budget.keep_windows(windows, [[18, 48]]).start_frame.tolist() == [18]
    with pytest.raises(ValueError, match="do not give"):
        budget.keep_windows(windows, [[5, 35]])
