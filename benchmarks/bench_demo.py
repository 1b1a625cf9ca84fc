"""Wall time of the demo cohort end to end (the README's demo command) in a fresh copy.

Usage: python benchmarks/bench_demo.py [--cores 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _workdir import copy_workflow
from bench_dag import plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_workflow(work)
        snakemake = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
        planned = plan([*snakemake, "-n", "--quiet", "rules"], work)
        jobs = planned[0] if planned else "?"
        t0 = time.perf_counter()
        subprocess.run(
            [*snakemake, "--quiet"],
            cwd=work,
            check=True,
        )
        wall = time.perf_counter() - t0
        bench = sorted((work / "benchmarks/results").rglob("*.tsv"))
        per_rule: dict[str, float] = {}
        for b in bench:
            rule = b.relative_to(work / "benchmarks/results").with_suffix("").parts[0]
            secs = float(b.read_text().splitlines()[1].split("\t")[0])
            per_rule[rule] = per_rule.get(rule, 0.0) + secs
    print(f"demo cohort: {wall:.1f} s wall on {args.cores} cores, {jobs} jobs")
    for rule, secs in sorted(per_rule.items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<18} {secs:7.1f} s summed over its jobs")


if __name__ == "__main__":
    main()
