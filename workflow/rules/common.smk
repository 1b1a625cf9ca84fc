import functools
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
from ethoflow import shards as ethoflow_shards
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


def sheet_records(*columns):
    """The sheet's rows as dicts of ``columns`` (params of the cohort steps)."""
    return [{c: r[c] for c in columns} for r in ROWS.values()]


SETUPS = sorted(set(SHEET["setup"]))
VLM_RULES = ("vlm_embed", "vlm_describe", "vlm_icl")
DEMO_PREFIX = "demo:"


wildcard_constraints:
    setup="|".join(re.escape(s) for s in SETUPS),
    mode="|".join(re.escape(m) for m in MODES),
    shard="[^/]+",


# ---------------------------------------------------------------- shards
# Each per-session rule runs one job per shard (ethoflow.shards). A shard holds sessions of one
# setup and split: they are spread over config `shards` buckets by a hash of subject/session.
SHARDS = ethoflow_shards.assign(
    ((k, r["setup"], r["split"]) for k, r in ROWS.items()), config["shards"]
)
SHARD_OF = {k: s for s, keys in SHARDS.items() for k in keys}


class SessionWildcards:
    """The wildcards a per-session input or params function sees for one session."""

    def __init__(self, k, mode=None):
        self.subject, self.session = k.split("/")
        self.mode = mode


def manifest(rule_name, shard):
    return f"results/shards/{rule_name}/{shard}.tsv"


def manifests(rule_name, keys):
    """The manifests of the shards that hold ``keys`` (a cohort step's trigger inputs)."""
    return [manifest(rule_name, s) for s in sorted({SHARD_OF[k] for k in keys})]


def shard_setup(wc):
    return ROWS[SHARDS[wc.shard][0]]["setup"]


def shard_sessions(wc, video=None, labels=None):
    """The keys of a shard job's sessions (with or without video, or annotations)."""
    keys = SHARDS[wc.shard]
    if video is not None:
        keys = [k for k in keys if has_video(k) == video]
    if labels is not None:
        keys = [k for k in keys if has_labels(k) == labels]
    return keys


def shard_files(*columns, **select):
    """Input function: the sheet files (columns pose, video, annotations...) of a shard."""

    def files(wc):
        out = []
        for k in shard_sessions(wc, **select):
            out += [
                ROWS[k][c]
                for c in columns
                if ROWS[k][c] and not ROWS[k][c].startswith(ethoflow_sheet.RULE_PREFIX)
            ]
        return sorted(set(out))

    return files


def shard_calls(rule_name, call, by_mode=False, **select):
    """Params function: one ``{session, input, output, params, log}`` per session of the
    shard (per session and classification mode with ``by_mode``), ``call(wildcards)``
    giving the session's input, output and params as a rule would (ethoflow.smk.run_shard).
    """

    def calls(wc):
        out = []
        for k in shard_sessions(wc, **select):
            for mode in modes_for_session(k) if by_mode else [None]:
                spec = call(SessionWildcards(k, mode))
                spec.update(session=k, log=f"logs/{rule_name}/{k}.log")
                if mode:
                    spec.update(tag=mode, log=f"logs/{rule_name}/{mode}/{k}.log")
                out.append(spec)
        return out

    return calls


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
    input functions call this for every job, so a large DAG stays linear; the list is
    shared: read it, never change it)."""
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
    return _SESSIONS_CACHE[args]


def setup_has_video(setup):
    return bool(sessions(setup=setup, video=True))


@functools.cache
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
    """Runtime (minutes) of a VLM job from its shard's clip count, the GPU speed table and
    vlm.runtime_margin / vlm.runtime_min (ethoflow.estimate.rule_runtime). Snakemake calls
    it again just before it submits the job, when the clips exist; before that (a dry run),
    or for a model the table does not list, it gives resources.<rule>.runtime."""
    fallback = res(rule_name, "runtime")

    def runtime(wildcards, input):
        clips = expand_keys(
            "results/clips/{k}.h5", shard_sessions(wildcards, video=True)
        )
        return ethoflow_estimate.rule_runtime(config, rule_name, clips, fallback)

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
    """The setup's prompt (of a shard job: its sessions share one setup)."""
    return config["setups"][shard_setup(wc)]["prompt"]


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


def cut_clips_budget_params(wc):
    """A session's chosen windows (only with a budget): they, not the selection file's
    time, decide whether its clips are cut again."""
    return {} if BUDGET_GPU_HOURS is None else {"selected": budget_selected(wc)}


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


def final_manifests():
    """The manifests of every shard's last steps: they pull every per-session step."""
    keys = list(SHEET.index)
    out = manifests("pose_preprocess", keys) + manifests("classify", keys)
    out += manifests("labels", [k for k in keys if has_labels(k)])
    if config["vlm"]["describe"]:
        out += manifests("vlm_describe", sessions(video=True))
    return out


def get_final_output():
    out = ["results/summary/time_budget.tsv", "results/report/index.html"]
    out += ["results/failed_sessions.tsv"]
    out += final_manifests()
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


def classify_shard_inputs(wc):
    """The manifests and models a classify shard job waits for: those of every mode its
    sessions are classified in."""
    setup = shard_setup(wc)
    modes = {m for k in SHARDS[wc.shard] for m in modes_for_session(k)}
    out = {"pose_shard": manifest("pose_preprocess", wc.shard)}
    if "kinematic" in modes:
        out["kinematic"] = f"results/models/{setup}/kinematic.json"
    if modes - {"kinematic"}:
        out["localize_shard"] = manifest("localize", wc.shard)
    if modes & set(STAGE2_MODES):
        out["clips_shard"] = manifest("cut_clips", wc.shard)
    trained = sorted(modes & set(TRAINED_MODES))
    if trained:
        out["embeddings_shard"] = manifest("vlm_embed", wc.shard)
        out["models"] = [f"results/models/{setup}/classifier_{m}.pkl" for m in trained]
    if "icl" in modes:
        out["icl_shard"] = manifest("vlm_icl", wc.shard)
    return out


def train_classifier_inputs():
    """Params of train_classifier: the per-session files of the training sessions."""

    def files(pattern):
        return lambda wc: expand_keys(pattern, train_sessions(wc.setup, wc.mode))

    return {
        "pose": files("results/pose/{k}.h5"),
        "clips": files("results/clips/{k}.h5"),
        "embeddings": files("results/embeddings/{k}.h5"),
        "labels": files("results/labels/{k}.csv"),
    }


def train_classifier_shards(wc):
    keys = train_sessions(wc.setup, wc.mode)
    return {
        "pose_shards": manifests("pose_preprocess", keys),
        "clips_shards": manifests("cut_clips", keys),
        "embeddings_shards": manifests("vlm_embed", keys),
        "labels_shards": manifests("labels", keys),
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
    """The report's inputs: the cohort's tables and plots, and the manifests of the shards
    whose per-session files it reads (named in report_sessions)."""
    keys = list(SHEET.index)
    out = {
        "summary": "results/summary/time_budget.tsv",
        "group_plot": "results/summary/group_comparison.png",
        "failed": "results/failed_sessions.tsv",
        "stage1_logs": [
            f"results/models/{s}/localizer_training.json"
            for s in SETUPS
            if train_sessions(s)
        ],
        "behavior_shards": manifests("classify", keys),
        "qc_shards": manifests("pose_preprocess", keys),
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
        out["clips_shards"] = manifests("cut_clips", discover_keys())
    return out


def report_sessions():
    """The per-session files the report reads (params of rule report)."""
    keys = list(SHEET.index)
    out = {
        "behavior": primary_behavior(keys),
        "qc": expand_keys("results/qc/{k}.tsv", keys),
    }
    if discover_keys():
        out["clips"] = expand_keys("results/clips/{k}.h5", discover_keys())
        out["pose"] = expand_keys("results/pose/{k}.h5", discover_keys())
    return out


# ---------------------------------------------------------------- per-session calls
# What a per-session step gets for one session, as a per-session rule's input, output and
# params would give it; the shard rules hand one per session to ethoflow.smk.run_shard.
def pose_preprocess_call(wc):
    k, r = key(wc), row(wc)
    return {
        "input": {"pose": r["pose"], "video": r["video"] or []},
        "output": {"pose_h5": f"results/pose/{k}.h5", "qc": f"results/qc/{k}.tsv"},
        "params": {
            "fmt": r["pose_format"],
            "setup": setup_pose_cfg(wc),
            "frames": frame_range(wc),
            "session": ethoflow_sheet.session_params(r, r["setup"], setup_cfg(wc)),
        },
    }


def labels_call(wc):
    k, r = key(wc), row(wc)
    rule_labels = r["annotations"].startswith(ethoflow_sheet.RULE_PREFIX)
    return {
        "input": {
            "pose_h5": f"results/pose/{k}.h5",
            "annotations": [] if rule_labels else r["annotations"],
        },
        "output": {"labels": f"results/labels/{k}.csv"},
        "params": {
            "rule": r["annotations"],
            "behaviors": setup_cfg(wc)["behaviors"],
            "setup": setup_pose_cfg(wc),
            "behavior_map": setup_cfg(wc)["behavior_map"],
            "session": ethoflow_sheet.annotation_params(r),
        },
    }


def localize_call(wc):
    k = key(wc)
    return {
        "input": {
            "pose_h5": f"results/pose/{k}.h5",
            "model": f"results/models/{row(wc)['setup']}/localizer.pt",
        },
        "output": {
            "stage1": f"results/stage1/{k}.h5",
            "proposals": f"results/proposals/{k}.tsv",
        },
        "params": {"px_per_cm": setup_cfg(wc).get("px_per_cm")},
    }


def cut_clips_call(wc):
    k = key(wc)
    return {
        "input": {
            "video": row(wc)["video"],
            "proposals": f"results/proposals/{k}.tsv",
            "pose_h5": f"results/pose/{k}.h5",
        },
        "output": {"clips": f"results/clips/{k}.h5"},
        "params": cut_clips_budget_params(wc),
    }


def vlm_call(outputs):
    """The per-session call of a VLM rule: the session's clips (and the demo model's
    folder) in, ``outputs`` ({name: pattern of k}) out."""

    def call(wc):
        k = key(wc)
        return {
            "input": {
                "clips": f"results/clips/{k}.h5",
                "model_dir": vlm_model_input(wc),
            },
            "output": {name: pattern.format(k=k) for name, pattern in outputs.items()},
        }

    return call


def vlm_icl_call(wc):
    call = vlm_call({"scores": "results/icl/{k}.h5"})(wc)
    call["input"]["exemplars"] = f"results/models/{row(wc)['setup']}/icl_exemplars.h5"
    return call


def classify_call(wc):
    k = key(wc)
    return {
        "input": classify_inputs(wc),
        "output": {
            "behavior": f"results/behavior/{wc.mode}/{k}.csv",
            "events": f"results/behavior/{wc.mode}/{k}.events.csv",
            "boris": f"results/behavior/{wc.mode}/{k}.boris.csv",
            "nwb": f"results/behavior/{wc.mode}/{k}.nwb",
        },
        "params": {
            "mode": wc.mode,
            "subject": wc.subject,
            "session": wc.session,
            "video": row(wc)["video"],
        },
    }
