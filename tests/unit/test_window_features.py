"""Window features: units by hand, and the same values at another frame rate and scale."""

import numpy as np
import pytest

from ethoflow.window_features import window_features


def square(t: int, fps: float, speed_px_s: float, scale: float = 1.0) -> np.ndarray:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * scale
    x = np.arange(t) / fps * speed_px_s * scale
    return (corners[None] + np.stack([x, np.zeros(t)], 1)[:, None])[:, None]


NAMES = ["a", "b", "c", "d"]


def test_speeds_in_body_sizes_per_second_by_hand():
    x, names = window_features(square(200, 25.0, 10.0), 25.0, NAMES, ["m"])
    col = names.index("m_logspeed_0.5s")
    # radius of gyration sqrt(2) px: 10 px/s is 10/sqrt(2) body sizes per second
    assert np.allclose(x[20:-20, col], np.log(10 / np.sqrt(2) + 1e-3), atol=1e-5)
    assert np.allclose(x[:, names.index("m_logspread")], np.log(1 + 1e-3), atol=1e-5)
    assert x.shape == (200, len(names)) and x.dtype == np.float32
    assert len(names) == 8 * (1 + 4 * 3)  # 4 keypoint speeds + 3 lags + spread, 4 windows x 3


def test_same_features_at_another_fps_and_pixel_scale():
    a, names = window_features(square(500, 50.0, 6.0), 50.0, NAMES, ["m"])
    b, _ = window_features(square(300, 30.0, 6.0, scale=0.5), 30.0, NAMES, ["m"])
    # frame 250 at 50 fps and frame 150 at 30 fps are both t = 5 s
    np.testing.assert_allclose(a[250], b[150], atol=1e-4)


def test_pairwise_distance_and_standardize():
    two = np.concatenate([square(100, 20.0, 0.0), square(100, 20.0, 0.0) + 10.0], axis=1)
    x, names = window_features(two, 20.0, NAMES, ["m1", "m2"])
    d = x[:, names.index("m1-m2_logdist")]
    assert np.allclose(d, np.log(10 * np.sqrt(2) / np.sqrt(2) + 1e-3), atol=1e-5)
    z, _ = window_features(square(100, 20.0, 3.0), 20.0, NAMES, ["m"], standardize=True)
    assert np.allclose(z.mean(0), 0, atol=1e-4)
    with pytest.raises(ValueError):
        window_features(np.zeros((10, 1, 4)), 20.0, NAMES, ["m"])
