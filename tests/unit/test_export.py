"""Events table and NWB round trip read back with pynwb."""

import csv
import dataclasses
from pathlib import Path

import numpy as np
from pynwb import NWBHDF5IO

from ethoflow.classifiers import frames_to_events
from ethoflow.export import write_nwb
from ethoflow.pose_io import Pose, load_pose

BEHAVIORS = ["attack", "mount"]


def test_nwb_round_trip(tmp_path):
    fps = 10.0
    y = np.zeros(100, int)
    y[10:25] = 1
    y[40:41] = 2
    y[90:] = 1
    probs = np.eye(3, dtype=np.float32)[y]
    path = tmp_path / "s.nwb"
    write_nwb(path, y, fps, BEHAVIORS, "m1", "day1", probs=probs)
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        table = nwb.intervals["behavior"].to_dataframe()
        assert nwb.subject.subject_id == "m1" and nwb.session_id == "day1"
        got = list(zip(table.label, table.start_time, table.stop_time, strict=True))
        ts = nwb.processing["behavior"]["behavior_probabilities"]
        np.testing.assert_array_equal(ts.data[:], probs)
        assert ts.rate == fps
    assert got == [("attack", 1.0, 2.5), ("mount", 4.0, 4.1), ("attack", 9.0, 10.0)]
    ev = frames_to_events(y, fps, BEHAVIORS)
    np.testing.assert_allclose(table.start_time, ev.start_s)
    np.testing.assert_allclose(table.stop_time, ev.stop_s)


def test_nwb_without_bouts(tmp_path):
    write_nwb(tmp_path / "e.nwb", np.zeros(50, int), 25.0, BEHAVIORS, "m2", "d")
    with NWBHDF5IO(str(tmp_path / "e.nwb"), "r") as io:
        assert len(io.read().intervals["behavior"]) == 0
    _inspect(tmp_path / "e.nwb", empty_table=True)


# ---------------------------------------------------------------- pose (ndx-pose) + inspector
DEPOT = Path(__file__).parent.parent / "data" / "behaviordepot_freezing" / "demo1_tracking.csv"
N_FRAMES = 500


def _csv_keypoints(path, n):
    """x, y of each bodypart in the first ``n`` rows of a DLC CSV, read with the csv module
    (independent of the pose readers); (0, 0) = missing, as DLC writes it."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    parts, coords = rows[1][1:], rows[2][1:]
    names = list(dict.fromkeys(parts))
    out = np.full((n, len(names), 2), np.nan)
    for c, (part, coord) in enumerate(zip(parts, coords, strict=True)):
        if coord in ("x", "y"):
            out[:, names.index(part), "xy".index(coord)] = [
                float(r[c + 1]) for r in rows[3 : 3 + n]
            ]
    out[(out == 0).all(-1)] = np.nan
    return names, out


# nwbinspector 0.7 checks crash on an empty table (they index row 0; each crash is reported as
# an ERROR "During evaluation of '<check>'"); a session without bouts still gets its empty table.
EMPTY_TABLE_CRASH = "out of range for empty dimension"


def _inspect(path, empty_table=False):
    """nwbinspector's findings on ``path``; fails on any CRITICAL or ERROR one."""
    from nwbinspector import Importance, inspect_nwbfile

    def known(m):
        return empty_table and all(
            s in f"{m.check_function_name} {m.message}" for s in EMPTY_TABLE_CRASH
        )

    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    bad = [
        m
        for m in messages
        if m.importance in (Importance.CRITICAL, Importance.ERROR) and not known(m)
    ]
    assert not bad, "\n".join(
        f"{m.importance.name} {m.check_function_name}: {m.message}" for m in bad
    )
    return messages


def test_nwb_pose_and_bouts(tmp_path):
    fps = 50.0
    pose = load_pose(DEPOT, "dlc_csv", fps=fps)
    pose = dataclasses.replace(
        pose, keypoints=pose.keypoints[:N_FRAMES], confidence=pose.confidence[:N_FRAMES]
    )
    y = np.zeros(N_FRAMES, int)
    y[50:125] = 1  # freezing 1.0 s - 2.5 s
    y[300:301] = 1  # one frame: 6.0 s - 6.02 s
    y[480:] = 2  # rearing to the end: 9.6 s - 10.0 s
    probs = np.eye(3, dtype=np.float32)[y]
    path = tmp_path / "demo1.nwb"
    write_nwb(path, y, fps, ["freezing", "rearing"], "demo1", "s1", probs=probs, pose=pose)
    names, want = _csv_keypoints(DEPOT, N_FRAMES)
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        mod = nwb.processing["behavior"]
        pe = mod["mouse"]
        assert type(pe).__name__ == "PoseEstimation"
        assert list(pe.skeleton.nodes[:]) == names
        assert pe.skeleton.name in mod["Skeletons"].skeletons
        for k, name in enumerate(names):
            s = pe.pose_estimation_series[name]
            assert s.rate == fps and s.unit == "pixels"
            np.testing.assert_allclose(s.data[:], want[:, k], rtol=1e-6)
            assert s.confidence[:].shape == (N_FRAMES,)
        bouts = nwb.intervals["behavior"]
        assert type(bouts).__name__ == "EthogramBouts"
        assert bouts.labeling_method == "automated" and bouts.source_pose.name == "mouse"
        assert list(bouts.ethogram["behavior"][:]) == ["freezing", "rearing"]
        table = bouts.to_dataframe()
        got = list(zip(table.label, table.start_time, table.stop_time, strict=True))
        np.testing.assert_array_equal(mod["behavior_probabilities"].data[:], probs)
    hand = [("freezing", 1.0, 2.5), ("freezing", 6.0, 6.02), ("rearing", 9.6, 10.0)]
    assert [g[0] for g in got] == [h[0] for h in hand]
    np.testing.assert_allclose([g[1:] for g in got], [h[1:] for h in hand], rtol=0, atol=1e-12)
    back = load_pose(path, "nwb")  # the pose reader reads the file back
    np.testing.assert_array_equal(back.keypoints, pose.keypoints)
    assert back.keypoint_names == names and back.animal_ids == ["mouse"] and back.fps == fps
    _inspect(path)


def test_nwb_two_animals_without_probs(tmp_path):
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 640, (40, 2, 3, 2)).astype(np.float32)
    kp[5:9, 1] = np.nan
    conf = np.where(np.isnan(kp[..., 0]), 0, 0.9).astype(np.float32)
    pose = Pose(kp, conf, 20.0, ["nose", "neck", "tail_base"], ["resident", "intruder"])
    y = np.zeros(40, int)
    y[10:20] = 1
    path = tmp_path / "two.nwb"
    write_nwb(path, y, 20.0, BEHAVIORS, "pair1", "d", pose=pose)
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        for a, animal in enumerate(pose.animal_ids):
            series = nwb.processing["behavior"][animal].pose_estimation_series
            np.testing.assert_array_equal(series["neck"].data[:], kp[:, a, 1])
        table = nwb.intervals["behavior"].to_dataframe()
        assert list(zip(table.label, table.start_time, table.stop_time, strict=True)) == [
            ("attack", 0.5, 1.0)
        ]
        assert "behavior_probabilities" not in nwb.processing["behavior"].data_interfaces
    _inspect(path)
