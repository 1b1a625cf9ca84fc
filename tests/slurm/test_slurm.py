"""The SLURM profile on a real single-node cluster (.ci/slurm_cluster.sh): every job goes
through sbatch, lands in the partition the workflow config names (VLM rules in `gpu`, the
rest in `standard`), and the results equal those of a local run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
COPY = ("Snakefile", "workflow", "config", "profiles", "envs", "tests/data")
VLM_RULES = {"vlm_embed", "vlm_describe", "vlm_icl"}
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# The test node has no GPUs: keep the gpu partition, drop the --gres request. It has 2 CPUs
# and ~20 GB: cap every rule's request so that each job fits. The demo is reduced (no
# pose+vlm/knn/icl modes, no discovery, short localizer training) to keep the run at a few
# minutes (the plugin costs ~6-7 s per job); vlm_embed and vlm_describe still run.
OVERRIDE = """\
slurm: {cpu_partition: standard, gpu_partition: gpu, gpu_gres: ""}
classifier: {modes: [pose, linear], primary: linear}
discover: {enabled: false}
localizer: {epochs: 5}
resources:
  default: {runtime: 30, mem_mb: 2000, cpus: 1, gpus: 0}
  train_localizer: {runtime: 30, mem_mb: 2000, cpus: 1, gpus: 0}
  cut_clips: {runtime: 30, mem_mb: 2000, cpus: 1, gpus: 0}
  vlm_embed: {runtime: 30, mem_mb: 3000, cpus: 1, gpus: 1}
  vlm_describe: {runtime: 30, mem_mb: 3000, cpus: 1, gpus: 1}
  vlm_icl: {runtime: 30, mem_mb: 3000, cpus: 1, gpus: 1}
  build_demo_vlm: {runtime: 10, mem_mb: 2000, cpus: 1, gpus: 0}
"""
# Faster status polling than the Great Lakes defaults (jobs here take seconds).
FAST = ["--slurm-init-seconds-before-status-checks", "10", "--latency-wait", "10", "--retries", "0"]


def _repo_copy(dest: Path) -> Path:
    for item in COPY:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    (dest / "slurm_test.yaml").write_text(OVERRIDE)
    return dest


def _run(cmd: list[str], cwd: Path, limit: int) -> subprocess.CompletedProcess:
    r = subprocess.run(
        ["timeout", "-k", "30", str(limit), *cmd], cwd=cwd, capture_output=True, text=True
    )
    if r.returncode != 0:
        subprocess.run([*SNAKEMAKE, "--unlock"], cwd=cwd, capture_output=True)
    return r


class _Squeue(threading.Thread):
    """Polls SLURM's own job records (squeue -t all: id, partition, comment = rule_<name>...)
    while the workflow runs, so that no job is missed whatever MinJobAge is."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.jobs: dict[str, tuple[str, str]] = {}
        self.stop = threading.Event()

    def poll(self) -> None:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i|%P|%k"], capture_output=True, text=True
        ).stdout
        for line in out.splitlines():
            job_id, part, comment = line.strip().split("|", 2)
            self.jobs[job_id] = (part, comment)

    def run(self) -> None:
        while not self.stop.wait(2):
            self.poll()


def _slurm_logs(work: Path) -> str:
    logs = sorted((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join(f"== {p.relative_to(work)}\n{p.read_text()[-1500:]}" for p in logs)[-20000:]


def _scontrol_partition(job_id: str) -> str | None:
    info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
    for word in info.stdout.split():
        if word.startswith("Partition="):
            return word.split("=", 1)[1]
    return None


def _datasets(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


def _compare(a: Path, b: Path) -> list[str]:
    """Paths (relative) whose contents differ between the SLURM run `a` and the local run `b`."""
    import h5py
    import numpy as np
    import pandas as pd

    bad = []
    globs = (
        "proposals/**/*.tsv",
        "labels/**/*.csv",
        "behavior/**/*.csv",
        "qc/**/*.tsv",
        "metrics/**/*.tsv",
        "summary/*.tsv",
    )
    files = sorted({p.relative_to(b) for g in globs for p in (b / "results").glob(g)})
    assert files, "local run wrote no results"
    for rel in files:
        if not (a / rel).exists():
            bad.append(f"{rel}: missing from the SLURM run")
            continue
        sep = "\t" if rel.suffix == ".tsv" else ","
        x, y = pd.read_csv(a / rel, sep=sep), pd.read_csv(b / rel, sep=sep)
        try:
            pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-5, atol=1e-6)
        except AssertionError as e:
            bad.append(f"{rel}: {str(e)[:300]}")
    embeddings = sorted(p.relative_to(b) for p in (b / "results" / "embeddings").rglob("*.h5"))
    assert embeddings, "local run wrote no embeddings"
    for rel in embeddings:
        if not (a / rel).exists():
            bad.append(f"{rel}: missing from the SLURM run")
            continue
        with h5py.File(a / rel) as fa, h5py.File(b / rel) as fb:
            names = _datasets(fb)
            for n in names:
                va, vb = fa[n][()], fb[n][()]
                if va.dtype.kind in "fc":
                    # embeddings are stored as float16: allow a few ulp (a SLURM job with 1 CPU
                    # and a local job with 2 threads sum in a different order, and float16
                    # rounding turns 1e-7 differences into 1-ulp steps); compare in float64
                    tol = 4 * float(np.finfo(va.dtype).eps) if va.dtype.itemsize <= 2 else 1e-5
                    va, vb = va.astype(np.float64), vb.astype(np.float64)
                    ok = va.shape == vb.shape and np.allclose(va, vb, rtol=tol, atol=tol)
                else:
                    ok = np.array_equal(va, vb)
                if not ok:
                    bad.append(f"{rel}:/{n} differs")
    descs = sorted(p.relative_to(b) for p in (b / "results" / "descriptions").rglob("*.jsonl"))
    for rel in descs:
        if not (a / rel).exists():
            bad.append(f"{rel}: missing from the SLURM run")
    return bad


def test_demo_on_slurm_partitions_and_results(slurm_cluster: Path, tmp_path: Path) -> None:
    on_slurm = _repo_copy(tmp_path / "slurm")
    configs = ["--configfile", "config/config.yaml", "slurm_test.yaml"]

    watcher = _Squeue()
    watcher.start()
    t0 = time.monotonic()
    r = _run(
        [*SNAKEMAKE, "--profile", str(slurm_cluster), "--jobs", "4", *FAST, *configs],
        on_slurm,
        1500,
    )
    slurm_wall = time.monotonic() - t0
    watcher.stop.set()
    watcher.join()
    watcher.poll()
    out = f"{r.stdout[-6000:]}\n{r.stderr[-12000:]}\n--- slurm logs ---\n{_slurm_logs(on_slurm)}"
    assert r.returncode == 0, f"snakemake on SLURM failed (rc {r.returncode})\n{out}"

    # Every job Snakemake submitted (one log per SLURM job, named <jobid>.log) ...
    logs = list((on_slurm / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert logs, f"no SLURM job logs written\n{out}"
    per_partition: dict[str, int] = {}
    rules_seen: set[str] = set()
    for log in logs:
        job_id = log.stem
        # ... as SLURM recorded it: partition and the plugin's comment rule_<name>[_wildcards_...]
        part, comment = watcher.jobs.get(job_id, (_scontrol_partition(job_id), ""))
        name = log.relative_to(on_slurm / ".snakemake" / "slurm_logs").parts[0]
        if name.startswith("group_"):
            # one allocation for several VLM jobs: group_<groupid>_<sorted rule names>
            rules = {r for r in VLM_RULES if r in name}
            assert rules, f"job {job_id}: unexpected group {name}"
            want = "gpu"
        else:
            rule = (comment or name).removeprefix("rule_").split("_wildcards_")[0]
            assert name == f"rule_{rule}", (job_id, name, comment)
            rules = {rule}
            want = "gpu" if rule in VLM_RULES else "standard"
        assert part == want, f"job {job_id} ({name}, {comment}) ran in {part!r}, expected {want!r}"
        per_partition[part] = per_partition.get(part, 0) + 1
        rules_seen |= rules
    assert {"vlm_embed", "vlm_describe"} <= rules_seen, rules_seen
    assert {"pose_preprocess", "train_localizer", "localize", "classify"} <= rules_seen, rules_seen
    print(f"SLURM run: {slurm_wall:.0f} s, {len(logs)} sbatch jobs, per partition {per_partition}")

    # The same workflow and config run locally gives the same results.
    local = _repo_copy(tmp_path / "local")
    t0 = time.monotonic()
    lr = _run([*SNAKEMAKE, "--cores", "2", *configs], local, 1500)
    print(f"local run: {time.monotonic() - t0:.0f} s")
    assert lr.returncode == 0, lr.stderr[-6000:]
    bad = _compare(on_slurm, local)
    assert not bad, "SLURM and local results differ:\n" + "\n".join(bad)
