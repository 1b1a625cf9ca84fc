"""DAG-build time of a generated N-session cohort (default 1,000): ``snakemake -n``.

Usage: PYTHONPATH=workflow python3 benchmarks/bench_dag.py [--sessions 1000] [--profile DIR]
The sheet copies the demo sheet's rows under new subject/session names (same files).
``--profile profiles/slurm`` plans the cluster run instead (VLM group jobs included).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--template", type=Path, default=REPO / "config" / "sessions.tsv")
    ap.add_argument("--profile", help="a Snakemake profile (default: a local run, 2 cores)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sheet = make_cohort(args.template, args.sessions, Path(tmp) / "sessions.tsv")
        cmd = ["snakemake", "-n", "--quiet", "rules"]
        cmd += ["--profile", args.profile] if args.profile else ["--cores", "2"]
        cmd += ["--config", f"sessions={sheet}"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
        return 1
    n_jobs = next((ln.split()[-1] for ln in r.stdout.splitlines() if ln.startswith("total")), "?")
    how = f"--profile {args.profile}" if args.profile else "local"
    print(f"{args.sessions} sessions ({how}): snakemake -n planned {n_jobs} jobs in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
