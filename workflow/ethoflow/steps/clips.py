"""Step of ``rules/clips.smk``: cut the clips of a session's proposals out of its video."""

from __future__ import annotations

from .. import results
from ..clips import extract_clips
from ..proposals import clip_windows


def cut_clips(
    video: str,
    proposals: str,
    pose_h5: str,
    clips: str,
    cfg: dict,
    clip_seconds: float,
    threads: int = 1,
) -> None:
    """Sampled frames of every clip of a session, one h5."""
    attrs = results.read_pose_attrs(pose_h5)
    fps = float(attrs["fps"])
    windows = clip_windows(results.read_proposals(proposals), attrs["n_frames"], fps, clip_seconds)
    offset = int(attrs.get("frame_offset", 0))
    windows = windows.assign(
        start_frame=windows.start_frame + offset, end_frame=windows.end_frame + offset
    )
    extract_clips(
        video,
        windows,
        clips,
        fps_out=cfg["fps"],
        frames_per_clip=cfg["frames_per_clip"],
        size=cfg["size"],
        pose_fps=fps,
        fps_tolerance=cfg["fps_tolerance"],
        threads=threads,
        codec=cfg.get("codec", "jpeg"),
        jpeg_quality=cfg.get("jpeg_quality", 90),
    )
