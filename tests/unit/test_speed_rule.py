"""The kinematic mode's speed rule: units, invariance to fps and pixel scale, the grid
search, and the baseline it sets on the real BehaviorDEPOT freezing labels."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from ethoflow import speed_rule

REPO = Path(__file__).resolve().parents[2]
CFG = yaml.safe_load((REPO / "config/config.yaml").read_text())
DATA = REPO / "tests/data/behaviordepot_freezing"


def square(t: int, fps: float, speed_px_s: float) -> np.ndarray:
    """Four keypoints at the corners of a 2 x 2 px square moving along x: [T, 1, 4, 2]."""
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    x = np.arange(t) / fps * speed_px_s
    kp = corners[None] + np.stack([x, np.zeros(t)], 1)[:, None]
    return kp[:, None]


def test_units_by_hand():
    kp = square(100, 25.0, 10.0)
    # radius of gyration of a 2 x 2 square: sqrt(2)
    assert speed_rule.body_size(kp) == pytest.approx(np.sqrt(2))
    v = speed_rule.keypoint_speed(kp, 25.0, smooth_s=0.2)
    assert np.allclose(v[5:-5], 10.0 / np.sqrt(2))  # body sizes per second
    v_cm = speed_rule.keypoint_speed(kp, 25.0, px_per_cm=4.0, smooth_s=0.2)
    assert np.allclose(v_cm[5:-5], 2.5)  # 10 px/s at 4 px/cm


def test_speed_is_invariant_to_fps_and_pixel_scale():
    a = speed_rule.keypoint_speed(square(200, 50.0, 6.0), 50.0)
    b = speed_rule.keypoint_speed(square(120, 30.0, 6.0) * 0.5, 30.0)
    assert np.median(a) == pytest.approx(np.median(b))


def test_grid_search_finds_the_planted_rule():
    rng = np.random.default_rng(0)
    fps = 20.0
    speed = rng.uniform(2.0, 4.0, 2000)
    y = np.zeros(2000, int)
    for s in range(100, 2000, 300):  # 2 s bouts of stillness, plus 0.2 s dips that are not
        speed[s : s + 40] = rng.uniform(0.1, 0.5, 40)
        y[s : s + 40] = 1
        speed[s + 150 : s + 154] = 0.3
    model = speed_rule.fit([speed], [y], [fps], ["freezing", "grooming"])
    rule = model["rules"]["freezing"]
    assert rule["direction"] == "below" and 0.5 <= rule["threshold"] <= 3.0
    assert rule["min_bout_s"] > 0.2  # the short dips are removed by the minimum bout
    assert model["skipped"] == ["grooming"]  # no speed rule describes grooming
    probs = speed_rule.predict(speed, fps, model, ["freezing", "grooming"])
    assert f1(y == 1, probs.argmax(1) == 1) > 0.97 and np.allclose(probs.sum(1), 1)


def test_direction_from_the_behavior_name():
    assert speed_rule.direction("Freezing") == "below"
    assert speed_rule.direction("immobile") == "below"
    assert speed_rule.direction("locomotion") == "above"
    assert speed_rule.direction("attack") is None


@pytest.fixture(scope="module")
def freezing(freezing_recording):
    p, y = freezing_recording
    return p.keypoints, y


def f1(y, pred):
    return 2 * np.sum(y & pred) / (y.sum() + pred.sum())


def resample(kp: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    t_in = np.arange(len(kp)) / fps_in
    t_out = np.arange(int(len(kp) * fps_out / fps_in)) / fps_out
    flat = kp.reshape(len(kp), -1)
    return np.stack([np.interp(t_out, t_in, c) for c in flat.T], 1).reshape(-1, *kp.shape[1:])


def test_freezing_baseline_minute1_to_minute2_and_other_rigs(freezing):
    kp, y = freezing
    model = speed_rule.fit(
        [speed_rule.keypoint_speed(kp[:3000], 50)], [y[:3000]], [50], ["freezing"]
    )
    test = y[3000:] == 1
    pred = speed_rule.predict(speed_rule.keypoint_speed(kp[3000:], 50), 50, model, ["freezing"])
    native = f1(test, pred.argmax(1) == 1)
    print(f"kinematic baseline, minute 1 -> minute 2: F1 {native:.3f}")
    assert native > 0.8
    # the same rule on the test minute as another rig records it: 30 fps, half the pixels
    shifted = resample(kp[3000:], 50, 30) * 0.5
    t_out = np.arange(len(shifted)) / 30
    y30 = test[np.minimum(np.round(t_out * 50).astype(int), 2999)]
    pred30 = speed_rule.predict(speed_rule.keypoint_speed(shifted, 30), 30, model, ["freezing"])
    other = f1(y30, pred30.argmax(1) == 1)
    print(f"kinematic baseline at 30 fps, x0.5 pixels: F1 {other:.3f}")
    assert abs(other - native) < 0.05
