"""Clip labels, classifier modes, clips -> frames, behavior CSV and events."""

import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier

from ethoflow.classifiers import (
    clip_labels,
    clip_pose_features,
    clips_to_frames,
    frames_to_events,
    icl_probs,
    predict_clips,
    train_classifier,
)
from ethoflow.results import write_behavior


def _windows(pairs):
    return pd.DataFrame(pairs, columns=["start_frame", "end_frame"])


def test_clip_labels_and_pose_features():
    y = np.array([1, 1, 1, 0, 2, 2, -1, -1, -1, -1])
    w = _windows([(0, 4), (3, 6), (6, 10)])
    assert clip_labels(y, w).tolist() == [1, 2, -1]
    f = np.arange(20, dtype=np.float32).reshape(10, 2)
    x = clip_pose_features(f, w)
    assert x.shape == (3, 4)
    np.testing.assert_allclose(x[0, :2], f[0:4].mean(0))
    np.testing.assert_allclose(x[0, 2:], f[0:4].std(0), rtol=1e-5)


def test_clips_to_frames_overlaps_and_outside():
    p = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    w = _windows([(2, 6), (4, 8)])
    out = clips_to_frames(p, w, 10)
    np.testing.assert_allclose(out[:2], [[1, 0, 0]] * 2)  # outside: other
    np.testing.assert_allclose(out[2:4], [[0, 1, 0]] * 2)
    np.testing.assert_allclose(out[4:6], [[0, 0.5, 0.5]] * 2)  # overlap: mean
    np.testing.assert_allclose(out[6:8], [[0, 0, 1]] * 2)
    np.testing.assert_allclose(out[8:], [[1, 0, 0]] * 2)
    sm = clips_to_frames(p, w, 10, smoothing_frames=3)
    np.testing.assert_allclose(sm.sum(1), 1.0)
    np.testing.assert_allclose(sm[3], (out[2] + out[3] + out[4]) / 3)


def _planted(seed, centers, n_per, noise=1.5, dim=1500):
    """Class signal in a few dimensions, the other ~1,450 dimensions pure noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(centers)), n_per)
    x = rng.normal(0, noise, (len(y), dim))
    inf = centers.shape[1]
    x[:, :inf] = centers[y] + rng.normal(0, 0.5, (len(y), inf))
    return x.astype(np.float32), y


def test_knn_with_reduction_beats_raw_knn_on_noisy_1500d():
    centers = np.random.default_rng(0).normal(0, 1, (4, 50))
    xtr, ytr = _planted(1, centers, 30)
    xte, yte = _planted(2, centers, 50)
    cfg = {"knn_shots": 20, "knn_dim": 16, "knn_k": 3}
    fitted = train_classifier("knn", [{"embeddings": xtr}], [ytr], 4, cfg, seed=0)
    assert fitted["shots"] == 80
    acc = np.mean(predict_clips(fitted, {"embeddings": xte}).argmax(1) == yte)
    # raw cosine KNN on the whole train set (more exemplars than the few-shot model has)
    raw = KNeighborsClassifier(3, metric="cosine").fit(xtr, ytr)
    acc_raw = np.mean(raw.predict(xte) == yte)
    assert acc > 0.9
    assert acc > acc_raw + 0.2


def test_linear_and_fusion_fill_unseen_columns():
    rng = np.random.default_rng(3)
    x, y = _planted(4, rng.normal(0, 1, (3, 10)), 30, noise=0.5, dim=40)
    y = y + 1  # classes 1..3 seen; 0 (other) and 4 never seen
    pose = rng.normal(size=(len(y), 6)).astype(np.float32)
    pose[:, 0] += y
    for mode in ("linear", "pose+vlm"):
        fitted = train_classifier(mode, [{"embeddings": x, "pose": pose}], [y], 5, {}, seed=0)
        p = predict_clips(fitted, {"embeddings": x, "pose": pose})
        assert p.shape == (len(y), 5)
        np.testing.assert_allclose(p.sum(1), 1.0)
        assert np.all(p[:, [0, 4]] == 0)
        assert np.mean(p.argmax(1) == y) > 0.95


def test_icl_softmax():
    p = icl_probs(np.log(np.array([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]])))
    np.testing.assert_allclose(p, [[0.2, 0.3, 0.5], [0.7, 0.2, 0.1]], rtol=1e-6)


def test_behavior_csv_and_events(tmp_path):
    probs = np.zeros((6, 3))
    probs[[0, 1, 5], 0] = 1
    probs[[2, 3], 1] = 1
    probs[4, 2] = 1
    write_behavior(tmp_path / "b.csv", probs, 2.0, ["groom", "rear"])
    df = pd.read_csv(tmp_path / "b.csv")
    assert list(df.columns) == ["frame", "time_s", "label", "p_other", "p_groom", "p_rear"]
    assert df.label.tolist() == ["other", "other", "groom", "groom", "rear", "other"]
    np.testing.assert_allclose(df.time_s, np.arange(6) / 2)
    ev = frames_to_events(probs.argmax(1), 2.0, ["groom", "rear"])
    assert ev.values.tolist() == [["groom", 1.0, 2.0], ["rear", 2.0, 2.5]]
