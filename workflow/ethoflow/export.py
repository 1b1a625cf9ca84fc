"""Exports of a behavior vector: NWB with the pose (ndx-pose) and the bouts (ndx-ethogram)."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from typing import Any

import numpy as np

from . import __version__
from .atomic import atomic_path
from .classifiers import frames_to_events
from .vocab import classes

SUBJECT_DEFAULTS = {"species": "Mus musculus", "sex": "U", "age": "P0D/"}
REFERENCE_FRAME = "(0, 0) is the top-left corner of the video frame; x points right, y down"


def _bouts_table(events, behaviors: list[str], pose_estimation: Any | None):
    """The bouts as an ndx-ethogram ``EthogramBouts`` (with its ``Ethogram`` catalogue), or a
    plain TimeIntervals table when ndx-ethogram is not installed. Returns (table, catalogue)."""
    try:
        from ndx_ethogram import Ethogram, EthogramBouts
    except ImportError:  # pragma: no cover - ndx-ethogram is a dependency
        from pynwb.epoch import TimeIntervals

        table = TimeIntervals(name="behavior", description="behavior bouts labelled by ethoflow")
        if len(events):  # hdmf cannot type an empty column: a session without bouts has none
            table.add_column(name="label", description="behavior name")
        for r in events.itertuples():
            table.add_row(start_time=float(r.start_s), stop_time=float(r.stop_s), label=r.behavior)
        return table, None
    catalogue = Ethogram(
        name="ethogram",
        description="behaviors ethoflow classifies (one per row; 'other' = none of them)",
        exclusive=True,
    )
    for b in behaviors:
        catalogue.add_row(behavior=str(b), definition=f"{b}, as classified by ethoflow")
    table = EthogramBouts(
        name="behavior",
        description="behavior bouts labelled by ethoflow (one row per bout)",
        labeling_method="automated",
        source_software=f"ethoflow {__version__}",
        ethogram=catalogue,
        source_pose=pose_estimation,
    )
    for r in events.itertuples():
        table.add_row(start_time=float(r.start_s), stop_time=float(r.stop_s), label=r.behavior)
    return table, catalogue


def _pose_estimations(pose: Any) -> tuple[list, list]:
    """One ndx-pose ``PoseEstimation`` (a ``PoseEstimationSeries`` per keypoint) and one
    ``Skeleton`` per animal of ``pose`` (``keypoints`` [T, A, K, 2], ``confidence`` [T, A, K])."""
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton

    kp = np.asarray(pose.keypoints, np.float32)
    conf = np.asarray(pose.confidence, np.float32)
    names = [str(n) for n in pose.keypoint_names]
    fps = float(pose.fps)
    source = getattr(pose, "source_format", "") or "unknown"
    estimations, skeletons = [], []
    for a, animal in enumerate(pose.animal_ids):
        skeleton = Skeleton(
            name=f"skeleton_{animal}", nodes=names, edges=np.zeros((0, 2), np.uint8)
        )
        series = [
            PoseEstimationSeries(
                name=name,
                description=f"{name} of {animal}",
                data=kp[:, a, k],
                unit="pixels",
                reference_frame=REFERENCE_FRAME,
                rate=fps,
                starting_time=0.0,
                confidence=conf[:, a, k],
                confidence_definition=f"keypoint confidence of the {source} pose (0 = missing)",
            )
            for k, name in enumerate(names)
        ]
        estimations.append(
            PoseEstimation(
                name=str(animal),
                description=f"pose of {animal}, NaN = missing",
                pose_estimation_series=series,
                skeleton=skeleton,
                source_software=source,
            )
        )
        skeletons.append(skeleton)
    return estimations, skeletons


def write_nwb(
    path: str | os.PathLike,
    labels: np.ndarray,
    fps: float,
    behaviors: list[str],
    subject: str,
    session: str,
    probs: np.ndarray | None = None,
    pose: Any | None = None,
    subject_info: dict | None = None,
) -> None:
    """An NWB file of one session, written atomically.

    Holds every bout as a row of a ``behavior`` ndx-ethogram ``EthogramBouts`` table in
    ``intervals`` (``start_time``, ``stop_time``, ``label``; a plain TimeIntervals without
    ndx-ethogram) with its ``Ethogram`` catalogue, and in the ``behavior`` processing module,
    when given, the per-frame probabilities as a TimeSeries and the pose (an
    ``ethoflow.pose_io.Pose``-like object) as one ndx-pose ``PoseEstimation`` per animal with a
    ``Skeleton`` (in ``Skeletons``).

    ``subject_info`` adds or overrides ``pynwb.file.Subject`` fields (``age``, ``sex``,
    ``species``, ``date_of_birth``, ...); by default the subject is a mouse of unknown sex
    (``"U"``) and unknown age (``"P0D/"``, the open-ended ISO 8601 range NWB allows), so the
    file passes nwbinspector without critical findings."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    nwb = NWBFile(
        session_description=f"ethoflow behavior labels of {subject}/{session}",
        identifier=f"ethoflow-{subject}-{session}",
        session_start_time=dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
        subject=Subject(**{**SUBJECT_DEFAULTS, **(subject_info or {}), "subject_id": subject}),
        session_id=session,
    )
    has_probs = probs is not None and len(probs)
    mod = None
    if has_probs or pose is not None:
        mod = nwb.create_processing_module("behavior", "ethoflow pose and behavior probabilities")
    estimations: list = []
    if pose is not None:
        from ndx_pose import Skeletons

        estimations, skeletons = _pose_estimations(pose)
        mod.add(Skeletons(skeletons=skeletons))
        for pe in estimations:
            mod.add(pe)
    events = frames_to_events(labels, fps, behaviors)
    table, catalogue = _bouts_table(events, behaviors, estimations[0] if estimations else None)
    nwb.add_time_intervals(table)
    if catalogue is not None:
        if mod is None:
            mod = nwb.create_processing_module("behavior", "ethoflow behavior catalogue")
        mod.add(catalogue)
    if has_probs:
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
