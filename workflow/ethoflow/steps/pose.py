"""Steps of ``rules/pose.smk``: ingest (pose_preprocess) and per-frame labels."""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd

from .. import results
from ..annotations import OVERHANG_S, load_annotations
from ..errors import InputError
from ..features import compute_features
from ..kinematic import kinematic_labels
from ..pose_io import check_length, load_pose
from ..repair import repair_pose
from ..sheet import RULE_PREFIX, fps_differ, head_tail
from ..video import video_info

log = logging.getLogger("ethoflow")


def optional(path) -> str | None:
    """An optional single input: '' or [] mean absent."""
    if isinstance(path, list | tuple):
        return path[0] if path else None
    return path or None


def pose_preprocess(
    pose: str,
    video,
    pose_h5: str,
    qc: str,
    fmt: str,
    setup: dict,
    pose_cfg: dict,
    features_cfg: dict,
    frames: dict,
    fps_tolerance: float,
    session: dict | None = None,
) -> None:
    """Any pose format -> repaired, cropped canonical pose h5 with features, plus a QC table.

    ``session`` (``sheet.session_params``): the setup's name, the sheet's ``fps`` and
    ``px_per_cm``. The session's fps is its video's, else the sheet's, else the pose file's own
    (NWB, CalMS21), else the setup's; the pose file's, the sheet's and the video's must agree
    within ``fps_tolerance`` (relative, ``clips.fps_tolerance``). The h5's attrs ``fps`` (that
    rate) and ``px_per_cm`` (the sheet's, else the setup's; NaN when unknown) describe the
    session. A frame range past the recording (the shorter of pose and video) is an error.

    The QC table has one row per animal x keypoint (``dropped`` False) and one row per file
    keypoint beyond the skeleton (``dropped`` True, ``animal`` empty, metrics empty).
    """
    session = session or {}
    video = optional(video)
    sheet_fps = session.get("fps")
    info = video_info(video) if video else None
    if info is not None and sheet_fps and fps_differ(sheet_fps, info.fps, fps_tolerance):
        raise InputError(
            video,
            f"video runs at {info.fps:.3f} fps but the sheet's fps column says {sheet_fps:g} "
            f"(beyond clips.fps_tolerance {fps_tolerance:g})",
        )
    p = load_pose(
        pose,
        fmt,
        fps=info.fps if info is not None else (sheet_fps or setup["fps"]),
        skeleton=setup["skeleton"],
        animals=setup["animals"],
        keypoint_aliases=setup.get("keypoint_aliases") or {},
        setup=session.get("setup"),
        roles=head_tail(setup),
    )
    n_source = p.keypoints.shape[0]
    feat_cfg = {**features_cfg, "head": setup.get("head"), "tail": setup.get("tail")}
    n_video = None
    if info is not None:
        n_video = info.n_frames
        feat_cfg["frame_size"] = [info.width, info.height]
        check_length(n_source, info.n_frames, pose_cfg["length_tolerance_frames"], pose)
        if fps_differ(p.fps, info.fps, fps_tolerance):
            raise InputError(
                video,
                f"video runs at {info.fps:.3f} fps but the pose ({pose}) at {p.fps:.3f} fps "
                f"(beyond clips.fps_tolerance {fps_tolerance:g})",
            )
        p = dataclasses.replace(p, fps=info.fps)  # frames are the video's
    elif sheet_fps and fps_differ(p.fps, sheet_fps, fps_tolerance):
        raise InputError(
            pose,
            f"the pose file runs at {p.fps:.3f} fps but the sheet's fps column says "
            f"{sheet_fps:g} (beyond clips.fps_tolerance {fps_tolerance:g})",
        )
    start = int(frames.get("start") or 0)
    end = frames.get("end")
    n_rec = n_source if n_video is None else min(n_source, n_video)
    what = f"the pose file has {n_source} frames" + (
        f", the video {n_video}" if n_video is not None else ""
    )
    if end is not None and int(end) > n_rec:
        raise InputError(
            pose, f"end_frame {int(end)} of the sheet is beyond the recording ({what})"
        )
    if start >= n_rec:
        raise InputError(pose, f"start_frame {start} of the sheet is beyond the recording ({what})")
    end = n_source if end is None else int(end)
    if start >= end:
        raise InputError(pose, f"frame range {start}:{end} is empty (pose has {n_source} frames)")
    px = session.get("px_per_cm", setup.get("px_per_cm"))
    extra = {
        "frame_offset": start,
        "n_source_frames": n_source,
        "px_per_cm": float(px) if px else float("nan"),
    }
    if n_video is not None:
        extra["n_video_frames"] = n_video
    p = dataclasses.replace(p, keypoints=p.keypoints[start:end], confidence=p.confidence[start:end])
    p, qc_table = repair_pose(p, pose_cfg["min_confidence"], pose_cfg["max_gap_frames"])
    qc_table = with_dropped(qc_table, p.dropped_keypoints)
    feats, names = compute_features(p, feat_cfg)
    results.write_pose(pose_h5, p, feats, names, extra_attrs=extra)
    results.write_table(qc_table, qc)
    log.info("%s: %d frames at %.3f fps, %d features", pose, end - start, p.fps, feats.shape[1])


def with_dropped(qc_table: pd.DataFrame, dropped: list[str]) -> pd.DataFrame:
    """The QC table plus a ``dropped`` column and a row per dropped keypoint."""
    qc_table = qc_table.assign(dropped=False)
    if not dropped:
        return qc_table
    extra = pd.DataFrame({"animal": "", "keypoint": list(dropped), "dropped": True})
    return pd.concat([qc_table, extra], ignore_index=True)[list(qc_table.columns)]


def labels(
    pose_h5: str,
    annotations,
    labels: str,
    rule: str,
    behaviors: list[str],
    setup: dict,
    kinematic: dict,
    behavior_map: dict | None = None,
    session: dict | None = None,
) -> None:
    """Per-frame labels of a session: converted annotations (their behavior names mapped
    through the setup's ``behavior_map``), or the kinematic rule.

    Annotations are of the whole pose file (cropped like the pose afterwards); reaching more
    than ``annotations.OVERHANG_S`` seconds past its end is an error naming the file.
    ``session`` (``sheet.annotation_params``): the sheet's subject and
    ``annotation_subjects``, which pick the BORIS subjects whose events label the session.
    """
    session = session or {}
    pose, _, _ = results.read_pose(pose_h5)
    attrs = results.read_pose_attrs(pose_h5)
    n = pose.keypoints.shape[0]
    annotations = optional(annotations)
    if annotations is None:
        if rule != f"{RULE_PREFIX}kinematic":
            raise InputError(pose_h5, f"unknown label rule {rule!r}")
        y = kinematic_labels(
            pose.keypoints,
            pose.fps,
            pose.keypoint_names,
            behaviors,
            setup.get("head", pose.keypoint_names[0]),
            setup.get("tail", pose.keypoint_names[-1]),
            kinematic,
            source=pose_h5,
        )
    else:
        offset = int(attrs.get("frame_offset", 0))
        total = int(attrs.get("n_source_frames", offset + n))
        y = load_annotations(
            annotations,
            total,
            behaviors,
            pose.fps,
            behavior_map=behavior_map or {},
            subjects=session.get("annotation_subjects"),
            subject=session.get("subject") or None,
            n_animals=len(setup.get("animals") or pose.animal_ids),
            overhang_s=OVERHANG_S,
        )[offset : offset + n]
    results.write_labels(labels, y, behaviors)
