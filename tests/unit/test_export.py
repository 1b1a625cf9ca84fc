"""Events table and NWB round trip read back with pynwb."""

import numpy as np
from pynwb import NWBHDF5IO

from ethoflow.classifiers import frames_to_events
from ethoflow.export import write_nwb

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
