"""Stage 1 on the real BehaviorDEPOT freezing labels, and proposal logic."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ethoflow import features, localizer, proposals

REPO = Path(__file__).resolve().parents[2]
CFG = yaml.safe_load((REPO / "config/config.yaml").read_text())
DATA = REPO / "tests/data/behaviordepot_freezing"


@pytest.fixture(scope="module")
def freezing(freezing_recording):
    p, y = freezing_recording
    x, names = features.compute_features(p, {**CFG["features"], "head": "Nose", "tail": "Tailbase"})
    return x, y, names


def f1(y, pred):
    tp = np.sum(y & pred)
    return 2 * tp / (y.sum() + pred.sum())


def test_localizer_beats_a_tuned_speed_threshold_on_held_out_freezing(freezing, tmp_path):
    """Train on the first minute, test on the second: real human labels."""
    torch.set_num_threads(1)
    x, y, names = freezing
    ckpt = tmp_path / "loc.pt"
    res = localizer.train([x[:3000]], [y[:3000]], 2, CFG["localizer"], 0, ckpt, False)
    assert ckpt.exists() and res["receptive_field_frames"] >= 101  # ±50 frames of context
    model = localizer.load(ckpt)
    p_action, p_class = localizer.predict_frames(model, x[3000:])
    assert p_class.shape == (3000, 2) and np.allclose(p_class.sum(1), 1, atol=1e-5)
    cnn = f1(y[3000:] == 1, p_class.argmax(1) == 1)
    # the baseline: a centroid-speed threshold tuned for F1 on the training half
    speed = x[:, names.index("mouse_speed")]
    best = max(
        np.quantile(speed[:3000], np.linspace(0.01, 0.6, 60)),
        key=lambda t: f1(y[:3000] == 1, speed[:3000] < t),
    )
    baseline = f1(y[3000:] == 1, speed[3000:] < best)
    print(f"held-out freezing F1: CNN {cnn:.3f}, tuned speed threshold {baseline:.3f}")
    assert cnn > 0.6
    assert cnn > baseline
    # proposals from the action head recover most annotated freezing frames
    props = proposals.make_proposals(p_action, 50, CFG["proposals"])
    cov = proposals.covered(props, 3000)
    assert cov[y[3000:] == 1].mean() > 0.6


def test_training_is_deterministic_and_chunked_inference_is_exact(freezing, tmp_path):
    torch.set_num_threads(1)
    x, y, _ = freezing
    cfg = {**CFG["localizer"], "epochs": 2, "min_epochs": 1, "channels": 8}
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    localizer.train([x[:1500]], [y[:1500]], 2, cfg, 3, a, False)
    localizer.train([x[:1500]], [y[:1500]], 2, cfg, 3, b, False)
    ma, mb = localizer.load(a), localizer.load(b)
    pa, _ = localizer.predict_frames(ma, x)
    pb, _ = localizer.predict_frames(mb, x)
    assert np.array_equal(pa, pb)
    small, _ = localizer.predict_frames(ma, x, batch_frames=700)
    assert np.allclose(pa, small, atol=1e-5)
    with pytest.raises(ValueError, match="columns"):
        localizer.predict_frames(ma, x[:, :5])


def test_unlabelled_frames_are_ignored(freezing, tmp_path):
    torch.set_num_threads(1)
    x, y, _ = freezing
    y = y[:1500].copy()
    y[::2] = -1
    cfg = {**CFG["localizer"], "epochs": 1, "min_epochs": 1, "channels": 8}
    res = localizer.train([x[:1500]], [y], 2, cfg, 0, tmp_path / "m.pt", False)
    assert res["epochs_run"] == 1 and np.isfinite(res["history"][0]["train_loss"])


def test_hysteresis_merge_pad_and_min_duration():
    fps = 10
    p = np.zeros(300, np.float32)
    p[50:80] = 0.9  # a clear event
    p[80:95] = 0.4  # stays above the off threshold: extends the event
    p[100:103] = 0.9  # 0.3 s blip: shorter than min duration -> dropped alone, but merged
    p[200:230] = 0.45  # never reaches the on threshold -> no proposal
    cfg = {
        "smooth_s": 0,
        "on_threshold": 0.5,
        "off_threshold": 0.3,
        "min_duration_s": 0.5,
        "merge_gap_s": 0.5,
        "pad_s": 0.2,
    }
    props = proposals.make_proposals(p, fps, cfg)
    assert props[["start_frame", "end_frame"]].values.tolist() == [[48, 97]]
    cfg["merge_gap_s"] = 2.0
    cfg["min_duration_s"] = 0.2
    props = proposals.make_proposals(p, fps, cfg)
    assert props[["start_frame", "end_frame"]].values.tolist() == [[48, 105]]
    assert proposals.make_proposals(np.zeros(100), fps, cfg).empty


def test_clip_windows_cover_every_proposal():
    props = pd.DataFrame(
        {"start_frame": [0, 100, 900], "end_frame": [20, 460, 1000], "score": [0.9, 0.8, 0.7]}
    )
    w = proposals.clip_windows(props, 1000, 30, 5.0)
    assert ((w.end_frame - w.start_frame) == 150).all()
    assert (w.start_frame >= 0).all() and (w.end_frame <= 1000).all()
    cov = proposals.covered(w, 1000)
    assert proposals.covered(props, 1000)[~cov].sum() == 0
    assert (w.proposal == 1).sum() == 3  # 360 frames -> 3 clips
    short = proposals.clip_windows(props.iloc[:1], 60, 30, 5.0)
    assert short[["start_frame", "end_frame"]].values.tolist() == [[0, 60]]


def test_threshold_sweep_trades_recall_for_coverage():
    rng = np.random.default_rng(0)
    y = np.zeros(3000, int)
    y[500:800] = 1
    y[2000:2100] = 1
    p = np.clip(0.7 * y + rng.normal(0.2, 0.15, 3000), 0, 1)
    sweep = proposals.threshold_sweep(p, y, 30, {}, [0.2, 0.5, 0.8])
    assert sweep.coverage.is_monotonic_decreasing
    assert sweep.proposal_recall.iloc[0] >= sweep.proposal_recall.iloc[-1]
    assert sweep.proposal_recall.iloc[1] > 0.9


def test_folds_leave_one_recording_out_else_the_last_block():
    from ethoflow.stage1 import folds

    cfg = {"max_folds": 3, "holdout_fraction": 0.25}
    loro = folds(["a.csv", "a.csv", "b.csv"], [100, 50, 80], cfg)
    assert loro == [
        ([(2, 0, 80)], [(0, 0, 100), (1, 0, 50)]),
        ([(0, 0, 100), (1, 0, 50)], [(2, 0, 80)]),
    ]
    assert folds(["a.csv"], [100], cfg) == [([(0, 0, 75)], [(0, 75, 100)])]


def _shifted(pose, fps_out, scale, jitter, seed=0):
    """The recording as another rig records it: other fps, pixel scale, jitter, names."""
    import dataclasses

    t_in = np.arange(pose.n_frames) / pose.fps
    t_out = np.arange(int(pose.n_frames * fps_out / pose.fps)) / fps_out
    flat = pose.keypoints.reshape(pose.n_frames, -1).astype(np.float64)
    kp = np.stack([np.interp(t_out, t_in, c) for c in flat.T], 1)
    kp = kp.reshape(-1, *pose.keypoints.shape[1:]) * scale
    kp += np.random.default_rng(seed).normal(0, jitter, kp.shape)
    names = [n.lower().replace(" ", "_") for n in pose.keypoint_names]
    shifted = dataclasses.replace(
        pose,
        keypoints=kp.astype(np.float32),
        confidence=np.ones(kp.shape[:3], np.float32),
        fps=float(fps_out),
        keypoint_names=names,
    )
    return shifted, np.minimum(np.round(t_out * pose.fps).astype(int), pose.n_frames - 1)


def test_chosen_stage1_model_beats_the_kinematic_rule_and_holds_up_on_other_rigs(
    tmp_path, freezing_recording
):
    """Minute 1 -> minute 2 of the real freezing labels, then minute 2 resampled to 30 and
    25 fps at half the pixel scale with keypoint jitter and renamed keypoints."""
    import dataclasses

    from ethoflow import speed_rule, stage1

    torch.set_num_threads(1)
    p, y = freezing_recording
    x, _ = features.compute_features(p, {"head": "Nose", "tail": "Tailbase"})

    def cut(a, b):
        return dataclasses.replace(p, keypoints=p.keypoints[a:b], confidence=p.confidence[a:b])

    train, test = cut(0, 3000), cut(3000, 6000)
    cfg = {"candidates": ["gbt", "cnn"], "epochs": 3, "min_epochs": 1, "patience": 1}
    log = stage1.train([train], [x[:3000]], [y[:3000]], 2, cfg, tmp_path / "s1.pt")
    assert set(log["candidates"]) == {"gbt", "cnn"} and log["choice"] in log["candidates"]
    assert log["validation"] == "last block"
    model = stage1.load(tmp_path / "s1.pt")
    _, p_class = stage1.predict(model, x[3000:], test)
    native = f1(y[3000:] == 1, p_class.argmax(1) == 1)
    rule = speed_rule.fit(
        [speed_rule.keypoint_speed(train.keypoints, 50)], [y[:3000]], [50], ["freezing"]
    )
    pred = speed_rule.predict(speed_rule.keypoint_speed(test.keypoints, 50), 50, rule, ["freezing"])
    kinematic = f1(y[3000:] == 1, pred.argmax(1) == 1)
    print(f"stage 1 ({log['choice']}) F1 {native:.3f}, kinematic rule {kinematic:.3f}")
    assert native >= 0.85 and native > kinematic
    for fps_out in (30, 25):
        shifted, src = _shifted(test, fps_out, 0.5, 0.2)
        _, pc = stage1.predict(model, np.zeros((shifted.n_frames, 1)), shifted)
        other = f1(y[3000:][src] == 1, pc.argmax(1) == 1)
        print(f"  at {fps_out} fps, x0.5 pixels, 0.2 px jitter, renamed keypoints: {other:.3f}")
        assert other >= native - 0.03
