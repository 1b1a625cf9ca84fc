"""Proposals: hysteresis, minimum duration, merging, padding, clip windows, evaluation."""

import numpy as np
import pandas as pd
import pytest

from ethoflow import proposals, results
from ethoflow.errors import InputError

RAW = {"smooth_s": 0.0, "on_threshold": 0.6, "off_threshold": 0.3}
RAW |= {"min_duration_s": 0.0, "merge_gap_s": 0.0, "pad_s": 0.0}


def test_empty_and_whole_video():
    none = proposals.make_proposals(np.zeros(500, np.float32), 50, RAW)
    assert list(none.columns) == ["start_frame", "end_frame", "score"] and len(none) == 0
    assert len(proposals.make_proposals(np.zeros(0, np.float32), 50, RAW)) == 0
    whole = proposals.make_proposals(np.full(500, 0.9, np.float32), 50, {**RAW, "pad_s": 1.0})
    assert whole[["start_frame", "end_frame"]].values.tolist() == [[0, 500]]
    assert whole.score.iloc[0] == pytest.approx(0.9)


def test_hysteresis_keeps_only_runs_that_reach_the_on_threshold():
    p = np.zeros(300, np.float32)
    p[20:60] = 0.4  # above off, never above on: dropped
    p[100:150] = 0.4
    p[120:125] = 0.9  # reaches on: the whole low-threshold run is kept
    out = proposals.make_proposals(p, 50, RAW)
    assert out[["start_frame", "end_frame"]].values.tolist() == [[100, 150]]
    assert out.score.iloc[0] == pytest.approx(p[100:150].mean())


def test_min_duration_merge_gap_and_padding():
    p = np.zeros(1000, np.float32)
    p[100:103] = 0.9  # 3 frames: shorter than 0.1 s at 50 fps
    p[300:350] = 0.9
    p[370:420] = 0.9  # 20-frame gap to the previous run
    p[700:760] = 0.9
    cfg = {**RAW, "min_duration_s": 0.1}
    assert len(proposals.make_proposals(p, 50, cfg)) == 3
    merged = proposals.make_proposals(p, 50, {**cfg, "merge_gap_s": 0.5})
    assert merged[["start_frame", "end_frame"]].values.tolist() == [[300, 420], [700, 760]]
    padded = proposals.make_proposals(p, 50, {**cfg, "merge_gap_s": 0.5, "pad_s": 0.2})
    assert padded[["start_frame", "end_frame"]].values.tolist() == [[290, 430], [690, 770]]
    # padding alone can close a gap: 20 frames minus 2 x 10 padding
    touching = proposals.make_proposals(p, 50, {**cfg, "pad_s": 0.2})
    assert touching[["start_frame", "end_frame"]].values.tolist()[0] == [290, 430]


def test_smoothing_removes_single_frame_spikes():
    rng = np.random.default_rng(0)
    p = (rng.random(2000) < 0.03).astype(np.float32)  # isolated spikes
    p[1000:1200] = 0.95
    out = proposals.make_proposals(p, 50, {**RAW, "smooth_s": 0.3})
    assert len(out) == 1 and out.start_frame.iloc[0] <= 1010 and out.end_frame.iloc[0] >= 1190


def test_clip_windows_cover_every_proposal_and_stay_in_the_video():
    props = pd.DataFrame(
        {"start_frame": [0, 400, 2000, 2950], "end_frame": [30, 1100, 2060, 3000], "score": 0.7}
    )
    clips = proposals.clip_windows(props, 3000, 50, clip_seconds=5.0)
    assert list(clips.columns) == ["start_frame", "end_frame", "score", "proposal"]
    assert ((clips.end_frame - clips.start_frame) == 250).all()
    assert (clips.start_frame >= 0).all() and (clips.end_frame <= 3000).all()
    for i, (s, e) in enumerate(zip(props.start_frame, props.end_frame, strict=True)):
        cov = proposals.covered(clips[clips.proposal == i], 3000)
        assert cov[s:e].all()
    assert (clips.proposal == 1).sum() == 3  # 700 frames -> ceil(700 / 250) clips
    short = clips[clips.proposal == 2].iloc[0]
    assert short.start_frame == 2030 - 125  # one centred clip
    tiny = proposals.clip_windows(props.iloc[:1], 100, 50, clip_seconds=5.0)
    assert tiny[["start_frame", "end_frame"]].values.tolist() == [[0, 100]]


def test_tsv_round_trip_and_bad_file(tmp_path):
    props = pd.DataFrame({"start_frame": [5, 40], "end_frame": [20, 90], "score": [0.5, 0.25]})
    results.write_proposals(props, tmp_path / "p.tsv")
    back = results.read_proposals(tmp_path / "p.tsv")
    pd.testing.assert_frame_equal(back, props, check_dtype=False)
    (tmp_path / "bad.tsv").write_text("start_frame\tend_frame\tscore\n10\t5\t0.1\n")
    with pytest.raises(InputError, match="bad.tsv"):
        results.read_proposals(tmp_path / "bad.tsv")
    (tmp_path / "cols.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match="columns"):
        results.read_proposals(tmp_path / "cols.tsv")


def test_evaluate_stage1_and_threshold_sweep():
    rng = np.random.default_rng(1)
    labels = np.zeros(3000, np.int64)
    labels[500:800] = 1
    labels[1500:1600] = 2
    labels[2900:] = -1  # unlabelled
    p_action = np.clip((labels > 0) * 0.8 + rng.normal(0, 0.15, 3000), 0, 1).astype(np.float32)
    p_class = np.full((3000, 3), 0.1, np.float32)
    p_class[np.arange(3000), np.maximum(labels, 0)] = 0.8
    props = proposals.make_proposals(p_action, 50, {})
    ev = proposals.stage1_metrics(p_action, p_class, labels, props, ["groom", "rear"])
    loc = ev["localization"].iloc[0]
    assert loc.f1 > 0.9 and loc.ap > 0.9 and loc.proposal_recall > 0.95
    assert 0.1 < loc.coverage < 0.25
    cls = ev["classes"].set_index("metric_of")
    assert list(cls.index) == ["other", "groom", "rear"]
    assert cls.loc["rear", "support"] == 100 and cls.loc["groom", "f1"] == pytest.approx(1.0)
    sweep = proposals.threshold_sweep(p_action, labels, 50, {}, [0.2, 0.5, 0.9, 0.99])
    assert len(sweep) == 4
    assert sweep.coverage.is_monotonic_decreasing
    assert sweep.proposal_recall.iloc[0] >= sweep.proposal_recall.iloc[-1]
    assert sweep.n_proposals.iloc[-1] == 0


def test_propose_is_the_union_of_the_behaviors_proposals():
    p = np.zeros((200, 3), np.float32)
    p[:, 0] = 1.0
    p[10:20, 1] = 0.9  # behavior 1
    p[24:30, 2] = 0.6  # behavior 2, 4 frames later: merged with 10:20 (gap 0.1 s = 5 frames)
    p[60:70, 2] = 0.6
    p[100:110, 2] = 0.4  # under behavior 2's threshold
    cfg = {**RAW, "merge_gap_s": 0.1}
    out = proposals.propose(p, 50, cfg, {1: 0.5, 2: 0.5})
    assert out[["start_frame", "end_frame"]].values.tolist() == [[10, 30], [60, 70]]
    # without thresholds: p_action = 1 - p_other at the fixed thresholds
    q = p.copy()
    q[10:20, 0] = 0.1
    fixed = proposals.propose(q, 50, cfg)
    assert fixed[["start_frame", "end_frame"]].values.tolist() == [[10, 20]]
    assert fixed.score.iloc[0] == pytest.approx(0.9)


def test_thresholds_reach_the_target_recall_at_the_least_coverage():
    """1,000 frames: behavior frames 100:200 at p 0.71 and 200:250 at p 0.41, a distractor
    at 300:400 with p 0.51. A threshold t covers a run where p > t (on = off here)."""
    p = np.zeros((1000, 2), np.float32)
    p[100:200, 1], p[200:250, 1], p[300:400, 1] = 0.71, 0.41, 0.51
    p[:, 0] = 1 - p[:, 1]
    y = np.zeros(1000, np.int64)
    y[100:250] = 1
    cfg = {**RAW, "on_threshold": 0.5, "off_threshold": 0.5, "clip_seconds": 1.0}
    # recall >= 0.95 needs the 0.41 frames: t = 0.40 covers 100:250 and 300:400
    tuned = proposals.tune_thresholds([p], [y], [50.0], {**cfg, "target_recall": 0.95}, ["b"])
    assert tuned["thresholds"] == {1: 0.4}
    assert tuned["behaviors"]["b"] == {"threshold": 0.4, "recall": 1.0, "coverage": 0.25}
    assert tuned["recall"] == 1.0 and tuned["coverage"] == 0.25
    # recall 0.6 is reached by 100:200 alone (100/150): t = 0.70, 10 % of the video
    low = proposals.tune_thresholds([p], [y], [50.0], {**cfg, "target_recall": 0.6}, ["b"])
    assert low["thresholds"] == {1: 0.7}
    assert low["recall"] == pytest.approx(100 / 150) and low["coverage"] == 0.1
    # clips of 1 s (50 frames): the 100-frame proposal needs 2 clips, no more video
    assert low["clip_coverage"] == 0.1
    curve = tuned["curves"]["b"]
    assert len(curve["threshold"]) == len(curve["recall"]) == len(curve["coverage"])
    i = curve["threshold"].index(0.5)
    # t = 0.5 covers 100:200 and the 0.51 distractor
    assert curve["recall"][i] == pytest.approx(100 / 150) and curve["coverage"][i] == 0.2
    union = tuned["curve"]
    assert union["target"][-1] == 1.0 and union["recall"][-1] == 1.0
    assert np.all(np.diff(union["coverage"]) >= 0)  # more recall asked, more video sent
