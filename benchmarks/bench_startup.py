"""Start-up cost of a job: importing each steps module, and one Snakemake ``script:`` job.

Usage: python benchmarks/bench_startup.py [--repeats 5] [--jobs 8] [--modules pose,localize]
(1) a fresh interpreter doing ``import ethoflow.steps.<m>`` for each steps module: median
wall time over ``--repeats`` runs, and which heavy libraries end up in ``sys.modules``;
(2) a throwaway Snakefile of ``--jobs`` independent rules whose ``script:`` does nothing,
or imports a steps module the way ``workflow/scripts/*.py`` do: ``snakemake --cores 1``
wall time, less that of the same call with every output present (the DAG build, nothing
to run), divided by the job count, is the cost of one job itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "workflow"
MODULES = ("pose", "localize", "clips", "vlm", "classify", "cohort")
HEAVY = ("torch", "transformers", "sklearn", "matplotlib", "pynwb", "h5py", "pandas", "decord")
PROBE = """import json, sys
sys.path.insert(0, {workflow!r})
{stmt}
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def _snakemake() -> str:
    """The snakemake next to this interpreter (the venv's), else the one on PATH."""
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


def time_import(stmt: str, repeats: int) -> tuple[float, list[str]]:
    """Median wall time of a fresh interpreter running ``stmt``; heavy modules it loaded."""
    code = PROBE.format(workflow=str(WORKFLOW), stmt=stmt, heavy=HEAVY)
    times, loaded = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode:
            raise RuntimeError(f"{stmt!r} failed:\n{r.stderr[-2000:]}")
        loaded = json.loads(r.stdout.strip().splitlines()[-1])
    return statistics.median(times), loaded


SNAKEFILE = """\
N = {n}
rule all:
    input: expand("out/{{i}}.txt", i=range(N))
{rules}
"""
RULE = """
rule job{i}:
    output: "out/{i}.txt"
    script: "job.py"
"""
SCRIPT = """\
import sys
sys.path.insert(0, {workflow!r})
{body}
open(snakemake.output[0], "w").close()  # noqa: F821
"""


def _smk(workdir: Path) -> float:
    cmd = [_snakemake(), "--cores", "1", "-q", "--snakefile", "Snakefile", "all"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    return dt


def time_jobs(body: str, n_jobs: int) -> tuple[float, float, float]:
    """(run wall s, DAG-only wall s, per-job s) of ``n_jobs`` script jobs running ``body``."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rules = "".join(RULE.format(i=i) for i in range(n_jobs))
        (d / "Snakefile").write_text(SNAKEFILE.format(n=n_jobs, rules=rules))
        (d / "job.py").write_text(SCRIPT.format(workflow=str(WORKFLOW), body=body))
        run = _smk(d)  # builds the DAG and runs every job, one at a time
        dag = _smk(d)  # every output present: the DAG build and nothing to run
    return run, dag, (run - dag) / n_jobs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="fresh interpreters per module")
    ap.add_argument("--jobs", type=int, default=8, help="jobs per Snakemake run")
    ap.add_argument(
        "--modules",
        default="pose",
        help="comma-separated steps modules to time as Snakemake jobs too ('' for none)",
    )
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}")

    print(f"\n(1) fresh interpreter, median of {args.repeats} runs")
    print(f"{'import':<32} {'wall s':>7} {'+ over bare':>11}  heavy modules loaded")
    bare, _ = time_import("pass", args.repeats)
    print(f"{'(nothing)':<32} {bare:7.2f} {'':>11}")
    for m in MODULES:
        dt, loaded = time_import(f"import ethoflow.steps.{m}", args.repeats)
        print(f"{'ethoflow.steps.' + m:<32} {dt:7.2f} {dt - bare:+11.2f}  {', '.join(loaded)}")

    print(f"\n(2) Snakemake script: jobs, --cores 1, {args.jobs} jobs a run")
    print(f"{'script body':<32} {'run s':>7} {'DAG s':>7} {'per job s':>9}")
    bodies = [("pass", "pass")]
    for m in filter(None, args.modules.split(",")):
        bodies.append((f"import ethoflow.steps.{m}", f"import ethoflow.steps.{m}  # noqa: F401"))
    base = None
    for label, body in bodies:
        run, dag, per_job = time_jobs(body, args.jobs)
        extra = "" if base is None else f"  ({per_job - base:+.2f} s over pass)"
        base = per_job if base is None else base
        print(f"{label:<32} {run:7.2f} {dag:7.2f} {per_job:9.2f}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
