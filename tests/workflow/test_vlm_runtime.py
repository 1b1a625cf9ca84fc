"""The VLM rules' SLURM runtime follows the clip count of the shard's sessions (a dry run
against a finished clips file), and falls back to resources.<rule>.runtime while the clips do
not exist yet."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from wfhelpers import REPO, copy_repo, snakemake

sys.path.insert(0, str(REPO / "workflow"))
from ethoflow import estimate as est  # noqa: E402
from ethoflow import results, shards  # noqa: E402

pytestmark = pytest.mark.workflow

REAL_MODEL = "vlm: {model: Qwen/Qwen2.5-VL-3B-Instruct, gpu_kind: v100, runtime_margin: 2.0}\n"


def _runtimes(out: str) -> dict[str, list[int]]:
    """rule -> the runtime of each of its jobs in a dry run's output."""
    got: dict[str, list[int]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):$", line)
        if m:
            rule = m.group(1)
        m = re.match(r"\s*resources: (.*)$", line)
        if m and rule:
            res = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
            got.setdefault(rule, []).append(int(res["runtime"]))
            rule = None
    return got


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = copy_repo(tmp_path_factory.mktemp("vlm_runtime"))
    (work / "real.yaml").write_text(REAL_MODEL)
    return work


def _dry(work, *args) -> str:
    """A dry run of the targets and options in ``args`` with the real-model config."""
    proc = snakemake(work, *args, "--dry-run", "--configfile", "config/config.yaml", "real.yaml")
    return proc.stdout + proc.stderr


def test_runtime_follows_the_clip_count(work):
    n = 2000
    clips = work / "results/clips/triplet1/part1.h5"
    frames = (np.zeros((2, 4, 4, 3), np.uint8) for _ in range(n))
    start = np.arange(n, dtype=np.int64)
    idx = np.zeros((n, 2), np.int64)
    results.write_clips(clips, frames, start, start + 50, idx, (2, 4, 4, 3), {"fps_out": 2.0})
    # the session's shard (its own in the demo) has cut its clips
    shard = shards.shard_name("triplet", "train", shards.bucket("triplet1/part1", 64))
    results.write_manifest(work / f"results/shards/cut_clips/{shard}.tsv", {})
    targets = [f"results/shards/{rule}/{shard}.tsv" for rule in ("vlm_embed", "vlm_describe")]
    out = _dry(work, *targets, "--allowed-rules", "vlm_embed", "vlm_describe")
    got = _runtimes(out)
    table = est.read_throughput()

    def expect(task):
        rate = est.clips_per_s(table, "v100", "qwen2.5-vl-3b", task)
        return est.job_minutes(n, rate, 2.0, 10)

    # with the shipped V100 estimates (4 and 0.357 clips/s): 2 x (120 s + 2000 / 4) = 21 min,
    # 2 x (120 s + 2000 / 0.357) = 191 min; the config says 30 and 60
    assert got == {"vlm_embed": [expect("embed")], "vlm_describe": [expect("describe")]}, out
    assert (expect("embed"), expect("describe")) == (21, 191)


def test_runtime_before_the_clips_exist_is_the_config_value(work):
    shard = shards.shard_name("triplet", "test", shards.bucket("triplet1/part2", 64))
    targets = [f"results/shards/{rule}/{shard}.tsv" for rule in ("vlm_embed", "vlm_describe")]
    got = _runtimes(_dry(work, *targets))
    assert got["vlm_embed"] == [30] and got["vlm_describe"] == [60], got
