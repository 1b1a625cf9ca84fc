import os
import re
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from ethoflow import budget as ethoflow_budget
from ethoflow import config as ethoflow_config
from ethoflow import estimate as ethoflow_estimate
from ethoflow import results as ethoflow_results
from ethoflow import sheet as ethoflow_sheet
from ethoflow.errors import InputError
from ethoflow.vocab import MODES, POSE_MODES, STAGE2_MODES, TRAINED_MODES

# Every config and sheet problem at once, before any job: unknown keys with the nearest valid
# one, bad values, each bad cell and file of the sheet with its line. validate fills defaults.
ethoflow_config.check_config(config, source=workflow.configfiles)
validate(config, schema="../schemas/config.schema.yaml")
# With on_bad_session: skip (the default) a sheet row whose files exist but are bad (empty,
# unreadable, lacking keypoints, shorter than its frame range) is left out (EXCLUDED: key ->
# reason, in results/failed_sessions.tsv and the report) instead of stopping the cohort.
# Errors of the sheet itself (cells, columns, setups, wrong paths) stop the run before any job.
EXCLUDED = {} if config["on_bad_session"] == "skip" else None
SHEET = ethoflow_sheet.check_sheet(
    ethoflow_sheet.read_sheet(config["sessions"]),
    config["sessions"],
    config["setups"],
    fps_tolerance=config["clips"]["fps_tolerance"],
    length_tolerance=config["pose"]["length_tolerance_frames"],
    cache=".snakemake/ethoflow/file_headers.json",
    excluded=EXCLUDED,
)
EXCLUDED = EXCLUDED or {}
for _key, _reason in EXCLUDED.items():
    print(
        f"ethoflow: session {_key} left out of the cohort: {_reason}", file=sys.stderr
    )
ROWS = SHEET.to_dict("index")
SETUPS = sorted(set(SHEET["setup"]))
VLM_RULES = ("vlm_embed", "vlm_describe", "vlm_icl")
DEMO_PREFIX = "demo:"


wildcard_constraints:
    subject="[A-Za-z0-9][A-Za-z0-9_.-]*",
    session="[A-Za-z0-9][A-Za-z0-9_.-]*",
    setup="|".join(re.escape(s) for s in SETUPS),
    mode="|".join(re.escape(m) for m in MODES),


# ---------------------------------------------------------------- sheet lookups
def key(wc):
    return f"{wc.subject}/{wc.session}"


def row(wc):
    return ROWS[key(wc)]


def setup_cfg(wc):
    return config["setups"][row(wc)["setup"]]


POSE_KEYS = ("fps", "animals", "skeleton", "head", "tail", "keypoint_aliases")


def setup_pose_cfg(wc):
    """The pose-related part of a setup (a changed prompt must not rerun ingest)."""
    cfg = setup_cfg(wc)
    return {k: cfg[k] for k in POSE_KEYS if k in cfg}


def has_video(k):
    return bool(ROWS[k]["video"])


def has_labels(k):
    return bool(ROWS[k]["annotations"])


_SESSIONS_CACHE = {}


def sessions(setup=None, splits=None, video=None, labels=None):
    """Keys subject/session of the sheet rows matching every given condition (memoized:
    input functions call this for every job, so a 1,000-session DAG stays linear)."""
    args = (setup, None if splits is None else tuple(splits), video, labels)
    if args not in _SESSIONS_CACHE:
        _SESSIONS_CACHE[args] = [
            k
            for k, r in ROWS.items()
            if (setup is None or r["setup"] == setup)
            and (splits is None or r["split"] in splits)
            and (video is None or bool(r["video"]) == video)
            and (labels is None or bool(r["annotations"]) == labels)
        ]
    return list(_SESSIONS_CACHE[args])


def setup_has_video(setup):
    return bool(sessions(setup=setup, video=True))


def modes_for_setup(setup):
    modes = config["classifier"]["modes"]
    return modes if setup_has_video(setup) else [m for m in modes if m in POSE_MODES]


def modes_for_session(k):
    modes = modes_for_setup(ROWS[k]["setup"])
    return modes if has_video(k) else [m for m in modes if m in POSE_MODES]


def eval_sessions(setup, mode):
    """Annotated sessions that evaluate a mode: the test split, else every annotated one."""
    video = None if mode in POSE_MODES else True
    test = sessions(setup=setup, splits=("test",), labels=True, video=video)
    return test or sessions(setup=setup, labels=True, video=video)


def train_sessions(setup, mode="pose"):
    video = None if mode in POSE_MODES else True
    return sessions(setup=setup, splits=("train",), labels=True, video=video)


def expand_keys(pattern, keys):
    return [pattern.format(k=k) for k in keys]


def frame_range(wc):
    r = row(wc)
    return {
        "start": int(r["start_frame"]) if r["start_frame"] else 0,
        "end": int(r["end_frame"]) if r["end_frame"] else None,
    }


# ---------------------------------------------------------------- resources
def res(rule_name, item):
    spec = dict(config["resources"]["default"])
    spec.update(config["resources"].get(rule_name, {}))
    return spec[item]


def partition(rule_name):
    slurm = config["slurm"]
    if rule_name in VLM_RULES:
        return slurm["gpu_partition"]
    return slurm["cpu_partition"]


def slurm_account():
    """The account: config `slurm.account`, else $SBATCH_ACCOUNT or $SLURM_ACCOUNT."""
    for value in (
        config["slurm"]["account"],
        os.environ.get("SBATCH_ACCOUNT"),
        os.environ.get("SLURM_ACCOUNT"),
    ):
        if value:
            return value
    return ""


def gpu_gres(rule_name):
    """GRES request of a rule: <name>[:<type>]:<gpus>, or "" (no GPUs, or GRES off)."""
    slurm = config["slurm"]
    n, name = res(rule_name, "gpus"), slurm["gpu_gres"]
    if not n or not name:
        return ""
    kind = slurm["gpu_type"]
    return f"{name}:{kind}:{n}" if kind else f"{name}:{n}"


def vlm_runtime(rule_name):
    """Runtime (minutes) of a VLM job from its session's clip count, the GPU speed table and
    vlm.runtime_margin / vlm.runtime_min (ethoflow.estimate.rule_runtime). Snakemake calls
    it again just before it submits the job, when the clips exist; before that (a dry run),
    or for a model the table does not list, it gives resources.<rule>.runtime."""
    fallback = res(rule_name, "runtime")

    def runtime(wildcards, input):
        return ethoflow_estimate.rule_runtime(config, rule_name, input.clips, fallback)

    return runtime


def rule_resources(rule_name):
    """Cluster resources of a rule, all taken from config (never from its own directives).
    The SLURM executor plugin turns them into sbatch flags (-p, -t, --mem,
    --cpus-per-task, --gres, -A); none goes through slurm_extra, which the plugin
    refuses for the flags it manages."""
    vlm = rule_name in VLM_RULES
    out = {
        "runtime": vlm_runtime(rule_name) if vlm else res(rule_name, "runtime"),
        "mem_mb": res(rule_name, "mem_mb"),
        "cpus_per_task": res(rule_name, "cpus"),
        "slurm_partition": partition(rule_name),
    }
    gres = gpu_gres(rule_name)
    if gres:
        out["gres"] = gres
    account = slurm_account()
    if account:
        out["slurm_account"] = account
    return out


# ---------------------------------------------------------------- VLM model
def vlm_is_demo():
    return config["vlm"]["model"].startswith(DEMO_PREFIX)


def vlm_model_dir():
    name = config["vlm"]["model"][len(DEMO_PREFIX) :]
    return f"resources/models/{name}"


def vlm_model():
    return vlm_model_dir() if vlm_is_demo() else config["vlm"]["model"]


def vlm_model_input(wc):
    return [vlm_model_dir()] if vlm_is_demo() else []


def vlm_prompt(wc):
    return setup_cfg(wc)["prompt"]


# What each VLM step gets as one dict: the model and how to load
# it, plus the keys of its own task only, so that a changed description prompt reruns
# descriptions, never embeddings or ICL.
VLM_LOAD_KEYS = ("revision", "dtype", "attn", "gpu_preprocess", "batch_size")


def vlm_settings(*task_keys, **extra):
    vlm = config["vlm"]
    keys = (*VLM_LOAD_KEYS, *task_keys)
    return {"model": vlm_model(), **{k: vlm[k] for k in keys}, **extra}


# ---------------------------------------------------------------- GPU budget (clips.smk)
# With vlm.budget_gpu_hours set, the checkpoint clip_budget chooses the cohort's clips once;
# each cut_clips takes the selection as an ancient() input (its mtime never reruns a
# session) and its own chosen windows as a param, read after the checkpoint has run: a
# session is cut again only when its own chosen windows change (the params rerun trigger).
BUDGET_GPU_HOURS = config["vlm"]["budget_gpu_hours"]
# cut_clips' group job on a cluster (profiles/slurm groups localize into stage1 too)
CUT_CLIPS_GROUP = "stage1" if BUDGET_GPU_HOURS is None else "clips"


def budget_seconds_per_clip():
    """GPU seconds per clip of the budget: vlm.budget_seconds_per_clip, else the speed table
    (ethoflow.estimate.seconds_per_clip); checked before any job when a budget is set.
    """
    if BUDGET_GPU_HOURS is None:
        return None
    given = config["vlm"]["budget_seconds_per_clip"]
    if given is not None:
        return float(given)
    try:
        return ethoflow_estimate.seconds_per_clip(config)
    except InputError as err:
        raise InputError(
            "config vlm.budget_gpu_hours",
            f"set, but the GPU cost of a clip is unknown ({err}); set "
            "vlm.budget_seconds_per_clip, or a vlm.gpu_kind the table lists",
        ) from None


def budget_keys():
    """The sessions whose clips compete for the budget: every video session."""
    return sessions(video=True) if BUDGET_GPU_HOURS is not None else []


_SELECTION_CACHE = {}


def budget_selection(wc):
    """The cohort selection file (from the checkpoint), flagged ancient."""
    return ancient(checkpoints.clip_budget.get().output.selection)


def budget_selected(wc):
    """This session's chosen windows [[start, end], ...] (session frames), read from the
    checkpoint's selection once per file version."""
    path = checkpoints.clip_budget.get().output.selection
    stamp = (path, os.stat(path).st_mtime_ns)
    if stamp not in _SELECTION_CACHE:
        _SELECTION_CACHE.clear()
        _SELECTION_CACHE[stamp] = ethoflow_budget.chosen_by_session(
            ethoflow_results.read_selection(path)
        )
    return _SELECTION_CACHE[stamp].get(key(wc), [])


def cut_clips_budget_input():
    return {} if BUDGET_GPU_HOURS is None else {"selection": budget_selection}


def cut_clips_budget_params():
    return {} if BUDGET_GPU_HOURS is None else {"selected": budget_selected}


# ---------------------------------------------------------------- targets
def session_final_outputs():
    """(key, path) of every per-session file at the end of the DAG: a failure record in any
    of them names a failed session (rule failed_sessions)."""
    out = []
    for k in SHEET.index:
        out.append((k, f"results/qc/{k}.tsv"))
        if has_labels(k):
            out.append((k, f"results/labels/{k}.csv"))
        for mode in modes_for_session(k):
            out.append((k, f"results/behavior/{mode}/{k}.csv"))
            out.append((k, f"results/behavior/{mode}/{k}.events.csv"))
            out.append((k, f"results/behavior/{mode}/{k}.nwb"))
        if has_video(k) and config["vlm"]["describe"]:
            out.append((k, f"results/descriptions/{k}.jsonl"))
    return out


def get_final_output():
    out = ["results/summary/time_budget.tsv", "results/report/index.html"]
    out += ["results/failed_sessions.tsv"]
    out += [path for _, path in session_final_outputs()]
    if any(eval_sessions(s, "pose") for s in SETUPS):
        out.append("results/metrics/comparison.tsv")
    return out


# ---------------------------------------------------------------- classify.smk inputs
def classify_inputs(wc):
    k = key(wc)
    setup = row(wc)["setup"]
    out = {"pose_h5": f"results/pose/{k}.h5"}
    if wc.mode == "kinematic":  # the speed rule needs no stage 1
        out["model"] = f"results/models/{setup}/kinematic.json"
        return out
    out["stage1"] = f"results/stage1/{k}.h5"
    if wc.mode in STAGE2_MODES:
        out["clips"] = f"results/clips/{k}.h5"
    if wc.mode in TRAINED_MODES:
        out["embeddings"] = f"results/embeddings/{k}.h5"
        out["model"] = f"results/models/{setup}/classifier_{wc.mode}.pkl"
    if wc.mode == "icl":
        out["icl"] = f"results/icl/{k}.h5"
    return out


def train_classifier_inputs(wc):
    keys = train_sessions(wc.setup, wc.mode)
    return {
        "pose": expand_keys("results/pose/{k}.h5", keys),
        "clips": expand_keys("results/clips/{k}.h5", keys),
        "embeddings": expand_keys("results/embeddings/{k}.h5", keys),
        "labels": expand_keys("results/labels/{k}.csv", keys),
    }


# ---------------------------------------------------------------- cohort.smk inputs
def evaluated_pairs():
    """(setup, mode) pairs that have annotated sessions to evaluate on."""
    return [(s, m) for s in SETUPS for m in modes_for_setup(s) if eval_sessions(s, m)]


def primary_mode(k):
    modes = modes_for_session(k)
    primary = config["classifier"]["primary"]
    return primary if primary in modes else modes[0]


def primary_behavior(keys):
    return [f"results/behavior/{primary_mode(k)}/{k}.csv" for k in keys]


def discover_keys():
    return sessions(video=True) if config["discover"]["enabled"] else []


def report_inputs(wc):
    keys = list(SHEET.index)
    out = {
        "behavior": primary_behavior(keys),
        "qc": expand_keys("results/qc/{k}.tsv", keys),
        "summary": "results/summary/time_budget.tsv",
        "group_plot": "results/summary/group_comparison.png",
        "failed": "results/failed_sessions.tsv",
        "stage1_logs": [
            f"results/models/{s}/localizer_training.json"
            for s in SETUPS
            if train_sessions(s)
        ],
    }
    if evaluated_pairs():
        out["comparison"] = "results/metrics/comparison.tsv"
        out["metrics"] = [f"results/metrics/{s}/{m}.tsv" for s, m in evaluated_pairs()]
        out["confusion"] = [
            f"results/metrics/{s}/{m}_confusion.png" for s, m in evaluated_pairs()
        ]
    if BUDGET_GPU_HOURS is not None:
        out["budget_tradeoff"] = "results/budget/tradeoff.tsv"
    if discover_keys():
        out["clusters"] = "results/discover/clusters.tsv"
        out["novel"] = "results/discover/candidates.tsv"
        out["usage_plot"] = "results/discover/usage.png"
        out["clips"] = expand_keys("results/clips/{k}.h5", discover_keys())
        out["pose"] = expand_keys("results/pose/{k}.h5", discover_keys())
    return out
