"""Window features: units, angles and pair distances by hand, and the same values at
another frame rate and scale."""

import numpy as np
import pytest

from ethoflow.window_features import angular_speed, n_base, window_features

EPS = 1e-3


def square(t: int, fps: float, speed_px_s: float, scale: float = 1.0) -> np.ndarray:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * scale
    x = np.arange(t) / fps * speed_px_s * scale
    return (corners[None] + np.stack([x, np.zeros(t)], 1)[:, None])[:, None]


NAMES = ["a", "b", "c", "d"]


def test_speeds_in_body_sizes_per_second_by_hand():
    x, names = window_features(square(200, 25.0, 10.0), 25.0, NAMES, ["m"])
    col = names.index("m_logspeed_0.5s")
    # radius of gyration sqrt(2) px: 10 px/s is 10/sqrt(2) body sizes per second
    assert np.allclose(x[20:-20, col], np.log(10 / np.sqrt(2) + EPS), atol=1e-5)
    cen = names.index("m_logspeed_centroid_1s")
    assert np.allclose(x[20:-20, cen], np.log(10 / np.sqrt(2) + EPS), atol=1e-5)
    assert np.allclose(x[:, names.index("m_logspread")], np.log(1 + EPS), atol=1e-5)
    # a square is round (elongation 1) and does not turn
    assert np.allclose(x[:, names.index("m_elongation")], 1.0)
    assert np.allclose(x[:, names.index("m_logturn_axis")], np.log(EPS), atol=1e-5)
    # cm when px_per_unit is given: 4 px per cm -> 2.5 cm/s
    xc, _ = window_features(square(200, 25.0, 10.0), 25.0, NAMES, ["m"], px_per_unit=4.0)
    assert np.allclose(xc[20:-20, col], np.log(2.5 + EPS), atol=1e-5)
    assert x.shape == (200, len(names)) and x.dtype == np.float32
    # 4 keypoint speeds + 3 lags + 3 centroid lags + spread, elongation, 2 turns, bend;
    # value + 4 windows x (mean, std, min, max)
    assert n_base(names, (0.25, 0.5, 1.0, 2.0)) == 15 and len(names) == 15 * (1 + 4 * 4)
    # the std of a constant signal is 0
    assert np.allclose(x[20:-20, names.index("m_logspread_std1s")], 0, atol=1e-5)


def test_window_std_by_hand():
    # keypoint speeds alternate between 0 and fast every 0.5 s: the log speed over a 1 s
    # window is half log(EPS), half log(v): std = |log v - log EPS| / 2
    fps, t = 20.0, 400
    kp = square(t, fps, 0.0)
    x_pos = np.cumsum(np.where((np.arange(t) // 10) % 2 == 1, 1.0, 0.0))  # 20 px/s on
    kp = kp + np.stack([x_pos, np.zeros(t)], 1)[:, None, None]
    x, names = window_features(kp, fps, NAMES, ["m"], windows_s=(1.0,))
    base = x[:, names.index("m_a_logspeed")]
    std = x[:, names.index("m_a_logspeed_std1s")]
    mid = np.arange(60, 340)
    expected = np.array([base[i - 10 : i + 10].std() for i in mid])  # centred 20-frame window
    np.testing.assert_allclose(std[mid], expected, atol=1e-4)


def rod(t: int, fps: float, omega: float, bend: float = 0.0) -> np.ndarray:
    """Three keypoints head, centre, tail on a unit rod rotating at omega rad/s about the
    origin; ``bend`` (rad) turns the tail segment."""
    th = omega * np.arange(t) / fps
    head = np.stack([np.cos(th), np.sin(th)], 1)
    tail = -np.stack([np.cos(th + bend), np.sin(th + bend)], 1)
    centre = np.zeros_like(head)
    return np.stack([head, centre, tail], 1)[:, None] * 10.0


def test_angles_by_hand():
    fps = 20.0
    x, names = window_features(rod(200, fps, 0.5), fps, ["nose", "mid", "tail"], ["m"])
    s = slice(20, -20)
    # a straight rod: elongation 0 (a line), bend cos 1, both turns at 0.5 rad/s
    assert np.allclose(x[s, names.index("m_elongation")], 0, atol=1e-4)
    assert np.allclose(x[s, names.index("m_bend_cos")], 1, atol=1e-6)
    assert np.allclose(x[s, names.index("m_logturn_axis")], np.log(0.5 + EPS), atol=1e-4)
    assert np.allclose(x[s, names.index("m_logturn_head")], np.log(0.5 + EPS), atol=1e-4)
    # tail turned by 60 degrees: h = (10, 0), t = (-5, -5 sqrt 3), centroid c = (h + t) / 3;
    # a = c - t = (h - 2t) / 3, b = h - c = (2h - t) / 3, h.t = -50:
    # a.b = (2|h|^2 - 5 h.t + 2|t|^2) / 9 = 650 / 9, |a|^2 = |b|^2 = 700 / 9 -> cos = 13 / 14
    xb, _ = window_features(rod(50, fps, 0.0, np.pi / 3), fps, ["nose", "mid", "tail"], ["m"])
    assert np.allclose(xb[:, names.index("m_bend_cos")], 13 / 14, atol=1e-6)
    # angular speed of a direction turning a quarter turn per second, by hand
    th = np.pi / 2 * np.arange(100) / 10
    v = angular_speed(np.stack([np.cos(th), np.sin(th)], 1), 10.0, 0.5)
    assert np.allclose(v[5:-5], np.pi / 2)


def test_same_features_at_another_fps_and_pixel_scale():
    a, names = window_features(square(500, 50.0, 6.0), 50.0, NAMES, ["m"])
    b, _ = window_features(square(300, 30.0, 6.0, scale=0.5), 30.0, NAMES, ["m"])
    # frame 250 at 50 fps and frame 150 at 30 fps are both t = 5 s
    np.testing.assert_allclose(a[250], b[150], atol=1e-4)


def test_pairwise_features_identity_free_aggregates_and_standardize():
    two = np.concatenate([square(100, 20.0, 0.0), square(100, 20.0, 0.0) + 10.0], axis=1)
    x, names = window_features(two, 20.0, NAMES, ["m1", "m2"])
    # centroids 10*sqrt(2) px apart, body size sqrt(2) px: 10 body sizes
    d = x[:, names.index("m1-m2_logdist")]
    assert np.allclose(d, np.log(10 + EPS), atol=1e-5)
    # closest keypoints: (1, 1) of m1 and (9, 9) of m2: 8 sqrt(2) px = 8 body sizes
    assert np.allclose(x[:, names.index("m1-m2_logmindist")], np.log(8 + EPS), atol=1e-5)
    # head "a" = (-1, -1) of each: m1's head to m2's (9, 9) is 10 sqrt(2) px, m2's head
    # (9, 9) to m1's (1, 1) is 8 sqrt(2) px: the smaller, 8 body sizes
    assert np.allclose(x[:, names.index("m1-m2_lognosebody")], np.log(8 + EPS), atol=1e-5)
    assert "all_logspeed_0.2s_max" in names and "all_logspread_min" in names
    z, _ = window_features(square(100, 20.0, 3.0), 20.0, NAMES, ["m"], standardize=True)
    assert np.allclose(z.mean(0), 0, atol=1e-4)
    with pytest.raises(ValueError):
        window_features(np.zeros((10, 1, 4)), 20.0, NAMES, ["m"])
