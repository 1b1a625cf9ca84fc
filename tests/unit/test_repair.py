from pathlib import Path

import numpy as np
import pandas as pd

from ethoflow.pose_io import Pose, load_pose
from ethoflow.repair import interpolate_gaps, longest_runs, repair_pose, swap_mask

DATA = Path(__file__).resolve().parents[1] / "data"
OPENFIELD = DATA / "dlc_openfield" / "openfield_dlc_inference_example.csv"
MABE = DATA / "mabe22_triplet" / "EGS8X2MN4SSUGFWAV976.h5"


def _runs(mask):
    """Run lengths of True in a 1-D mask, the slow obvious way."""
    out, n = [], 0
    for m in mask:
        if m:
            n += 1
        elif n:
            out.append(n)
            n = 0
    if n:
        out.append(n)
    return out


def test_interpolation_fills_short_inner_gaps_exactly():
    t = np.arange(100, dtype=np.float64)
    x = np.stack([2.0 * t + 1, -0.5 * t], 1)[:, None, :].repeat(2, 1)  # [T, 2 points, 2]
    x[10:13, 0] = np.nan  # 3 frames: filled
    x[40:60, 0] = np.nan  # 20 frames: too long
    x[0:2, 1] = np.nan  # touches the start: left
    x[70:75, 1] = np.nan  # 5 frames: filled
    out, fixed = interpolate_gaps(x, max_gap=5)
    np.testing.assert_allclose(out[10:13, 0, 0], 2.0 * t[10:13] + 1)
    np.testing.assert_allclose(out[70:75, 1, 1], -0.5 * t[70:75])
    assert np.isnan(out[40:60, 0]).all() and np.isnan(out[0:2, 1]).all()
    assert fixed.sum() == 3 + 5 and fixed[10:13, 0].all() and fixed[70:75, 1].all()
    assert longest_runs(np.isnan(x[..., 0])).tolist() == [20, 5]


def test_repair_openfield_against_likelihood_column():
    pose = load_pose(OPENFIELD, fps=30)
    lik = pd.read_csv(OPENFIELD, header=[0, 1, 2], index_col=0).to_numpy()[:, 2::3]
    fixed, qc = repair_pose(pose, min_confidence=0.4, max_gap=5)
    low = lik < 0.4
    assert list(qc.columns[:6]) == [
        "animal",
        "keypoint",
        "missing_fraction",
        "repaired_fraction",
        "longest_gap",
        "swap_frames",
    ]
    np.testing.assert_allclose(qc["missing_fraction"], low.mean(0))
    assert qc["longest_gap"].tolist() == [max(_runs(low[:, k]), default=0) for k in range(4)]
    short = [sum(r for r in _runs(low[1:-1, k]) if r <= 5) for k in range(4)]
    assert (qc["repaired_fraction"] * len(lik)).round().astype(int).tolist() <= short
    np.testing.assert_allclose(
        qc["repaired_fraction"] + qc["unrepaired_fraction"], qc["missing_fraction"]
    )
    still = np.isnan(fixed.keypoints[:, 0, :, 0])
    np.testing.assert_allclose(still.mean(0), qc["unrepaired_fraction"])
    ok = ~low
    np.testing.assert_array_equal(fixed.keypoints[:, 0][ok], pose.keypoints[:, 0][ok])
    assert (fixed.confidence == pose.confidence).all()


def test_repair_mabe_missing_counts_match_provenance():
    pose = load_pose(MABE, fps=30)
    _, qc = repair_pose(pose, min_confidence=0.5, max_gap=15)
    per_animal = (qc.groupby("animal")["missing_fraction"].sum() * 1800).round()
    assert per_animal.to_dict() == {"mouse1": 4296, "mouse2": 504, "mouse3": 1944}
    assert len(qc) == 36 and (qc["repaired_fraction"] <= qc["missing_fraction"]).all()


def test_openfield_head_tail_swap_is_flagged():
    # PROVENANCE.md: the model swaps head and tail from about frame 2228 to the end
    pose = load_pose(OPENFIELD, fps=30)
    _, qc = repair_pose(pose, min_confidence=0.0, max_gap=5)
    mask = swap_mask(pose.keypoints)
    near = mask[2222:2236, 0]
    assert near[:, 0].any() and near[:, 3].any()  # snout and tailbase jump there
    assert (qc["swap_frames"] > 0).all()
    assert mask.sum() < 0.01 * mask.size


def _random_walk(rng, n, start, step=1.5):
    return start + np.cumsum(rng.normal(0, step, (n, 2)), 0)


def test_identity_swap_between_two_mice():
    rng = np.random.default_rng(3)
    n = 600
    body = np.array([[10.0, 0], [6, 3], [6, -3], [0, 0], [-10, 0], [-3, 2], [-3, -2]])
    centers = [_random_walk(rng, n, [100.0, 100.0]), _random_walk(rng, n, [300.0, 250.0])]
    kp = np.stack([c[:, None, :] + body for c in centers], 1)  # [T, 2, 7, 2]
    kp += rng.normal(0, 0.3, kp.shape)
    kp[300:] = kp[300:, ::-1].copy()  # the tracker swaps identities at frame 300
    pose = Pose(kp, np.ones(kp.shape[:3]), 30.0, [f"k{i}" for i in range(7)], ["a", "b"])
    mask = swap_mask(pose.keypoints)
    assert mask[300].all()
    assert mask.any((1, 2)).sum() == 1
    _, qc = repair_pose(pose, 0.5, 5)
    assert (qc["swap_frames"] == 1).all() and (qc["first_swap_frame"] == 300).all()
