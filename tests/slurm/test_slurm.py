"""The SLURM profile on a real single-node cluster (.ci/slurm_cluster.sh).

`snakemake --profile slurm`, exactly as the README writes it (the profile installed with
`ethoflow install-profile`), runs the demo cohort through sbatch. SLURM's own accounting
records (sacct) then show that every VLM job ran in `gpu` with one GPU, every other job in
`standard` without one, all charged to the account taken from $SBATCH_ACCOUNT, and that one
GPU allocation ran the VLM jobs of several sessions one after another (asking for one job's
CPUs and memory, not their sum), on one model server. The first VLM allocation is requeued
(`scontrol requeue`) while its jobs run: it runs again and the run finishes. The results
equal those of a local run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

REPO = Path(__file__).resolve().parents[2]
COPY = ("Snakefile", "workflow", "config", "profiles", "envs", "tests/data")
VLM_RULES = {"vlm_embed", "vlm_describe", "vlm_icl"}
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ACCOUNT = "ethoflow_lab"  # created by .ci/slurm_cluster.sh

# The test node has 2 CPUs and ~19 GB: every rule's request is capped so that each job fits.
# The partitions and the GPU request keep the Great Lakes defaults of config/config.yaml.
# The demo is reduced (modes pose, linear and icl; no pose+vlm/knn, no discovery, short
# localizer training) to keep the run at a few minutes: the plugin costs ~6-7 s per job. All
# three VLM rules still run.
OVERRIDE = """\
classifier: {modes: [pose, linear, icl], primary: linear}
discover: {enabled: false}
localizer: {epochs: 5}
resources:
  default: {runtime: 30, mem_mb: 2000, cpus: 1, gpus: 0}
  train_localizer: {runtime: 30, mem_mb: 2000, cpus: 1, gpus: 0}
  cut_clips: {runtime: 30, mem_mb: 2000, cpus: 1, gpus: 0}
  vlm_embed: {runtime: 20, mem_mb: 3000, cpus: 1, gpus: 1}
  vlm_describe: {runtime: 20, mem_mb: 3000, cpus: 1, gpus: 1}
  vlm_icl: {runtime: 20, mem_mb: 3000, cpus: 1, gpus: 1}
  build_demo_vlm: {runtime: 10, mem_mb: 2000, cpus: 1, gpus: 0}
"""
# Faster status polling than the Great Lakes defaults (jobs here take seconds); keep every
# job's SLURM log (the profile keeps only those of failed jobs), they name each job's rule.
FAST = ["--slurm-init-seconds-before-status-checks", "10", "--latency-wait", "10", "--retries", "0"]
FAST += ["--slurm-keep-successful-logs"]
SACCT_FIELDS = "JobID,JobName,Partition,Account,AllocTRES,ReqCPUS,ReqMem,Timelimit,State,WorkDir"


def _repo_copy(dest: Path) -> Path:
    for item in COPY:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    (dest / "slurm_test.yaml").write_text(OVERRIDE)
    # 16 short pose-only sessions more (22 in all), so that the sbatch count per session is
    # measured on a cohort, not on the 6 demo sessions alone
    fc = "fearcond\t\ttests/data/behaviordepot_freezing/demo1_tracking.csv\tdlc_csv\t\tpredict\tB"
    extra = [
        f"fc{2 + i // 4}\tp{i % 4}\t{fc}\t{3000 + 150 * i}\t{3600 + 150 * i}\n" for i in range(16)
    ]
    sheet = dest / "config" / "sessions.tsv"
    sheet.write_text(sheet.read_text() + "".join(extra))
    return dest


def _run(cmd: list[str], cwd: Path, limit: int, env: dict | None = None):
    r = subprocess.run(
        ["timeout", "-k", "30", str(limit), *cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )
    if r.returncode != 0:
        subprocess.run([*SNAKEMAKE, "--unlock"], cwd=cwd, capture_output=True, env=env)
    return r


def _slurm_logs(work: Path) -> str:
    logs = sorted((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    return "\n".join(f"== {p.relative_to(work)}\n{p.read_text()[-1500:]}" for p in logs)[-20000:]


def _sacct(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """SLURM's accounting record of each job allocation (no steps)."""
    names = SACCT_FIELDS.split(",")
    recs: dict[str, dict[str, str]] = {}
    for _ in range(30):  # slurmctld hands finished jobs to slurmdbd asynchronously
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", SACCT_FIELDS],
            capture_output=True,
            text=True,
        ).stdout
        recs = {}
        for line in out.splitlines():
            rec = dict(zip(names, line.split("|"), strict=True))
            recs[rec["JobID"]] = rec
        if set(recs) >= set(job_ids) and all(r["State"] == "COMPLETED" for r in recs.values()):
            break
        time.sleep(1)
    return recs


def _mem_mb(req_mem: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)([KMGT]?)n?c?", req_mem).groups()
    return float(value) * {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[unit]


def _group_members(log: Path) -> list[tuple[str, str]]:
    """(rule, shard or "") of every job the group allocation ran, from its log (each
    per-session rule runs one job per shard of sessions)."""
    members: list[list[str]] = []
    for line in log.read_text().splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):", line)
        if m:
            members.append([m.group(1), ""])
        w = re.match(r"\s*wildcards: shard=(\S+)", line)
        if w and members and not members[-1][1]:
            members[-1][1] = w.group(1)
    return sorted({(rule, session) for rule, session in members})


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
    h5s = sorted(
        p.relative_to(b) for d in ("embeddings", "icl") for p in (b / "results" / d).rglob("*.h5")
    )
    assert h5s, "local run wrote no embeddings"
    for rel in h5s:
        if not (a / rel).exists():
            bad.append(f"{rel}: missing from the SLURM run")
            continue
        with h5py.File(a / rel) as fa, h5py.File(b / rel) as fb:
            for n in _datasets(fb):
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


def _requeue_first_vlm_allocation(work: Path, done: threading.Event, seen: dict) -> None:
    """Requeue the first running `gpu` job once one of its VLM jobs has started."""
    while not done.wait(0.5):
        running = subprocess.run(
            ["squeue", "-h", "-p", "gpu", "-t", "RUNNING", "-o", "%i"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if running and any((work / "logs").glob("vlm_*/*/*.log")):
            r = subprocess.run(["scontrol", "requeue", running[0]], capture_output=True, text=True)
            seen.update(job=running[0], rc=r.returncode, err=r.stderr, at=time.monotonic())
            # a requeued job waits ~2 min (BeginTime) before it may start: let it start now
            for _ in range(40):
                time.sleep(0.5)
                u = ["scontrol", "update", f"JobId={running[0]}", "StartTime=now"]
                if subprocess.run(u, capture_output=True).returncode == 0:
                    break
            return


def _states(job_id: str) -> list[str]:
    """Every record of an allocation, requeued runs included (sacct --duplicates)."""
    for _ in range(30):
        out = subprocess.run(
            ["sacct", "-X", "-D", "-n", "-P", "-j", job_id, "-o", "State"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if out and out[-1] == "COMPLETED":
            return out
        time.sleep(1)
    return out


def test_demo_on_slurm_partitions_gpus_account_and_results(
    slurm_cluster, profile_env, tmp_path
) -> None:
    on_slurm = _repo_copy(tmp_path / "slurm")
    configs = ["--configfile", "config/config.yaml", "slurm_test.yaml"]
    # the README's set-up step: link the profile where Snakemake looks for named profiles
    env = profile_env(ACCOUNT)

    t0 = time.monotonic()
    cmd = [*SNAKEMAKE, "--profile", "slurm", "--jobs", "4", *FAST, *configs]
    done, requeued = threading.Event(), {}
    watcher = threading.Thread(
        target=_requeue_first_vlm_allocation, args=(on_slurm, done, requeued), daemon=True
    )
    watcher.start()
    try:
        r = _run(cmd, on_slurm, 1500, env)
    finally:
        done.set()
    slurm_wall = time.monotonic() - t0
    out = f"{r.stdout[-6000:]}\n{r.stderr[-12000:]}\n--- slurm logs ---\n{_slurm_logs(on_slurm)}"
    assert r.returncode == 0, f"snakemake on SLURM failed (rc {r.returncode})\n{out}"

    # every job Snakemake submitted (one log per SLURM job: <jobid>.log)
    logs = {p.stem: p for p in (on_slurm / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert logs, f"no SLURM job logs written\n{out}"
    records = _sacct(sorted(logs))
    assert set(records) == set(logs), f"sacct lacks jobs {set(logs) - set(records)}"

    per_partition: dict[str, int] = {}
    rules_seen: set[str] = set()
    gpu_members: list[list[tuple[str, str]]] = []
    cpu_groups: list[list[tuple[str, str]]] = []
    for job_id, log in logs.items():
        rec = records[job_id]
        name = log.relative_to(on_slurm / ".snakemake" / "slurm_logs").parts[0]
        assert rec["State"] == "COMPLETED", rec
        assert rec["WorkDir"] == str(on_slurm), rec
        assert rec["Account"] == ACCOUNT, f"job {job_id} ({name}) charged to {rec['Account']}"
        has_gpu = "gres/gpu=1" in rec["AllocTRES"].split(",")
        if name.startswith("group_"):
            # one allocation for several jobs of a group, run one after another
            members = _group_members(log)
            rules = {rule for rule, _ in members}
            assert rules, (job_id, name)
            assert int(rec["ReqCPUS"]) == 1 and _mem_mb(rec["ReqMem"]) <= 3000, rec
            if rules & VLM_RULES:
                assert rules <= VLM_RULES, (job_id, name, members)
                assert rec["Partition"] == "gpu" and has_gpu, rec
                gpu_members.append(members)
            else:
                assert rec["Partition"] == "standard" and not has_gpu, rec
                cpu_groups.append(members)
        else:
            rule = name.removeprefix("rule_")
            rules = {rule}
            want = "gpu" if rule in VLM_RULES else "standard"
            assert rec["Partition"] == want, f"job {job_id} ({name}) ran in {rec['Partition']}"
            assert has_gpu == (rule in VLM_RULES), rec
        per_partition[rec["Partition"]] = per_partition.get(rec["Partition"], 0) + 1
        rules_seen |= rules
    assert VLM_RULES <= rules_seen, rules_seen
    assert {"pose_preprocess", "train_localizer", "localize", "cut_clips", "classify"} <= rules_seen
    assert gpu_members, "the VLM jobs were not grouped into GPU allocations"
    # the requeued allocation was cut short, ran again and completed
    assert requeued.get("rc") == 0, requeued
    states = _states(requeued["job"])
    assert "REQUEUED" in states and states[-1] == "COMPLETED", states
    # the VLM jobs of an allocation share its model server: fewer loads than jobs
    servers = sorted((on_slurm / "logs" / "vlm_server").glob("slurm*.log"))
    loads = {p.name: p.read_text().count("model loaded once") for p in servers}
    n_vlm = sum(len(m) for m in gpu_members)
    assert 1 <= sum(loads.values()) < n_vlm, (loads, n_vlm)
    largest = max(gpu_members, key=len)
    assert len({shard for _, shard in largest}) >= 2, largest
    # the shards' CPU steps go in group jobs: at most 2 submissions per session on average
    n_sessions = len((on_slurm / "config/sessions.tsv").read_text().splitlines()) - 1
    assert n_sessions >= 20
    assert max(len({s for _, s in m if s}) for m in cpu_groups) >= 2, cpu_groups
    per_session = len(logs) / n_sessions
    assert per_session <= 2, f"{len(logs)} sbatch jobs for {n_sessions} sessions"
    print(
        f"SLURM run: {slurm_wall:.0f} s, {len(logs)} sbatch jobs for {n_sessions} sessions"
        f" ({per_session:.2f} per session), per partition {per_partition},"
        f" GPU allocations holding {[len(m) for m in gpu_members]} VLM jobs,"
        f" model loads per server log {loads}; requeued {requeued['job']} ({states})"
    )

    # The same workflow and config run locally gives the same results.
    local = _repo_copy(tmp_path / "local")
    t0 = time.monotonic()
    lr = _run([*SNAKEMAKE, "--cores", "2", *configs], local, 1500)
    print(f"local run: {time.monotonic() - t0:.0f} s")
    assert lr.returncode == 0, lr.stderr[-6000:]
    bad = _compare(on_slurm, local)
    assert not bad, "SLURM and local results differ:\n" + "\n".join(bad)
