"""Steps of ``rules/clips.smk``: the cohort's GPU budget (which clips go to the VLM) and
cutting a session's clips out of its video."""

from __future__ import annotations

import logging

from .. import results
from ..clips import extract_clips
from ..proposals import clip_windows

log = logging.getLogger("ethoflow")


def clip_budget(
    stage1: list[str],
    proposals: list[str],
    selection: str,
    tradeoff: str,
    session_keys: list[str],
    budget_gpu_hours: float,
    seconds_per_clip: float,
    clip_seconds: float,
    time_limit: float = 120.0,
) -> None:
    """Solve the cohort's clip selection once (``budget.select_clips``: the most stage-1
    mass within ``budget_gpu_hours``, each clip costing ``seconds_per_clip`` GPU seconds)
    and write it with the trade-off table. Failed sessions are left out."""
    from .. import budget

    keys, stage1, proposals = results.usable(session_keys, stage1, proposals)
    windows, p_action = budget.sessions_inputs(stage1, proposals, clip_seconds)
    budget_s = float(budget_gpu_hours) * 3600
    masks = budget.choose_clips(windows, p_action, seconds_per_clip, budget_s, time_limit)
    table = budget.selection_table(keys, windows, p_action, masks)
    results.write_selection(table, selection)
    trade = budget.tradeoff_table(
        windows, p_action, seconds_per_clip, budget_s, masks, time_limit=time_limit
    )
    results.write_table(trade, tradeoff)
    log.info(
        "GPU budget %.3g h at %.3g s per clip: %d of %d clips chosen\n%s",
        budget_gpu_hours,
        seconds_per_clip,
        int(table["chosen"].sum()),
        len(table),
        trade.to_string(index=False),
    )


def cut_clips(
    video: str,
    proposals: str,
    pose_h5: str,
    clips: str,
    cfg: dict,
    clip_seconds: float,
    selected: list | None = None,
) -> None:
    """Sampled frames of every clip of a session, one h5. With a GPU budget (``selected``:
    the session's chosen windows, ``[[start, end], ...]`` in session frames, from the
    cohort's selection table), only the chosen clips."""
    attrs = results.read_pose_attrs(pose_h5)
    fps = float(attrs["fps"])
    windows = clip_windows(results.read_proposals(proposals), attrs["n_frames"], fps, clip_seconds)
    if selected is not None:
        from ..budget import keep_windows

        n_all = len(windows)
        windows = keep_windows(windows, selected)
        log.info("GPU budget: %d of the session's %d clips chosen", len(windows), n_all)
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
        codec=cfg.get("codec", "jpeg"),
        jpeg_quality=cfg.get("jpeg_quality", 90),
    )
