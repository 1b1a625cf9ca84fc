"""Stage-2 cost estimate: clips from proposals or an assumed coverage, GPU and SLURM hours,
VLM job runtimes from clip counts; expectations computed by hand."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ethoflow import cli, results
from ethoflow import estimate as est
from ethoflow.errors import InputError

REPO = Path(__file__).resolve().parents[2]

# speeds of a made-up GPU, simple enough to compute by hand
TABLE = "gpu\tmodel\ttask\tclips_per_s\tsource\n" + "".join(
    f"h100\tqwen2.5-vl-3b\t{t}\t{r}\ttest\n" for t, r in (("embed", 2), ("describe", 0.5))
)
SHEET = [
    # subject session setup video pose n_frames fps
    ("a", "s1", "x", "a.mp4", "a.h5", "", ""),  # stage 1 ran: 4 clips
    ("b", "s1", "x", "b.mp4", "b.h5", "", ""),  # stage 1 ran: 1 clip
    ("c", "s1", "x", "c.mp4", "c.h5", "3000", "10"),  # no stage 1: 300 s x 0.3 / 5 s = 18
    ("d", "s1", "x", "", "d.h5", "3000", "10"),  # pose only: no clips
]


def _config_file(path, cfg: dict):
    """A whole config as users write it: the shipped config.yaml with ``cfg``'s sections
    merged in (the CLI checks it against the schema like the workflow does)."""
    full = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for key, value in cfg.items():
        full[key] = {**full[key], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(full))
    return path


def _cfg(sessions="sessions.tsv", **vlm):
    return {
        "sessions": str(sessions),
        "proposals": {"clip_seconds": 5.0},
        "vlm": {"model": "Qwen/Qwen2.5-VL-3B-Instruct", "describe": True, "gpu_kind": "h100"}
        | {"runtime_margin": 2.0, "runtime_min": 10}
        | vlm,
        "classifier": {"modes": ["pose", "linear"], "primary": "pose"},
        "discover": {"enabled": False},
        "slurm": {"gpu_type": ""},
    }


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "speeds.tsv"
    path.write_text(TABLE)
    return est.read_throughput(path)


@pytest.fixture
def cohort(tmp_path):
    """Sheet and results tree: a (1000 frames at 10 fps) with proposals [100,120) and
    [300,420); b (600 frames) with [580,600); c and d without stage 1."""
    res = tmp_path / "results"
    for k, n, props in (("a/s1", 1000, [(100, 120), (300, 420)]), ("b/s1", 600, [(580, 600)])):
        p = np.full(n, 0.5, np.float32)
        results.write_stage1(res / "stage1" / f"{k}.h5", p, np.zeros((n, 2)), 10.0, "m")
        df = pd.DataFrame(props, columns=["start_frame", "end_frame"]).assign(score=0.9)
        (res / "proposals" / k).parent.mkdir(parents=True, exist_ok=True)
        results.write_proposals(df, res / "proposals" / f"{k}.tsv")
    cols = ["subject", "session", "setup", "video", "pose", "n_frames", "fps"]
    sheet = pd.DataFrame(SHEET, columns=cols).assign(pose_format="dlc_h5", split="predict")
    sheet.to_csv(tmp_path / "sessions.tsv", sep="\t", index=False)
    sheet.index = sheet.subject + "/" + sheet.session
    return sheet, res


def test_clips_from_proposals_and_from_the_assumed_coverage(cohort):
    sheet, res = cohort
    clips = est.cohort_clips(_cfg(), sheet, 0.3, res)
    # a: [100,120) -> one 50-frame clip; [300,420) (120 frames) -> ceil(120/50) = 3 clips
    # b: [580,600) -> one clip, moved inside the video; c: 0.3 x 300 s / 5 s = 18; d: no video
    assert clips.to_dict("index") == {
        "a/s1": {"source": "proposals", "n_frames": 1000, "fps": 10.0, "clips": 4},
        "b/s1": {"source": "proposals", "n_frames": 600, "fps": 10.0, "clips": 1},
        "c/s1": {"source": "assumed", "n_frames": 3000, "fps": 10.0, "clips": 18},
    }
    sheet_only = est.cohort_clips(_cfg(), sheet.iloc[2:], 0.5, res, use_proposals=False)
    assert sheet_only.clips.tolist() == [30]


def test_sheet_duration_uses_the_frame_range():
    row = {"video": "v.mp4", "start_frame": "100", "end_frame": "700", "fps": "25"}
    assert est.sheet_duration(row) == (600, 25.0)
    assert est.assumed_clips(600, 25.0, 0.3, 5.0) == 2  # 24 s x 0.3 = 7.2 s -> 2 clips
    assert est.assumed_clips(500, 10.0, 0.5, 5.0) == 5  # exactly 25 s -> 5, not 6
    assert est.assumed_clips(500, 10.0, 0.0, 5.0) == 0


def test_gpu_hours_and_slurm_hours_by_hand(cohort, table):
    sheet, res = cohort
    clips = est.cohort_clips(_cfg(), sheet, 0.3, res)
    out = est.estimate(_cfg(), clips, gpus=["h100", "v100"], table=table).set_index(["gpu", "task"])
    # 23 clips: embed at 2 clips/s = 11.5 s; describe at 0.5 clips/s = 46 s
    assert out.loc[("h100", "embed"), "clips"] == 23
    assert out.loc[("h100", "embed"), "gpu_hours"] == pytest.approx(11.5 / 3600)
    assert out.loc[("h100", "describe"), "gpu_hours"] == pytest.approx(46 / 3600)
    # every job (<= 18 clips) asks the 10-minute minimum: 3 sessions x 10 min per task
    assert out.loc[("h100", "embed"), "slurm_hours"] == pytest.approx(0.5)
    assert out.loc[("h100", "total"), "clips"] == 46
    assert out.loc[("h100", "total"), "gpu_hours"] == pytest.approx(57.5 / 3600)
    assert out.loc[("h100", "total"), "slurm_hours"] == pytest.approx(1.0)
    assert math.isnan(out.loc[("v100", "embed"), "gpu_hours"])  # not in this table
    # icl joins the tasks with the icl mode; describe leaves with describe: false
    cfg = _cfg(describe=False) | {"classifier": {"modes": ["icl"], "primary": "icl"}}
    assert est.vlm_tasks(cfg) == ["icl"]
    assert est.vlm_tasks(_cfg() | {"discover": {"enabled": True}}) == ["embed", "describe"]
    text = est.format_estimate(out.reset_index(), clips, "qwen2.5-vl-3b")
    assert "3 video sessions, 23 clips (2 sessions from stage-1 proposals, 1 from" in text


def test_job_minutes_margin_and_minimum():
    # 2 x (120 s start-up + 10,000 clips / 4 clips/s) = 5,240 s = 87.3 min -> 88
    assert est.job_minutes(10_000, 4.0, 2.0, 10) == 88
    assert est.job_minutes(10_000, 4.0, 1.0, 10) == 44  # 2,620 s = 43.7 min
    assert est.job_minutes(10, 4.0, 2.0, 10) == 10  # 4.1 min -> the minimum
    assert est.job_minutes(0, 4.0, 1.0, 1) == 2  # the start-up alone


def test_rule_runtime_follows_the_clip_count(tmp_path, table):
    clips = tmp_path / "clips.h5"
    n = 600
    frames = (np.zeros((2, 4, 4, 3), np.uint8) for _ in range(n))
    idx = np.zeros((n, 2), np.int64)
    start = np.arange(n)
    results.write_clips(clips, frames, start, start + 5, idx, (2, 4, 4, 3), {"fps_out": 2.0})
    assert est.count_clips(clips) == n
    cfg = _cfg()
    # embed: 2 x (120 + 600 / 2) s = 840 s = 14 min; describe: 2 x (120 + 1200) = 44 min
    assert est.rule_runtime(cfg, "vlm_embed", clips, 30, table) == 14
    assert est.rule_runtime(cfg, "vlm_describe", clips, 30, table) == 44
    # not yet cut, a model or GPU the table lacks, a rule that is not a VLM rule: fallback
    assert est.rule_runtime(cfg, "vlm_embed", tmp_path / "none.h5", 30, table) == 30
    assert est.rule_runtime(cfg, "vlm_icl", clips, 30, table) == 30
    assert est.rule_runtime(_cfg(gpu_kind="v100"), "vlm_embed", clips, 30, table) == 30
    assert est.rule_runtime(_cfg(model="demo:x"), "vlm_embed", clips, 30, table) == 30
    assert est.rule_runtime(cfg, "cut_clips", clips, 30, table) == 30
    # slurm.gpu_type names the GPU when the table knows it
    typed = _cfg(gpu_kind="v100") | {"slurm": {"gpu_type": "H100"}}
    assert est.gpu_kind(typed, table) == "h100"
    assert est.rule_runtime(typed, "vlm_embed", clips, 30, table) == 14


def test_model_key():
    t = est.read_throughput()
    assert est.model_key("Qwen/Qwen2.5-VL-3B-Instruct", t) == "qwen2.5-vl-3b"
    assert est.model_key("/models/Qwen2.5-VL-7B-Instruct/", t) == "qwen2.5-vl-7b"
    assert est.model_key("demo:tiny-qwen2.5-vl", t) == "tiny-qwen2.5-vl"
    assert est.model_key("Qwen/Qwen3-VL-8B-Instruct", t) is None


def test_shipped_table_covers_every_gpu_and_says_its_figures_are_estimates():
    t = est.read_throughput()
    for model in ("qwen2.5-vl-3b", "qwen2.5-vl-7b"):
        for gpu in est.GPU_KINDS:
            for task in est.TASKS:
                assert est.clips_per_s(t, gpu, model, task), (gpu, model, task)
    gpu_rows = t[t.gpu.isin(est.GPU_KINDS)]
    assert gpu_rows.source.str.startswith("estimate, not measured").all()
    # the assumed ratios: V100 = 1/4, A40 = 1/2 of the H100
    h100 = est.clips_per_s(t, "h100", "qwen2.5-vl-3b", "embed")
    assert est.clips_per_s(t, "v100", "qwen2.5-vl-3b", "embed") == pytest.approx(h100 / 4)
    assert est.clips_per_s(t, "a40", "qwen2.5-vl-3b", "embed") == pytest.approx(h100 / 2)


def test_bad_table(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("gpu\tmodel\ttask\tclips_per_s\tsource\nh100\tm\tembed\t0\tx\n")
    with pytest.raises(InputError, match="positive"):
        est.read_throughput(bad)


def test_cli_estimate(cohort, tmp_path, capsys):
    sheet, res = cohort
    cfg = _cfg(sessions=tmp_path / "sessions.tsv", gpu_kind="v100")
    _config_file(tmp_path / "config.yaml", cfg)
    argv = ["estimate", "--config", str(tmp_path / "config.yaml"), "--results", str(res)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "3 video sessions, 23 clips" in out and "model qwen2.5-vl-3b" in out
    # shipped V100 embed speed: 4 clips/s
    v100 = next(ln.split() for ln in out.splitlines() if ln.startswith("v100  embed"))
    assert v100[:4] == ["v100", "embed", "23", "4"]
    assert cli.main([*argv, "--coverage", "2"]) == 2


def test_cli_estimate_shows_the_budget_trade_off(cohort, tmp_path, capsys):
    sheet, res = cohort
    sheet.iloc[:2].to_csv(tmp_path / "staged.tsv", sep="\t", index=False)  # a and b
    cfg = _cfg(sessions=tmp_path / "staged.tsv", gpu_kind="v100", budget_gpu_hours=0)
    _config_file(tmp_path / "config.yaml", cfg)
    argv = ["estimate", "--config", str(tmp_path / "config.yaml"), "--results", str(res)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    # p_action 0.5 on all 1600 frames (mass 800); the 5 clips cover 170 + 50 frames: 110
    assert "without budget (v100): 13.8% of the expected action frames in clips" in out
    assert "with budget (v100): 0.0% of the expected action frames in clips, 0.00 GPU-h" in out
