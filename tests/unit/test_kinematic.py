import numpy as np
import pytest

from ethoflow.errors import InputError
from ethoflow.kinematic import body_length, kinematic_labels

NAMES = ["nose", "tail"]


def mouse_track(n, fps, speed_bl, start=(0.0, 0.0), length=40.0):
    """One straight-walking mouse: nose ahead of tail by ``length`` px."""
    t = np.arange(n)[:, None]
    centre = np.array(start) + t * np.array([speed_bl * length / fps, 0.0])
    nose = centre + [length / 2, 0]
    tail = centre - [length / 2, 0]
    return np.stack([nose, tail], axis=1)  # [T, K, 2]


def test_speed_regimes_are_labelled():
    fps, n = 30, 300
    still = mouse_track(n, fps, 0.0)
    fast = mouse_track(n, fps, 3.0)
    kp = np.concatenate([still, fast])[:, None]  # one animal, still then running
    y = kinematic_labels(kp, fps, NAMES, ["locomotion", "immobile"], "nose", "tail")
    assert (y[20:280] == 2).all()  # immobile
    assert (y[320:580] == 1).all()  # locomotion


def test_contact_only_for_several_animals_and_has_priority():
    fps, n = 30, 120
    a = mouse_track(n, fps, 3.0)
    b = a + [45.0, 0.0]  # b walks just ahead: a's nose touches b's tail
    kp = np.stack([a, b], axis=1)
    y = kinematic_labels(kp, fps, NAMES, ["contact", "locomotion", "immobile"], "nose", "tail")
    assert (y == 1).all()
    far = np.stack([a, a + [0.0, 500.0]], axis=1)
    y = kinematic_labels(far, fps, NAMES, ["contact", "locomotion", "immobile"], "nose", "tail")
    assert (y == 2).all()


def test_short_bouts_are_dropped_and_nan_is_interpolated():
    fps = 30
    kp = mouse_track(200, fps, 0.0)[:, None].copy()
    kp[100:105, 0, :, 0] += np.linspace(0, 60, 5)[:, None]  # a 5-frame jerk
    kp[50:60] = np.nan
    y = kinematic_labels(
        kp, fps, NAMES, ["locomotion", "immobile"], "nose", "tail", {"min_bout_s": 1.0}
    )
    assert 1 not in y[95:115]
    assert body_length(kp, 0, 1) == pytest.approx(40.0)


def test_vocabulary_outside_the_rule_is_refused():
    kp = mouse_track(10, 30, 0.0)[:, None]
    with pytest.raises(InputError, match="grooming"):
        kinematic_labels(kp, 30, NAMES, ["grooming"], "nose", "tail", source="x.h5")
