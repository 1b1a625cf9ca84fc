"""NWB files with ndx-pose: one ``PoseEstimation`` (in any processing module) per animal,
one ``PoseEstimationSeries`` per keypoint; read with pynwb, which carries the frame rate.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError


def sniff(f: h5py.File) -> bool:
    """Whether an open HDF5 file is an NWB file."""
    return "nwb_version" in f.attrs or ("general" in f and "acquisition" in f)


def read_nwb(path: Path) -> tuple:
    """Keypoints, confidence, keypoint names, animal ids (subject, else the PoseEstimation's
    name) and the frame rate (None when the series carry neither rate nor timestamps)."""
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as err:  # noqa: BLE001 - pynwb raises many types on bad files
        raise InputError(path, f"not a readable NWB file: {err}") from err
    try:
        found = []
        for mod in nwb.processing.values():
            for name, obj in mod.data_interfaces.items():
                if type(obj).__name__ == "PoseEstimation":
                    found.append((name, obj))
        if not found:
            raise InputError(path, "NWB file has no ndx-pose PoseEstimation")
        ids, kps, confs, parts, fps = [], [], [], None, None
        for name, pe in found:
            series = pe.pose_estimation_series
            order = list(series)
            skel = getattr(pe, "skeleton", None)
            if skel is not None and set(map(str, skel.nodes[:])) == set(order):
                order = [str(n) for n in skel.nodes[:]]
            if parts is None:
                parts = order
            elif set(order) != set(parts):
                raise InputError(
                    path, f"PoseEstimation {name!r} has other keypoints than the first"
                )
            xy = [np.asarray(series[n].data[:], np.float32)[:, :2] for n in parts]
            cf = [
                np.asarray(series[n].confidence[:], np.float32)
                if series[n].confidence is not None
                else np.ones(len(xy[i]), np.float32)
                for i, n in enumerate(parts)
            ]
            kps.append(np.stack(xy, 1))
            confs.append(np.stack(cf, 1))
            s0 = series[parts[0]]
            if s0.rate:
                fps = float(s0.rate)
            elif s0.timestamps is not None and len(s0.timestamps) > 1:
                fps = float(1.0 / np.median(np.diff(s0.timestamps[:])))
            subject = getattr(skel, "subject", None) if skel is not None else None
            ids.append(getattr(subject, "subject_id", None) or name)
    finally:
        io.close()
    t = max(len(k) for k in kps)
    kp = np.full((t, len(kps), len(parts), 2), np.nan, np.float32)
    conf = np.zeros((t, len(kps), len(parts)), np.float32)
    for a, (k, c) in enumerate(zip(kps, confs, strict=True)):
        kp[: len(k), a], conf[: len(c), a] = k, c
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf[missing] = 0.0
    return kp, conf, parts, ids, fps
