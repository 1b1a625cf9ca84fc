"""Stage-2 GPU economy: clips, GPU-hours and SLURM hours of a cohort, and VLM job runtimes.

The clips of a session come from its stage-1 proposals (``results/proposals/{s}.tsv`` through
``proposals.clip_windows``, as ``cut_clips`` cuts them) or, before stage 1, from an assumed
coverage: the fraction of the session's duration that ends up in clips (duration from the
sheet's ``n_frames``/``fps`` columns, else the video header).

Speeds are clips per second per GPU kind, model and task (``embed``, ``describe``, ``icl``), in
``data/gpu_throughput.tsv``. Its ``source`` column says where each figure comes from: the GPU
figures are **estimates, not measurements** (no GPU was available when the table was written);
replace them with ``benchmarks/bench_vlm.py`` output when a GPU run exists.

A VLM job asks SLURM for ``margin x (STARTUP_S + clips / speed)``, at least ``minimum``
minutes (``vlm.runtime_margin``, ``vlm.runtime_min``); a group job asks for the sum of its
members, so the SLURM hours of a cohort are the sum of its jobs' requests.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

import pandas as pd

from .errors import InputError

THROUGHPUT = Path(__file__).resolve().parent / "data" / "gpu_throughput.tsv"
THROUGHPUT_COLUMNS = ["gpu", "model", "task", "clips_per_s", "source"]
GPU_KINDS = ("v100", "a40", "h100")
TASKS = ("embed", "describe", "icl")
RULE_TASK = {"vlm_embed": "embed", "vlm_describe": "describe", "vlm_icl": "icl"}
# seconds a VLM job spends before its first clip (imports, model load from a local
# checkpoint): an estimate, not measured
STARTUP_S = 120.0


# ---------------------------------------------------------------- the throughput table
@cache
def _read_throughput(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype={"gpu": str, "model": str, "task": str})
    missing = [c for c in THROUGHPUT_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"throughput table lacks columns {missing}")
    if not (pd.to_numeric(df.clips_per_s, errors="coerce") > 0).all():
        raise InputError(path, "clips_per_s must be a positive number on every row")
    bad = sorted(set(df.task) - set(TASKS))
    if bad:
        raise InputError(path, f"unknown task(s) {bad} (known: {', '.join(TASKS)})")
    df["gpu"], df["model"] = df.gpu.str.lower(), df.model.str.lower()
    if df.duplicated(["gpu", "model", "task"]).any():
        raise InputError(path, "a gpu x model x task appears more than once")
    return df


def read_throughput(path: str | os.PathLike = THROUGHPUT) -> pd.DataFrame:
    """The table ``gpu, model, task, clips_per_s, source`` (gpu and model lower case)."""
    return _read_throughput(os.fspath(path)).copy()


def model_key(model: str, table: pd.DataFrame) -> str | None:
    """The table's model that a config ``vlm.model`` names, or None.

    ``Qwen/Qwen2.5-VL-3B-Instruct``, ``/models/Qwen2.5-VL-3B-Instruct`` -> ``qwen2.5-vl-3b``;
    ``demo:tiny-qwen2.5-vl`` -> ``tiny-qwen2.5-vl``. The longest table model contained in the
    last path component (lower case) wins.
    """
    name = str(model).removeprefix("demo:").rstrip("/").split("/")[-1].lower()
    hits = [m for m in set(table.model) if m in name]
    return max(hits, key=len) if hits else None


def clips_per_s(table: pd.DataFrame, gpu: str, model: str, task: str) -> float | None:
    """Clips per second of a task on a GPU kind for a table model, or None if not listed."""
    hit = table[(table.gpu == gpu.lower()) & (table.model == model) & (table.task == task)]
    return float(hit.clips_per_s.iloc[0]) if len(hit) else None


def gpu_kind(cfg: dict, table: pd.DataFrame | None = None) -> str:
    """The GPU kind of the VLM jobs: ``slurm.gpu_type`` when the table knows it (the GPU
    SLURM is asked for), else ``vlm.gpu_kind`` (default ``v100``: Great Lakes' ``gpu``)."""
    table = read_throughput() if table is None else table
    asked = str(cfg["slurm"]["gpu_type"] or "").lower()
    if asked and asked in set(table.gpu):
        return asked
    return str(cfg["vlm"]["gpu_kind"]).lower()


def vlm_tasks(cfg: dict) -> list[str]:
    """The VLM tasks the config runs on every video session's clips."""
    from .vocab import TRAINED_MODES

    modes = set(cfg["classifier"]["modes"])
    out = []
    if modes & set(TRAINED_MODES) or cfg["discover"]["enabled"]:
        out.append("embed")
    if cfg["vlm"]["describe"]:
        out.append("describe")
    if "icl" in modes:
        out.append("icl")
    return out


# ---------------------------------------------------------------- job runtimes
def job_minutes(
    n_clips: int, rate: float, margin: float, minimum: int, startup_s: float = STARTUP_S
) -> int:
    """Minutes to ask for one job of ``n_clips`` at ``rate`` clips/s."""
    return max(int(minimum), math.ceil(margin * (startup_s + n_clips / rate) / 60))


def count_clips(path: str | os.PathLike) -> int:
    """Number of clips of a clips h5 (its reader without the frames: cheap)."""
    from . import results

    return int(results.read_clips(path, frames=False)["n_clips"])


def rule_runtime(
    cfg: dict, rule_name: str, clips_paths, fallback: int, table: pd.DataFrame | None = None
) -> int:
    """SLURM minutes of a VLM job from the clip count of its sessions (one clips file, or
    the list of a shard's).

    ``fallback`` (the config's ``resources.<rule>.runtime``) when a clips file does not exist
    yet (a dry run, a DAG built before ``cut_clips`` ran), cannot be read, or the table has no
    speed for the model on this GPU kind. Snakemake re-evaluates callable resources just before
    it submits a job, when the clips exist.
    """
    task = RULE_TASK.get(rule_name)
    if isinstance(clips_paths, str | os.PathLike):
        clips_paths = [clips_paths]
    clips_paths = [str(p) for p in clips_paths or []]
    if task is None or not clips_paths or not all(os.path.isfile(p) for p in clips_paths):
        return int(fallback)
    table = read_throughput() if table is None else table
    model = model_key(cfg["vlm"]["model"], table)
    rate = model and clips_per_s(table, gpu_kind(cfg, table), model, task)
    if not rate:
        return int(fallback)
    from .results import failed_reason

    try:  # a failed session's record has no clips
        n = sum(0 if failed_reason(p) is not None else count_clips(p) for p in clips_paths)
    except (OSError, KeyError):
        return int(fallback)
    vlm = cfg["vlm"]
    return job_minutes(n, rate, vlm["runtime_margin"], vlm["runtime_min"])


# ---------------------------------------------------------------- clips of a cohort
def _cell(row, col) -> str:
    value = row.get(col, "")
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def sheet_duration(row: dict) -> tuple[int, float]:
    """(frames, fps) of a session from its sheet row: ``end_frame`` (else ``n_frames``, else
    the video's frame count) minus ``start_frame``; ``fps`` from the sheet, else the video."""
    start = int(_cell(row, "start_frame") or 0)
    end, n, fps = _cell(row, "end_frame"), _cell(row, "n_frames"), _cell(row, "fps")
    if not (end or n) or not fps:
        from .video import video_info

        info = video_info(row["video"])
        n, fps = n or str(info.n_frames), fps or str(info.fps)
    return int(end or n) - start, float(fps)


def assumed_clips(n_frames: int, fps: float, coverage: float, clip_seconds: float) -> int:
    """Clips of a session of which ``coverage`` (a fraction of its duration) is in clips."""
    return math.ceil(coverage * n_frames / fps / clip_seconds - 1e-9)


def proposal_windows(
    proposals_path, n_frames: int, fps: float, clip_seconds: float
) -> pd.DataFrame:
    """The clip windows ``cut_clips`` cuts from a session's proposals (session frames)."""
    from . import results
    from .proposals import clip_windows

    return clip_windows(results.read_proposals(proposals_path), n_frames, fps, clip_seconds)


def stage1_length(results_dir, k: str) -> tuple[int, float] | None:
    """(frames, fps) of a session from its pose h5, else its stage-1 h5, else None."""
    from . import results

    pose = Path(results_dir) / "pose" / f"{k}.h5"
    if pose.is_file():
        attrs = results.read_pose_attrs(pose)
        return int(attrs["n_frames"]), float(attrs["fps"])
    s1 = Path(results_dir) / "stage1" / f"{k}.h5"
    if s1.is_file():
        st = results.read_stage1(s1)
        return len(st["p_action"]), float(st["fps"])
    return None


def cohort_clips(
    cfg: dict,
    sheet: pd.DataFrame,
    coverage: float = 0.3,
    results_dir: str | os.PathLike = "results",
    use_proposals: bool = True,
) -> pd.DataFrame:
    """One row per video session of the sheet (indexed ``subject/session``): ``source``
    (``proposals`` where stage 1 has run, else ``assumed``), ``n_frames``, ``fps``, ``clips``."""
    clip_seconds = float(cfg["proposals"]["clip_seconds"])
    rows = []
    for k, row in sheet.iterrows():
        row = row.to_dict()
        if not _cell(row, "video"):
            continue
        k = k if "/" in str(k) else f"{row['subject']}/{row['session']}"
        prop = Path(results_dir) / "proposals" / f"{k}.tsv"
        length = stage1_length(results_dir, k) if use_proposals and prop.is_file() else None
        if length:
            n, fps = length
            clips, source = len(proposal_windows(prop, n, fps, clip_seconds)), "proposals"
        else:
            n, fps = sheet_duration(row)
            clips, source = assumed_clips(n, fps, coverage, clip_seconds), "assumed"
        rows.append({"session": k, "source": source, "n_frames": n, "fps": fps, "clips": clips})
    cols = ["session", "source", "n_frames", "fps", "clips"]
    return pd.DataFrame(rows, columns=cols).set_index("session")


# ---------------------------------------------------------------- the estimate
def estimate(
    cfg: dict,
    clips: pd.DataFrame,
    gpus=None,
    table: pd.DataFrame | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """GPU-hours and SLURM hours of a cohort's VLM jobs, one row per GPU kind x task plus a
    ``total`` row per GPU kind: ``gpu, task, sessions, clips, clips_per_s, gpu_hours,
    slurm_hours``. GPU-hours are clips / speed; SLURM hours the sum of the jobs' requested
    runtimes (startup, margin, minimum: ``job_minutes``). ``model`` overrides the table model
    found from ``vlm.model``; ``gpus`` defaults to ``GPU_KINDS`` and every other kind the
    table lists for the model. A task with no speed in the table gets NaN hours."""
    table = read_throughput() if table is None else table
    key = model or model_key(cfg["vlm"]["model"], table)
    if key is None:
        raise InputError(
            THROUGHPUT,
            f"no speeds for model {cfg['vlm']['model']!r} (listed: "
            f"{', '.join(sorted(set(table.model)))}; pass one as the model)",
        )
    if gpus is None:
        listed = sorted(set(table.gpu[table.model == key]) - set(GPU_KINDS))
        gpus = [*GPU_KINDS, *listed]
    vlm = cfg["vlm"]
    margin, minimum = vlm["runtime_margin"], vlm["runtime_min"]
    per_session = clips["clips"].astype(int).tolist()
    rows = []
    for gpu in gpus:
        tot = {"gpu": gpu, "task": "total", "sessions": len(per_session), "clips": 0}
        tot.update(clips_per_s=float("nan"), gpu_hours=0.0, slurm_hours=0.0)
        for task in vlm_tasks(cfg):
            rate = clips_per_s(table, gpu, key, task)
            n = int(sum(per_session))
            if rate:
                gpu_h = n / rate / 3600
                slurm_h = sum(job_minutes(c, rate, margin, minimum) for c in per_session) / 60
            else:
                gpu_h = slurm_h = float("nan")
            rows.append(
                {
                    "gpu": gpu,
                    "task": task,
                    "sessions": len(per_session),
                    "clips": n,
                    "clips_per_s": rate or float("nan"),
                    "gpu_hours": gpu_h,
                    "slurm_hours": slurm_h,
                }
            )
            tot["clips"] += n
            tot["gpu_hours"] += gpu_h
            tot["slurm_hours"] += slurm_h
        rows.append(tot)
    return pd.DataFrame(rows)


def seconds_per_clip(cfg: dict, gpu: str | None = None, table: pd.DataFrame | None = None) -> float:
    """GPU seconds one clip costs over all the config's VLM tasks on a GPU kind (the
    configured one by default): the cost of a clip in the GPU budget."""
    table = read_throughput() if table is None else table
    gpu = gpu or gpu_kind(cfg, table)
    key = model_key(cfg["vlm"]["model"], table)
    rates = [clips_per_s(table, gpu, key, t) if key else None for t in vlm_tasks(cfg)]
    if not all(rates):
        raise InputError(THROUGHPUT, f"no speed for {cfg['vlm']['model']!r} on {gpu}")
    return float(sum(1 / r for r in rates))


def format_estimate(est: pd.DataFrame, clips: pd.DataFrame, model: str) -> str:
    """The estimate as text: sources of the clip counts, then one block per GPU kind."""
    src = clips["source"].value_counts().to_dict()
    lines = [
        f"{len(clips)} video sessions, {int(clips['clips'].sum())} clips "
        f"({src.get('proposals', 0)} sessions from stage-1 proposals, "
        f"{src.get('assumed', 0)} from the assumed coverage); model {model}",
        "speeds: " + os.path.relpath(THROUGHPUT) + " (GPU figures are estimates, not measured)",
        "",
        f"{'gpu':<6}{'task':<10}{'clips':>9}{'clips/s':>9}{'GPU-h':>10}{'SLURM-h':>10}",
    ]
    for r in est.itertuples(index=False):
        rate = "" if math.isnan(r.clips_per_s) else f"{r.clips_per_s:.3g}"
        lines.append(
            f"{r.gpu:<6}{r.task:<10}{r.clips:>9}{rate:>9}{r.gpu_hours:>10.2f}{r.slurm_hours:>10.2f}"
        )
    return "\n".join(lines)
