"""Exports of a behavior vector: NWB with bouts as labelled time intervals."""

from __future__ import annotations

import datetime as dt
import os
import warnings

import numpy as np

from .atomic import atomic_path
from .classifiers import frames_to_events
from .vocab import classes


def write_nwb(
    path: str | os.PathLike,
    labels: np.ndarray,
    fps: float,
    behaviors: list[str],
    subject: str,
    session: str,
    probs: np.ndarray | None = None,
) -> None:
    """An NWB file holding every bout as a row of a ``behavior`` TimeIntervals table
    (``start_time``, ``stop_time``, ``label``) and, when given, the per-frame probabilities
    as a processing-module TimeSeries."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject

    nwb = NWBFile(
        session_description=f"ethoflow behavior labels of {subject}/{session}",
        identifier=f"ethoflow-{subject}-{session}",
        session_start_time=dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
        subject=Subject(subject_id=subject, species="Mus musculus"),
        session_id=session,
    )
    table = TimeIntervals(name="behavior", description="behavior bouts labelled by ethoflow")
    events = frames_to_events(labels, fps, behaviors)
    if len(events):  # hdmf cannot type an empty column: a session without bouts has none
        table.add_column(name="label", description="behavior name")
    for r in events.itertuples():
        table.add_row(start_time=float(r.start_s), stop_time=float(r.stop_s), label=r.behavior)
    nwb.add_time_intervals(table)
    if probs is not None and len(probs):
        mod = nwb.create_processing_module("behavior", "per-frame behavior probabilities")
        mod.add(
            TimeSeries(
                name="behavior_probabilities",
                data=np.asarray(probs, np.float32),
                unit="probability",
                rate=float(fps),
                description="columns: " + ", ".join(classes(behaviors)),
            )
        )
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # the temporary sibling does not end in .nwb; the final file does
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
