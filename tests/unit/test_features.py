from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from ethoflow.features import compute_features, fill_missing, smooth
from ethoflow.pose_io import Pose, load_pose
from ethoflow.repair import repair_pose

DATA = Path(__file__).resolve().parents[1] / "data"
PARTS = ["nose", "left_ear", "right_ear", "neck", "left_hip", "right_hip", "tail_base"]
BODY = np.array([[10.0, 0], [6, 3], [6, -3], [4, 0], [-4, 3], [-4, -3], [-10, 0]])  # nose +x


def _pose(centers, headings, fps=30.0, names=None):
    """Rigid mice: centers [T, A, 2], headings [T, A] (rad) -> Pose with 7 keypoints."""
    c, s = np.cos(headings)[..., None], np.sin(headings)[..., None]
    rot = np.stack([BODY[:, 0] * c - BODY[:, 1] * s, BODY[:, 0] * s + BODY[:, 1] * c], -1)
    kp = centers[:, :, None, :] + rot
    a = kp.shape[1]
    return Pose(kp, np.ones(kp.shape[:3]), fps, PARTS, names or [f"m{i}" for i in range(a)])


def _col(feats, names, name):
    return feats[:, names.index(name)]


def test_kinematics_of_a_straight_walk():
    t = np.arange(120)
    centers = np.stack([50 + 2.0 * t, np.full(120, 80.0)], -1)[:, None]  # 2 px/frame along x
    pose = _pose(centers, np.zeros((120, 1)))
    f, n = compute_features(pose, {"normalize": True, "speed_smooth_frames": 5})
    assert f.dtype == np.float32 and f.shape == (120, len(n)) and len(set(n)) == len(n)
    body = 20.0  # nose-tail distance
    np.testing.assert_allclose(_col(f, n, "m0_speed")[5:-5], 2.0 * 30 / body, rtol=1e-5)
    np.testing.assert_allclose(_col(f, n, "m0_v_forward")[5:-5], 2.0 * 30 / body, rtol=1e-5)
    np.testing.assert_allclose(_col(f, n, "m0_v_lateral"), 0, atol=1e-5)
    np.testing.assert_allclose(_col(f, n, "m0_accel")[5:-5], 0, atol=1e-4)
    np.testing.assert_allclose(_col(f, n, "m0_body_length"), 1.0, rtol=1e-6)
    np.testing.assert_allclose(_col(f, n, "m0_heading_cos"), 1.0, rtol=1e-6)
    nose_from_centroid = (BODY[0, 0] - BODY[:, 0].mean()) / body
    np.testing.assert_allclose(_col(f, n, "m0_nose_ego_x"), nose_from_centroid, atol=1e-5)
    np.testing.assert_allclose(_col(f, n, "m0_nose_ego_y"), 0, atol=1e-5)
    raw, rn = compute_features(pose, {"normalize": False, "speed_smooth_frames": 1})
    np.testing.assert_allclose(_col(raw, rn, "m0_speed")[1:], 60.0, rtol=1e-5)
    assert not any("-" in x for x in n)  # one animal: no pairwise features


def test_rigid_motion_of_the_scene_keeps_egocentric_features():
    rng = np.random.default_rng(0)
    t = 300
    centers = np.stack(
        [[100.0, 100.0] + np.cumsum(rng.normal(0, 2, (t, 2)), 0) for _ in range(3)], 1
    ) + [[0, 0], [80, 0], [0, 90]]
    headings = np.cumsum(rng.normal(0, 0.1, (t, 3)), 0)
    pose = _pose(centers, headings)
    ang = 0.7
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    moved = Pose(
        pose.keypoints @ rot.T + [500.0, -40.0], pose.confidence, 30.0, PARTS, pose.animal_ids
    )
    f1, n1 = compute_features(pose, {})
    f2, n2 = compute_features(moved, {})
    assert n1 == n2
    pairs = [f"m{i}-m{j}" for i, j in combinations(range(3), 2)]
    assert all(any(x.startswith(p + "_") for x in n1) for p in pairs)
    invariant = [
        i
        for i, x in enumerate(n1)
        if x.endswith(("_ego_x", "_ego_y", "_speed", "_accel", "_v_forward", "_v_lateral"))
        or x.endswith(("_dist", "_nose_nose", "_nose_tail", "_tail_nose", "_approach", "_turn"))
        or "bearing" in x
        or x.endswith("_body_length")
    ]
    assert len(invariant) > 3 * (2 * 7 + 5) + 3 * 10
    np.testing.assert_allclose(f1[:, invariant], f2[:, invariant], atol=2e-3)
    cen = pose.keypoints.mean(2)
    dist = np.linalg.norm(cen[:, 0] - cen[:, 1], axis=-1) / 20.0
    np.testing.assert_allclose(_col(f1, n1, "m0-m1_dist"), dist, rtol=1e-4)
    nose_nose = np.linalg.norm(pose.keypoints[:, 0, 0] - pose.keypoints[:, 1, 0], axis=-1) / 20
    np.testing.assert_allclose(_col(f1, n1, "m0-m1_nose_nose"), nose_nose, rtol=1e-4)
    allo = [i for i, x in enumerate(n1) if x.endswith("_nose_x")]
    assert not np.allclose(f1[:, allo], f2[:, allo])
    assert (f1[:, allo] > -0.2).all() and (f1[:, allo] < 1.2).all()
    nop, nn = compute_features(pose, {"pairwise": False})
    assert not any("-" in x for x in nn) and nop.shape[1] == f1.shape[1] - 3 * 10


def test_missing_data_filled_and_flagged():
    t = np.arange(100)
    centers = np.stack([np.stack([t * 1.0, t * 0.5], -1), np.stack([200 - t, t * 0.0], -1)], 1)
    pose = _pose(centers, np.zeros((100, 2)))
    kp = pose.keypoints.copy()
    kp[20:40, 1] = np.nan  # mouse 1 lost for 20 frames
    kp[:5, 0, 0] = np.nan  # nose of mouse 0 missing at the start
    pose = Pose(kp, pose.confidence, 30.0, PARTS, ["a", "b"])
    f, n = compute_features(pose, {})
    assert np.isfinite(f).all()
    miss = _col(f, n, "b_missing")
    assert (miss[20:40] == 1).all() and (miss[:20] == 0).all() and (miss[40:] == 0).all()
    np.testing.assert_allclose(_col(f, n, "a_missing")[:5], 1 / 7)
    held = _col(f, n, "b_nose_x")[20:40]  # b's last position is held through the gap
    np.testing.assert_allclose(held, _col(f, n, "b_nose_x")[19], rtol=1e-6)
    np.testing.assert_allclose(_col(f, n, "b_speed")[23:37], 0, atol=1e-6)


def test_fill_missing_and_smooth():
    x = np.array([[np.nan, 1.0, np.nan], [2.0, np.nan, np.nan], [np.nan, 3.0, np.nan]])
    np.testing.assert_array_equal(fill_missing(x), [[2, 1, 0], [2, 1, 0], [2, 3, 0]])
    y = np.arange(10, dtype=float)[:, None]
    np.testing.assert_allclose(smooth(y, 3)[1:-1, 0], y[1:-1, 0])
    np.testing.assert_allclose(smooth(y, 3)[0, 0], 0.5)


@pytest.mark.parametrize(
    "path,animals,parts",
    [
        ("dlc_openfield/openfield_dlc_inference_example_missingdata.csv", 1, 4),
        ("mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5", 3, 12),
        ("behaviordepot_freezing/demo1_tracking.csv", 1, 8),
    ],
)
def test_real_files(path, animals, parts):
    pose, _ = repair_pose(load_pose(DATA / path, fps=30), 0.4, 15)
    f, n = compute_features(pose, {"normalize": True, "speed_smooth_frames": 5, "pairwise": True})
    per_animal = sum(x.startswith(pose.animal_ids[0] + "_") for x in n)
    assert per_animal == 4 * parts + 9
    assert len(n) == animals * per_animal + animals * (animals - 1) // 2 * 10
    assert np.isfinite(f).all() and f.shape[0] == pose.n_frames
    speed = _col(f, n, f"{pose.animal_ids[0]}_speed")
    assert 0 < np.median(speed) < 10  # body lengths per second: a mouse, not noise
    body = _col(f, n, f"{pose.animal_ids[0]}_body_length")
    assert 0.7 < np.median(body) < 1.3


def test_single_keypoint_skeleton():
    kp = np.cumsum(np.random.default_rng(1).normal(0, 1, (50, 2, 1, 2)), 0)
    pose = Pose(kp, np.ones((50, 2, 1)), 30.0, ["centroid"], ["a", "b"])
    f, n = compute_features(pose, {})
    assert np.isfinite(f).all() and "a-b_dist" in n
