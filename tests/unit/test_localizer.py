"""Stage-1 1D-CNN: shapes, determinism, centred context in seconds, real held-out freezing
labels; the training augmentation checked by hand."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ethoflow import localizer

DATA = Path(__file__).resolve().parents[1] / "data/behaviordepot_freezing"
SMALL = {"channels": 16, "epochs": 3, "min_epochs": 1, "patience": 2, "min_steps": 5}
SMALL |= {"context_s": 1.0, "window_s": 5.12}  # 50 and 256 frames at 50 fps


def _local_features(csv: Path) -> np.ndarray:
    """Arena-independent pose features: log speeds (centroid and each keypoint, raw and
    smoothed over 0.2 s), centroid acceleration, and keypoint distances to the centroid."""
    df = pd.read_csv(csv, header=[0, 1, 2], index_col=0)
    xy = df.loc[:, df.columns.get_level_values(2).isin(["x", "y"])].astype(np.float32)
    kp = xy.interpolate(limit_direction="both").to_numpy().reshape(len(df), -1, 2)
    c = kp.mean(1)

    def speed(p: np.ndarray) -> np.ndarray:
        v = np.gradient(p, axis=0)
        return np.hypot(v[..., 0], v[..., 1])

    box = np.ones(11) / 11
    sc = speed(c)
    sk = speed(kp)
    smooth = np.apply_along_axis(lambda a: np.convolve(a, box, mode="same"), 0, sk)
    acc = np.gradient(np.convolve(sc, box, mode="same"))
    dist = np.hypot(*(kp - c[:, None]).transpose(2, 0, 1))
    cols = [np.log1p(sc), np.log1p(np.convolve(sc, box, mode="same")), acc]
    return np.column_stack([*cols, np.log1p(sk), np.log1p(smooth), dist]).astype(np.float32)


@pytest.fixture(scope="module")
def freezing():
    x = _local_features(DATA / "demo1_tracking.csv")
    lab = pd.read_csv(DATA / "demo1_freezing_labels.csv")
    y = (lab.behavior == "freezing").to_numpy().astype(np.int64)
    assert len(x) == len(y) == 6000 and np.isfinite(x).all()
    return x, y


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    return float(2 * np.sum(y & pred) / (y.sum() + pred.sum()))


def test_held_out_freezing_beats_chance_and_a_tuned_speed_threshold(freezing, tmp_path):
    torch.set_num_threads(1)
    x, y = freezing
    cfg = {"channels": 16, "epochs": 12, "min_epochs": 4, "patience": 4, "context_s": 1.0}
    res = localizer.train([x[:3000]], [y[:3000]], 2, cfg, 0, tmp_path / "m.pt", False, fps=50)
    assert 1 <= res["epochs_run"] <= 12 and res["receptive_field_frames"] >= 101
    assert res["receptive_field_s"] >= 2.0  # ±1 s at 50 fps
    model = localizer.load(tmp_path / "m.pt")
    pa, pc = localizer.predict_frames(model, x[3000:])
    yt = y[3000:] == 1
    cnn = _f1(yt, pc.argmax(1) == 1)
    act = _f1(yt, pa > 0.5)
    chance = _f1(yt, np.ones_like(yt))  # predicting freezing everywhere
    speed = x[:, 1]
    thr = max(
        np.quantile(speed[:3000], np.linspace(0.01, 0.8, 80)),
        key=lambda t: _f1(y[:3000] == 1, speed[:3000] < t),
    )
    base = _f1(yt, speed[3000:] < thr)
    print(f"held-out freezing F1: CNN class {cnn:.3f}, action head {act:.3f}")
    print(f"tuned speed threshold {base:.3f}, all-freezing chance {chance:.3f}")
    assert cnn > chance + 0.15 and act > chance + 0.15
    assert cnn > base - 0.05  # at least on par with the hand-tuned threshold


def test_training_is_deterministic_and_outputs_are_probabilities(freezing, tmp_path):
    torch.set_num_threads(1)
    x, y = freezing
    xs, ys = [x[:1500], x[4000:5000]], [y[:1500], y[4000:5000]]
    a = localizer.train(xs, ys, 2, SMALL, 7, tmp_path / "a.pt", False, fps=50)
    b = localizer.train(xs, ys, 2, SMALL, 7, tmp_path / "b.pt", False, fps=50)
    assert a["history"] == b["history"]
    ma, mb = (
        localizer.load(tmp_path / "a.pt"),
        localizer.load(tmp_path / "b.pt"),
    )
    pa, pc = localizer.predict_frames(ma, x[:700])
    qa, qc = localizer.predict_frames(mb, x[:700])
    assert pa.shape == (700,) and pc.shape == (700, 2) and pa.dtype == np.float32
    assert np.array_equal(pa, qa) and np.array_equal(pc, qc)
    assert ((pa >= 0) & (pa <= 1)).all() and np.allclose(pc.sum(1), 1, atol=1e-5)
    localizer.train(xs, ys, 2, SMALL, 8, tmp_path / "c.pt", False, fps=50)
    mc = localizer.load(tmp_path / "c.pt")
    assert not np.array_equal(localizer.predict_frames(mc, x[:700])[0], pa)  # another seed


def test_context_is_centred_and_chunking_is_exact(freezing, tmp_path):
    torch.set_num_threads(1)
    x, y = freezing
    localizer.train([x[:1200]], [y[:1200]], 2, SMALL, 0, tmp_path / "m.pt", False, fps=50)
    model = localizer.load(tmp_path / "m.pt")
    seg = x[:1200].copy()
    pa, pc = localizer.predict_frames(model, seg)
    ca, cc = localizer.predict_frames(model, seg, batch_frames=173)
    assert np.allclose(pa, ca, atol=1e-5) and np.allclose(pc, cc, atol=1e-5)
    seg[600] += 5.0  # one perturbed frame moves outputs on both sides, within the context
    qa, _ = localizer.predict_frames(model, seg)
    changed = np.flatnonzero(np.abs(qa - pa) > 1e-7)
    r = model.receptive
    assert r >= 50
    assert changed.min() < 600 < changed.max()  # non-causal: past frames see the future
    assert changed.min() >= 600 - r and changed.max() <= 600 + r


def test_three_classes_and_wrong_feature_count(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6)).astype(np.float32)
    y = np.zeros(2000, np.int64)
    y[(np.arange(2000) // 100) % 5 == 1] = 1
    y[(np.arange(2000) // 100) % 10 == 3] = 2  # rare class
    x[y == 1, 0] += 3
    x[y == 2, 1] += 3
    y[:50] = -1  # unlabelled frames are ignored
    res = localizer.train([x], [y], 3, SMALL, 0, tmp_path / "m.pt", False, fps=50)
    assert res["class_weights"][2] > res["class_weights"][0]
    model = localizer.load(tmp_path / "m.pt")
    _, pc = localizer.predict_frames(model, x)
    assert pc.shape == (2000, 3)
    with pytest.raises(ValueError, match="columns"):
        localizer.predict_frames(model, x[:, :5])


def test_context_is_in_seconds(tmp_path):
    """The same context_s gives the receptive field of the same duration at any rate."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cfg = {**SMALL, "epochs": 1, "context_s": 2.0}
    for fps in (10.0, 25.0):
        x = rng.normal(size=(300, 3)).astype(np.float32)
        res = localizer.train(
            [x], [np.zeros(300, np.int64)], 2, cfg, 0, tmp_path / "m.pt", False, fps=fps
        )
        assert res["receptive_field_frames"] >= 2 * 2.0 * fps + 1  # ±2 s


def test_time_stretch_keeps_labels_aligned():
    # one keypoint whose x is the frame index; frames 10..19 labelled 1
    kp = np.zeros((40, 1, 1, 2))
    kp[:, 0, 0, 0] = np.arange(40)
    y = np.zeros(40, np.int64)
    y[10:20] = 1
    out, ys = localizer.time_stretch(kp, y, 2.0)
    assert out.shape == (80, 1, 1, 2) and len(ys) == 80
    # new frame j shows original time j / 2 (x = j / 2), labelled as frame round(j / 2)
    np.testing.assert_allclose(out[:79, 0, 0, 0], np.arange(79) / 2)
    src = np.round(np.arange(80) / 2).astype(int).clip(0, 39)
    np.testing.assert_array_equal(ys, y[src])
    # the labelled stretch is twice as long: 10 frames -> frames 19..38 (sources 9.5..19)
    assert ys.sum() == 20 and ys[19:39].all()
    short, ys_short = localizer.time_stretch(kp, y, 0.5)
    assert len(short) == 20 and np.array_equal(ys_short, y[::2])
    assert np.array_equal(short[:, 0, 0, 0], np.arange(0, 40, 2))


def test_rotation_mirror_and_scale_by_hand():
    # a 3-4-5 triangle: (0,0), (3,0), (0,4)
    tri = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    rot = localizer.rotate(tri, np.pi / 2, np.array([1.0, 1.0]))
    # 90 degrees about (1, 1): (x, y) -> (1 - (y - 1), 1 + (x - 1))
    np.testing.assert_allclose(rot, [[2, 0], [2, 3], [-2, 0]], atol=1e-12)

    def dists(p):
        return sorted(np.hypot(*(p[i] - p[j])) for i in range(3) for j in range(i + 1, 3))

    assert dists(rot) == pytest.approx([3, 4, 5])
    assert dists(localizer.rotate(tri, 1.234, np.array([5.0, -2.0]))) == pytest.approx([3, 4, 5])
    np.testing.assert_allclose(
        localizer.mirror(tri, np.array([1.0, 0.0])), [[2, 0], [-1, 0], [2, 4]]
    )
    np.testing.assert_allclose(localizer.scale(tri, 2.0, np.zeros(2)), tri * 2)


def test_augment_draws_are_reproducible_and_keep_shapes_and_labels():
    rng = np.random.default_rng(0)
    kp = rng.normal(100, 10, (200, 2, 4, 2))
    y = (np.arange(200) // 50 % 2).astype(np.int64)
    cfg = {"augment_time_stretch": 0.2, "augment_dropout": 0.1}
    a, ya = localizer.augment(kp, y, np.random.default_rng(1), cfg)
    b, yb = localizer.augment(kp, y, np.random.default_rng(1), cfg)
    np.testing.assert_array_equal(a, b)
    assert len(a) == len(ya) and 160 <= len(a) <= 240 and a.shape[1:] == kp.shape[1:]
    assert 0.05 < np.isnan(a[..., 0]).mean() < 0.15  # about 10 % of keypoint-frames dropped
    # geometric parts only: every distance between keypoints within a frame is kept
    rigid = {"augment_time_stretch": 0.0, "augment_scale": 0.0, "augment_noise": 0.0}
    rigid |= {"augment_dropout": 0.0}
    r, yr = localizer.augment(kp, y, np.random.default_rng(2), rigid)
    assert np.array_equal(yr, y)

    def pair_dists(p):
        flat = p.reshape(len(p), -1, 2)
        return np.hypot(*(flat[:, :, None] - flat[:, None, :]).transpose(3, 0, 1, 2))

    np.testing.assert_allclose(pair_dists(r), pair_dists(kp), atol=1e-3)
