"""The GPU budget in the DAG: without vlm.budget_gpu_hours the plan is today's (no
clip_budget job, no selection input); with it one clip_budget job feeds every cut_clips
and the report; a budget whose clip cost is unknown stops before any job."""

from __future__ import annotations

import re

import pytest
from wfhelpers import copy_repo, planned_jobs, snakemake

from ethoflow import shards

VIDEO_KEYS = sorted(f"{s}/{p}" for s in ("openfield1", "triplet1") for p in ("part1", "part2"))
SPLIT = {"part1": "train", "part2": "test"}
# the demo's video sessions each have a shard of their own (config shards: 64)
VIDEO_SHARDS = sorted(
    shards.shard_name(k.split("/")[0].rstrip("1"), SPLIT[k.split("/")[1]], shards.bucket(k, 64))
    for k in VIDEO_KEYS
)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = copy_repo(tmp_path_factory.mktemp("budget_dag"))
    (w / "budget.yaml").write_text("vlm: {budget_gpu_hours: 0.01, budget_seconds_per_clip: 4.0}\n")
    (w / "no_cost.yaml").write_text("vlm: {budget_gpu_hours: 0.01}\n")
    return w


def _inputs(text: str, rule: str) -> list[str]:
    """The input lines of a dry run's jobs of a rule (indented when the job is in a group,
    as cut_clips is: stage1, or clips with a budget)."""
    return re.findall(rf"rule {rule}:\n\s+input: (.*)", text)


def test_planned_jobs_with_and_without_the_budget(work):
    budget_args = ("--configfile", "config/config.yaml", "budget.yaml")
    jobs, jobs_budget = planned_jobs(work), planned_jobs(work, *budget_args)
    assert "clip_budget" not in jobs and jobs_budget.pop("clip_budget") == 1
    # nothing else changes: one cut_clips per video shard (4 in the demo), as before
    assert jobs_budget == jobs and jobs["cut_clips"] == 4
    plain = snakemake(work, "--dry-run")
    plain = plain.stdout + plain.stderr
    budget = snakemake(work, "--dry-run", *budget_args)
    budget = budget.stdout + budget.stderr
    # without a budget cut_clips has two inputs (the shard's stage-1 manifest and its
    # video) and nothing names results/budget
    cut = _inputs(plain, "cut_clips")
    assert len(cut) == 4 and all(len(line.split(", ")) == 2 for line in cut), cut
    assert "results/budget" not in plain
    # with it: the checkpoint's selection (to be determined: <TBD>) feeds every cut_clips,
    # the checkpoint waits for the stage 1 of every video shard, and the report for the
    # trade-off
    cut = _inputs(budget, "cut_clips")
    assert len(cut) == 4 and all(line.split(", ")[0] == "<TBD>" for line in cut)
    (solve,) = re.findall(r"checkpoint clip_budget:\n    input: (.*)", budget)
    assert sorted(solve.split(", ")) == [f"results/shards/localize/{s}.tsv" for s in VIDEO_SHARDS]
    (report,) = _inputs(budget, "report")
    assert "results/budget/tradeoff.tsv" in report.split(", ")


def test_unknown_clip_cost_stops_before_any_job(work):
    # the demo model has no GPU speed in the table and no budget_seconds_per_clip is given
    proc = snakemake(
        work, "--dry-run", "--configfile", "config/config.yaml", "no_cost.yaml", check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "vlm.budget_gpu_hours" in out and "budget_seconds_per_clip" in out
    assert not (work / "results").exists()
