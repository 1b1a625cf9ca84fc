"""DAG-build time of a generated N-session cohort (default 1,000): ``snakemake -n``.

Usage: PYTHONPATH=workflow python3 benchmarks/bench_dag.py [--sessions 1000] [--profile DIR]
The sheet copies the demo sheet's rows under new subject/session names (same files).
``--profile profiles/slurm`` plans the cluster run instead (VLM group jobs included).
``--floor N`` plans a do-nothing workflow of three chained rules over N items instead
(3 N jobs): what Snakemake itself costs per job, whatever the rules do.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ethoflow.cli import make_cohort

REPO = Path(__file__).resolve().parents[1]

FLOOR = """\
ITEMS = [f"i{i}" for i in range(int(config["items"]))]
rule all:
    input: expand("c/{i}.txt", i=ITEMS)
rule a:
    output: "a/{i}.txt"
    log: "logs/a/{i}.log"
    shell: "touch {output}"
rule b:
    input: "a/{i}.txt"
    output: "b/{i}.txt"
    log: "logs/b/{i}.log"
    shell: "touch {output}"
rule c:
    input: "b/{i}.txt"
    output: "c/{i}.txt"
    log: "logs/c/{i}.log"
    shell: "touch {output}"
"""


def plan(cmd: list[str], cwd) -> tuple[str, float] | None:
    """(planned jobs, seconds) of a dry run ``cmd`` in ``cwd``; None (and its output) if it
    failed."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
        return None
    lines = r.stdout.splitlines()
    return next((ln.split()[-1] for ln in lines if ln.startswith("total")), "?"), dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--template", type=Path, default=REPO / "config" / "sessions.tsv")
    ap.add_argument("--profile", help="a Snakemake profile (default: a local run, 2 cores)")
    ap.add_argument("--floor", type=int, metavar="N", help="plan a do-nothing workflow instead")
    args = ap.parse_args()
    cmd = ["snakemake", "-n", "--quiet", "rules"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.floor:
            Path(tmp, "Snakefile").write_text(FLOOR)
            got = plan([*cmd, "--cores", "2", "--config", f"items={args.floor}"], tmp)
            what = "do-nothing workflow"
        else:
            sheet = make_cohort(args.template, args.sessions, Path(tmp) / "sessions.tsv")
            cmd += ["--profile", args.profile] if args.profile else ["--cores", "2"]
            got = plan([*cmd, "--config", f"sessions={sheet}"], REPO)
            how = f"--profile {args.profile}" if args.profile else "local"
            what = f"{args.sessions} sessions ({how})"
    if got is None:
        return 1
    print(f"{what}: snakemake -n planned {got[0]} jobs in {got[1]:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
