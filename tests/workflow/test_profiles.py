"""The SLURM profile as users call it, planned by a dry run (no SLURM needed; the real cluster
test is tests/slurm): `--profile slurm` after `ethoflow install-profile`, `--profile
profiles/slurm`, partitions, GPUs and account from config or the environment, VLM groups."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from wfhelpers import copy_repo

pytestmark = pytest.mark.workflow

VLM_RULES = {"vlm_embed", "vlm_describe", "vlm_icl"}


def dry_run(work, *args, env=None):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def planned_resources(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job in a dry run's output."""
    jobs, rule = [], None
    for line in out.splitlines():
        m = re.match(r"\s*rule (\w+):$", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"\s*resources: (.*)$", line)
        if m and rule:
            res = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
            jobs.append((rule, res))
            rule = None
    return jobs


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("profiles"))


def test_profile_by_name_after_install_profile(work, profile_env):
    env = profile_env("mylab0")
    out = dry_run(work, "--profile", "slurm", env=env)
    jobs = planned_resources(out)
    assert {r for r, _ in jobs} >= VLM_RULES | {"pose_preprocess", "train_localizer", "classify"}
    for rule, res in jobs:
        if rule == "all":
            continue
        assert res.get("slurm_account") == "mylab0", (rule, res)
        if rule in VLM_RULES:
            assert res["slurm_partition"] == "gpu" and res["gres"] == "gpu:1", (rule, res)
            assert res["cpus_per_task"] == "4" and res["mem_mb"] == "32000", (rule, res)
        else:
            assert res["slurm_partition"] == "standard" and "gres" not in res, (rule, res)
        assert "slurm_extra" not in res, (rule, res)
    # the demo's 4 video sessions x 3 VLM rules fit one group of 12 jobs: one GPU allocation
    assert out.count("Group job vlm") == 1, out.count("Group job vlm")


def test_profile_by_path_with_a40_partition_and_config_account(work, tmp_path):
    extra = tmp_path / "a40.yaml"
    extra.write_text('slurm: {gpu_partition: spgpu, gpu_type: a40, account: "lab1"}\n')
    env = dict(os.environ, SBATCH_ACCOUNT="ignored0")
    out = dry_run(
        work,
        "--profile",
        "profiles/slurm",
        "--configfile",
        "config/config.yaml",
        str(extra),
        env=env,
    )
    jobs = planned_resources(out)
    vlm = [res for rule, res in jobs if rule in VLM_RULES]
    assert len(vlm) == 12
    assert all(r["slurm_partition"] == "spgpu" and r["gres"] == "gpu:a40:1" for r in vlm), vlm
    cpu = [res for rule, res in jobs if rule not in VLM_RULES and rule != "all"]
    assert all(r["slurm_partition"] == "standard" for r in cpu)
    assert all(r["slurm_account"] == "lab1" for _, r in jobs if _ != "all")


def test_profile_plans_a_gpu_budget(work, tmp_path):
    """With a budget, the clip_budget checkpoint sits between localize and cut_clips, which
    the profile's stage1 group would wrap: cut_clips then takes its own group (clips)."""
    extra = tmp_path / "budget.yaml"
    extra.write_text("vlm: {budget_gpu_hours: 0.01, budget_seconds_per_clip: 4.0}\n")
    env = dict(os.environ, SBATCH_ACCOUNT="mylab0")
    args = ["--profile", "profiles/slurm", "--configfile", "config/config.yaml", str(extra)]
    out = dry_run(work, *args, env=env)
    assert re.search(r"^clip_budget\s+1$", out, re.M), out[-3000:]
    assert re.search(r"^cut_clips\s+4$", out, re.M), out[-3000:]
