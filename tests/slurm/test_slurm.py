"""The SLURM profile on a real single-node cluster: jobs land in the partition the config says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

# Faster status polling than the Great Lakes defaults; jobs here take about a second.
FAST = [
    "--slurm-init-seconds-before-status-checks",
    "3",
    "--latency-wait",
    "5",
    "--retries",
    "0",
]

TOY = """
configfile: "config.yaml"

rule all:
    input: expand("{r}/{i}.txt", r=["cpu", "vlm"], i=[1, 2])

rule cpu_step:
    output: "cpu/{i}.txt"
    resources:
        slurm_partition=config["slurm"]["cpu_partition"],
        runtime=5,
        mem_mb=200,
        cpus_per_task=1,
    shell: "echo $SLURM_JOB_PARTITION $SLURM_JOB_ID > {output}"

rule vlm_step:
    input: "cpu/{i}.txt"
    output: "vlm/{i}.txt"
    group: "vlm"
    resources:
        slurm_partition=config["slurm"]["gpu_partition"],
        runtime=5,
        mem_mb=200,
        cpus_per_task=1,
        gpu=config["slurm"]["gpus"],
    shell: "echo $SLURM_JOB_PARTITION $SLURM_JOB_ID > {output}"
"""


def _snakemake(workdir: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = ["timeout", "-k", "30", "240", "snakemake", "--profile", str(profile), *FAST, *extra]
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["snakemake", "--unlock"], cwd=workdir, capture_output=True)
    return r


def test_toy_jobs_go_to_configured_partitions(slurm_cluster: Path, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(TOY)
    # The test node has no GPUs: keep the partition, request 0 GPUs (see profiles/slurm/README.md).
    (tmp_path / "config.yaml").write_text(
        "slurm: {cpu_partition: standard, gpu_partition: gpu, gpus: 0}\n"
    )
    r = _snakemake(tmp_path, slurm_cluster)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ids = set()
    for rule, want in (("cpu", "standard"), ("vlm", "gpu")):
        for i in (1, 2):
            part, job_id = (tmp_path / rule / f"{i}.txt").read_text().split()
            assert part == want, f"{rule}/{i}: ran in {part!r}, expected {want!r}"
            ids.add(job_id)
            # SLURM's own record of the job (squeue/scontrol keep it for MinJobAge seconds).
            info = subprocess.run(
                ["scontrol", "show", "job", job_id], capture_output=True, text=True
            ).stdout
            assert f"Partition={want}" in info, info
    # the two vlm jobs were grouped into one allocation (group-components vlm=8)
    assert len(ids) == 3, ids


VLM_RULES = {"vlm_embed", "vlm_describe", "vlm_icl"}
REPO = Path(__file__).resolve().parents[2]
COPY = ("Snakefile", "workflow", "config", "profiles", "envs", "tests/data")


def _repo_copy(dest: Path) -> Path:
    import shutil

    for item in COPY:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    return dest


def _job_partitions(work: Path) -> dict[str, set[str]]:
    """Rule (or group) name -> partitions, from the plugin's per-job logs + SLURM's records."""
    found: dict[str, set[str]] = {}
    for log in (work / ".snakemake" / "slurm_logs").rglob("*.log"):
        name = log.relative_to(work / ".snakemake" / "slurm_logs").parts[0]
        info = subprocess.run(
            ["scontrol", "show", "job", log.stem], capture_output=True, text=True
        ).stdout
        part = next(w.split("=", 1)[1] for w in info.split() if w.startswith("Partition="))
        found.setdefault(name, set()).add(part)
    return found


@pytest.mark.workflow
def test_demo_cohort_on_slurm_matches_local(slurm_cluster: Path, tmp_path: Path) -> None:
    # No GPUs on the test node: same partitions, no --gres request (profiles/slurm/README.md).
    override = tmp_path / "slurm_test.yaml"
    # The node has 2 CPUs and a few GB: cap each rule's request so every job fits.
    small = "{runtime: 30, mem_mb: 2000, cpus: 1}"
    rules = ("default", "train_localizer", "cut_clips", "vlm_embed", "vlm_describe", "vlm_icl")
    override.write_text(
        "slurm: {cpu_partition: standard, gpu_partition: gpu, gpu_gres: ''}\n"
        + "resources:\n"
        + "".join(f"  {r}: {small}\n" for r in rules)
    )
    on_slurm = _repo_copy(tmp_path / "slurm")
    r = _snakemake(on_slurm, slurm_cluster, "--configfile", "config/config.yaml", str(override))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    parts = _job_partitions(on_slurm)
    assert parts, "no SLURM job logs written"
    for name, seen in parts.items():
        rule = name.removeprefix("rule_")
        want = "gpu" if rule in VLM_RULES or name.startswith("group_vlm") else "standard"
        assert seen == {want}, f"{name}: ran in {seen}, expected {want}"
    assert any(n.startswith("group_vlm") or n.removeprefix("rule_") in VLM_RULES for n in parts)

    local = _repo_copy(tmp_path / "local")
    lr = subprocess.run(
        ["timeout", "-k", "30", "600", "snakemake", "--cores", "2", "--quiet"],
        cwd=local,
        capture_output=True,
        text=True,
    )
    assert lr.returncode == 0, lr.stderr[-3000:]
    tables = sorted(p.relative_to(local) for p in (local / "results").rglob("*.tsv"))
    assert tables
    for rel in tables:
        assert (on_slurm / rel).read_bytes() == (local / rel).read_bytes(), rel
