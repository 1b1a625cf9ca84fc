"""The cohort-wide tidy bouts table."""

import numpy as np
import pandas as pd

from ethoflow.classifiers import frames_to_events
from ethoflow.results import write_events
from ethoflow.summary import BOUT_COLUMNS, bouts_table


def test_bouts_of_every_session_one_row_each(tmp_path):
    rng = np.random.default_rng(0)
    sessions, total = [], 0
    for i, (subject, group) in enumerate([("m1", "control"), ("m2", "drug"), ("m3", "drug")]):
        y = np.repeat(rng.integers(0, 3, 40), rng.integers(3, 40, 40))
        ev = frames_to_events(y, 30.0, ["groom", "rear"])
        total += len(ev)
        path = tmp_path / f"{subject}.events.csv"
        write_events(ev, path)
        row = {"subject": subject, "session": "day1", "setup": "openfield", "group": group}
        sessions.append({**row, "mode": "pose", "events": ev if i else str(path)})
    sessions.append({**row, "session": "day2", "mode": "pose", "events": ev.iloc[:0]})
    df = bouts_table(sessions)
    assert list(df.columns) == BOUT_COLUMNS and len(df) == total
    assert set(df.group) == {"control", "drug"} and set(df.behavior) == {"groom", "rear"}
    np.testing.assert_allclose(df.duration_s, df.stop_s - df.start_s)
    assert (df.duration_s > 0).all()
    assert (
        df.groupby(["subject", "session"]).start_s.apply(lambda s: s.is_monotonic_increasing).all()
    )
    assert bouts_table([]).columns.tolist() == BOUT_COLUMNS
    assert isinstance(df, pd.DataFrame)
