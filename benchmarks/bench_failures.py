"""A large cohort with a few broken sessions: the demo sheet plus generated pose-only sessions
(short cuts of the BehaviorDEPOT recording, 50 fps), ``--broken`` of them broken in three
ways (a non-numeric tracking cell, a label the setup does not know, a tracking file without
the setup's Tail keypoint), run end to end with the default config (every mode, discovery):

1. ``snakemake --cores C --keep-going``: wall time; ``results/failed_sessions.tsv`` must name
   exactly the broken sessions, and metrics, summaries, discovery and the report must exist;
2. one broken file fixed: the dry run's jobs, the rerun's wall time, and how many sessions'
   outputs were written again (only the fixed session's may be).

Usage: PYTHONPATH=workflow python3 benchmarks/bench_failures.py [--sessions 1000] [--broken 3]
       [--cores 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _workdir import copy_workflow
from bench_dag import plan

DATA = "tests/data/behaviordepot_freezing"
FRAMES = 1500  # rows of the shortened tracking file the generated sessions cut from
CUT = 500  # frames per generated session (10 s at 50 fps)


def _broken_files(work: Path) -> dict[str, tuple[str, str, str]]:
    """name -> (pose, annotations, split) of each kind of broken session."""
    out = work / "bench"
    out.mkdir()
    lines = (work / DATA / "demo1_tracking.csv").read_text().splitlines(keepends=True)
    (out / "short.csv").write_text("".join(lines[: 3 + FRAMES]))
    garbage = lines[: 3 + FRAMES]
    cells = garbage[100].split(",")
    cells[1] = "n/a?"
    garbage[100] = ",".join(cells)
    (out / "garbage.csv").write_text("".join(garbage))
    header = lines[1].rstrip("\n").split(",")
    keep = [i for i, bp in enumerate(header) if bp != "Tail"]
    cut = [",".join(ln.rstrip("\n").split(",")[i] for i in keep) + "\n" for ln in lines]
    (out / "no_tail.csv").write_text("".join(cut[: 3 + FRAMES]))
    labels = (work / DATA / "demo1_freezing_labels.csv").read_text()
    (out / "labels.csv").write_text(labels.replace("freezing", "grooming"))
    tracking = f"{DATA}/demo1_tracking.csv"
    return {
        "garbage": ("bench/garbage.csv", "", "predict"),
        "labels": (tracking, "bench/labels.csv", "test"),
        "no_tail": ("bench/no_tail.csv", "", "predict"),
    }


def _sheet(work: Path, n: int, n_broken: int) -> tuple[list[str], list[str]]:
    """Write the sheet; return every session's key and the broken sessions' keys."""
    demo = pd.read_csv(work / "config/sessions.tsv", sep="\t", dtype=str, keep_default_na=False)
    kinds = _broken_files(work)
    rows, broken = [], []
    for i in range(n_broken):
        kind = list(kinds)[i % len(kinds)]
        pose, ann, split = kinds[kind]
        start = "3000" if split == "test" else ""
        rows.append(
            ["bad", f"{kind}{i}", "fearcond", "", pose, "dlc_csv", ann, split, "B", start, ""]
        )
        broken.append(f"bad/{kind}{i}")
    for i in range(n - len(demo) - n_broken):
        start = (i * 97) % (FRAMES - CUT)
        cells = [f"m{i // 8:04d}", f"d{i % 8}", "fearcond", "", "bench/short.csv", "dlc_csv"]
        cells += ["", "predict", "AB"[i % 2], str(start), str(start + CUT)]
        rows.append(cells)
    sheet = pd.concat([demo, pd.DataFrame(rows, columns=demo.columns)], ignore_index=True)
    sheet.to_csv(work / "config/sessions.tsv", sep="\t", index=False)
    return [f"{s}/{t}" for s, t in zip(sheet.subject, sheet.session, strict=True)], broken


def _snakemake(work: Path, cores: int, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--keep-going", *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    return r, time.perf_counter() - t0


def _times(work: Path) -> dict[Path, int]:
    """Modification time of every results file but the shard manifests."""
    return {
        p: p.stat().st_mtime_ns
        for p in (work / "results").rglob("*.*")
        if p.is_file() and p.parent.parent.name != "shards"
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--broken", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        copy_workflow(work)
        keys, broken = _sheet(work, args.sessions, args.broken)

        r, wall = _snakemake(work, args.cores)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-6000:], file=sys.stderr)
            return 1
        failed = pd.read_csv(work / "results/failed_sessions.tsv", sep="\t")
        named = sorted(f"{s}/{t}" for s, t in zip(failed.subject, failed.session, strict=True))
        assert named == sorted(broken), named
        for table in (
            "metrics/comparison.tsv",
            "summary/time_budget.tsv",
            "discover/clusters.tsv",
            "report/index.html",
        ):
            assert (work / "results" / table).stat().st_size > 0, table
        html = (work / "results/report/index.html").read_text()
        section = html[html.index("Failed sessions</h2>") :].split("<h2>")[0]
        for key in broken:
            assert f"<td>{key.split('/')[1]}</td>" in section, f"the report omits {key}"
        budget = pd.read_csv(work / "results/summary/time_budget.tsv", sep="\t")
        n_summarized = len(budget.groupby(["subject", "session"]))
        print(
            f"{args.sessions} sessions, {len(broken)} broken: first run {wall:.0f} s "
            f"({wall / 60:.1f} min, --cores {args.cores}); failed_sessions.tsv names exactly the "
            f"broken ones, as does the report; {n_summarized} sessions in the time budget; "
            "metrics, discovery and report written"
        )

        # fix one broken file: only its session is computed again
        fixed = next(k for k in broken if "no_tail" in k)
        shutil.copy2(work / "bench/short.csv", work / "bench/no_tail.csv")
        before = _times(work)
        dry = plan([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules"], work)
        assert dry is not None, "the dry run failed"
        total, dry_wall = dry
        r2, wall2 = _snakemake(work, args.cores)
        if r2.returncode != 0:
            print(r2.stdout[-3000:], r2.stderr[-6000:], file=sys.stderr)
            return 1
        written = {p for p, t in _times(work).items() if before.get(p) != t}
        written_by = {}
        for p in written:
            written_by.setdefault(f"{p.parent.name}/{p.name.split('.')[0]}", []).append(p)
        others = sorted((set(written_by) & set(keys)) - {fixed})
        assert not others, others[:10]
        failed = pd.read_csv(work / "results/failed_sessions.tsv", sep="\t")
        assert len(failed) == len(broken) - 1, failed
        print(
            f"after fixing {fixed}: dry run {dry_wall:.0f} s planned {total} jobs; rerun "
            f"{wall2:.0f} s; outputs of no other session written again "
            f"({len(written_by.get(fixed, []))} files of {fixed} written)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
