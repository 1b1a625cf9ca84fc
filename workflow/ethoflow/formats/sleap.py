"""SLEAP files: ``.slp`` labels/predictions (read with sleap-io) and analysis h5 (``tracks``
``[track, xy, node, frame]``, ``node_names``, ``track_names``, ``point_scores``).

Of several tracks the main ones are kept (:func:`pick_tracks`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ._h5 import strings

log = logging.getLogger("ethoflow")


def sniff_analysis_h5(f: h5py.File) -> bool:
    """Whether an open HDF5 file is a SLEAP analysis h5."""
    return "tracks" in f and "node_names" in f


def sniff_slp(f: h5py.File) -> bool:
    """Whether an open HDF5 file is a SLEAP ``.slp``."""
    return "metadata" in f and ("frames" in f or "instances" in f)


def pick_tracks(
    path: Path, occupancy: np.ndarray, names: list[str], animals: list[str] | None
) -> list[int]:
    """Tracks to keep: the configured names, else those present in >= half the max occupancy.

    SLEAP's tracker leaves short spurious tracks (the fly pair: 25 tracks holding 74 of 2274
    instances); their instances are dropped with a warning, not merged into the main tracks.
    """
    if animals is not None and all(a in names for a in animals):
        return [names.index(a) for a in animals]
    occ = occupancy.sum(0)
    if occ.size == 0 or occ.max() == 0:
        raise InputError(path, "no tracked instances in the file")
    keep = [i for i in range(len(names)) if occ[i] >= 0.5 * occ.max()]
    dropped = int(occ.sum() - occ[keep].sum())
    if dropped:
        log.warning(
            "%s: dropped %d instances on %d short spurious tracks (kept %s)",
            path,
            dropped,
            len(names) - len(keep),
            [names[i] for i in keep],
        )
    return keep


def read_slp(path: Path, animals: list[str] | None = None) -> tuple:
    """Keypoints, confidence, node names and track names (None: untracked) of a ``.slp``."""
    import sleap_io as sio

    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as err:  # noqa: BLE001 - sleap-io raises many types on bad files
        raise InputError(path, f"not a readable SLEAP .slp file: {err}") from err
    if not labels.labeled_frames:
        raise InputError(path, "SLEAP file has no labeled frames")
    if len(labels.videos) > 1:
        log.warning("%s: %d videos; reading the first", path, len(labels.videos))
    parts = [n.name for n in labels.skeletons[0].nodes]
    if labels.tracks:
        arr = labels.numpy(video=0, return_confidence=True)
        names = [tr.name for tr in labels.tracks]
        occ = np.isfinite(arr[..., :2]).all(-1).any(-1)
        keep = pick_tracks(path, occ, names, animals)
        arr, ids = arr[:, keep], [names[i] for i in keep]
    else:
        per_frame = [len(lf.instances) for lf in labels.labeled_frames]
        if max(per_frame) > 1:
            raise InputError(path, "SLEAP file has several untracked instances per frame")
        arr, ids = labels.numpy(video=0, untracked=True, return_confidence=True), None
    arr = np.asarray(arr, np.float32)
    kp = arr[..., :2].copy()
    conf = np.nan_to_num(arr[..., 2], nan=0.0)
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf[missing] = 0.0
    return kp, conf.astype(np.float32), parts, ids


def read_sleap_h5(path: Path, animals: list[str] | None = None) -> tuple:
    """Keypoints, confidence, node names and track names (None: unnamed) of an analysis h5."""
    with h5py.File(path, "r") as f:
        tracks = f["tracks"][()]
        dims = json.loads(f["tracks"].attrs.get("dims", '["track", "xy", "node", "frame"]'))
        parts = strings(f["node_names"][()])
        names = strings(f["track_names"][()]) if "track_names" in f else []
        scores = f["point_scores"][()] if "point_scores" in f else None
        sdims = (
            json.loads(f["point_scores"].attrs.get("dims", '["track", "node", "frame"]'))
            if scores is not None
            else None
        )
    order = [dims.index(d) for d in ("frame", "track", "node", "xy")]
    kp = np.transpose(tracks, order).astype(np.float32)
    if scores is not None:
        conf = np.transpose(scores, [sdims.index(d) for d in ("frame", "track", "node")])
        conf = conf.astype(np.float32)
    else:
        conf = np.ones(kp.shape[:3], np.float32)
    named = len(names) == kp.shape[1]
    if not named:
        names = [f"track_{i}" for i in range(kp.shape[1])]
    occ = np.isfinite(kp).all(-1).any(-1)
    keep = pick_tracks(path, occ, names, animals) if kp.shape[1] > 1 else [0]
    kp, conf = kp[:, keep], conf[:, keep]
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf = np.where(missing, 0.0, np.nan_to_num(conf, nan=1.0)).astype(np.float32)
    return kp, conf, parts, [names[i] for i in keep] if named else None


def peek_sleap_h5(f: h5py.File) -> tuple[list[str], int]:
    """Node names and frame count of an open analysis h5 (``tracks``' shape; no frame read)."""
    tracks = f["tracks"]
    dims = json.loads(tracks.attrs.get("dims", '["track", "xy", "node", "frame"]'))
    return strings(f["node_names"][()]), int(tracks.shape[dims.index("frame")])


def peek_slp(path: Path) -> tuple[list[str] | None, None]:
    """Node names of the first skeleton in a ``.slp``'s metadata (frame count not read)."""
    from sleap_io.io.slp import read_skeletons

    skeletons = read_skeletons(str(path))
    return [str(n.name) for n in skeletons[0].nodes] if skeletons else None, None
