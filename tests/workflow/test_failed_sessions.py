"""One bad session never costs the cohort: four broken sessions among good ones still give
metrics, summaries and the report for the rest, ``results/failed_sessions.tsv`` and the
report name each failed session with its reason, and a fixed file reruns only its session.
One shard per setup and split (``shards: 1``): bad and good sessions share their shard jobs,
and a fixed session is computed alone within its shard."""

from __future__ import annotations

import pandas as pd
from wfhelpers import copy_repo, planned_jobs, snakemake

from ethoflow import results

HEADER = "subject\tsession\tsetup\tvideo\tpose\tpose_format\tannotations\tsplit\tgroup"
HEADER += "\tstart_frame\tend_frame\n"
DATA = "tests/data/behaviordepot_freezing"
CONFIG = """\
classifier: {modes: [pose, kinematic], primary: pose}
discover: {enabled: false}
shards: 1
"""


def _sheet_row(subject, session, pose, annotations, split, start="", end=""):
    cells = [subject, session, "fearcond", "", pose, "dlc_csv", annotations, split, "A"]
    return "\t".join([*cells, str(start), str(end)]) + "\n"


def test_three_bad_sessions_leave_the_cohort_whole(tmp_path):
    work = copy_repo(tmp_path / "run")
    bad = work / "bad"
    bad.mkdir()
    lines = (work / DATA / "demo1_tracking.csv").read_text().splitlines(keepends=True)
    # 1. a non-numeric cell in the tracking file (a train session)
    broken = lines[:500]
    cells = broken[100].split(",")
    cells[1] = "n/a?"
    broken[100] = ",".join(cells)
    (bad / "garbage.csv").write_text("".join(broken))
    # 2. a label the setup does not know (a test session)
    labels = (work / DATA / "demo1_freezing_labels.csv").read_text()
    (bad / "labels.csv").write_text(labels.replace("freezing", "grooming"))
    # 3. a tracking file without the setup's Tail keypoint (an unlabelled session)
    header_cols = [c.split(",") for c in lines[:3]]
    keep = [i for i, bp in enumerate(header_cols[1]) if bp.strip() != "Tail"]
    trimmed = [",".join(ln.rstrip("\n").split(",")[i] for i in keep) + "\n" for ln in lines]
    (bad / "no_tail.csv").write_text("".join(trimmed))
    # 4. an empty tracking file: found by the sheet check, before any job
    (bad / "empty.csv").write_text("")

    tracking, ann = f"{DATA}/demo1_tracking.csv", f"{DATA}/demo1_freezing_labels.csv"
    sheet = HEADER
    sheet += _sheet_row("fc1", "part1", tracking, ann, "train", 0, 3000)
    sheet += _sheet_row("fc1", "part2", tracking, ann, "test", 3000)
    sheet += _sheet_row("bad1", "garbage", "bad/garbage.csv", "", "train")
    sheet += _sheet_row("bad2", "labels", tracking, "bad/labels.csv", "test", 3000)
    sheet += _sheet_row("fc2", "pred", tracking, "", "predict", 0, 1500)
    sheet += _sheet_row("bad3", "no_tail", "bad/no_tail.csv", "", "predict")
    sheet += _sheet_row("bad4", "empty", "bad/empty.csv", "", "predict")
    (work / "config/sessions.tsv").write_text(sheet)
    (work / "small.yaml").write_text(CONFIG)
    args = ("--configfile", "config/config.yaml", "small.yaml")

    # on_bad_session: fail stops the run at the sheet check, before any job, naming the file
    (work / "strict.yaml").write_text("on_bad_session: fail\n")
    strict = snakemake(work, *args, "strict.yaml", "--dry-run", check=False)
    assert strict.returncode != 0 and "empty.csv" in strict.stdout + strict.stderr
    assert "no_tail.csv" in strict.stdout + strict.stderr
    assert not (work / "results").exists()

    proc = snakemake(work, *args, "--keep-going")
    failed = pd.read_csv(work / "results/failed_sessions.tsv", sep="\t")
    got = {f"{r.subject}/{r.session}": r.reason for r in failed.itertuples()}
    assert set(got) == {"bad1/garbage", "bad2/labels", "bad3/no_tail", "bad4/empty"}, failed
    steps = dict(zip(failed.subject, failed.step, strict=True))
    assert steps["bad4"] == "sheet check" and "empty.csv" in got["bad4/empty"]
    assert steps["bad1"] == "pose_preprocess" and steps["bad2"] == "labels"
    assert "garbage.csv" in got["bad1/garbage"] and "non-numeric" in got["bad1/garbage"]
    assert "labels.csv" in got["bad2/labels"] and "grooming" in got["bad2/labels"]
    assert "no_tail.csv" in got["bad3/no_tail"] and "Tail" in got["bad3/no_tail"]
    assert "left out of the cohort" in proc.stderr

    # the cohort tables and the report exist, computed on the good sessions only
    metrics = pd.read_csv(work / "results/metrics/fearcond/pose.tsv", sep="\t")
    assert set(metrics["n_sessions"]) == {1}  # fc1/part2; bad2/labels left out
    budget = pd.read_csv(work / "results/summary/time_budget.tsv", sep="\t")
    # bad annotations cost only the evaluation: bad2's predictions are in the summaries
    assert set(budget["subject"]) == {"fc1", "bad2", "fc2"}
    html = (work / "results/report/index.html").read_text()
    assert "Failed sessions" in html and "bad3" in html and "grooming" in html

    # fixing the unlabelled session's file reruns that session and the cohort tables only:
    # the jobs of its shard (the predict sessions'), which compute it and leave fc2/pred be
    (bad / "no_tail.csv").write_text("".join(lines))
    jobs = planned_jobs(work, *args, "--keep-going")
    assert jobs.get("pose_preprocess") == 1 and jobs.get("localize") == 1, jobs
    assert jobs.get("classify") == 1, jobs  # its shard's one job: pose and kinematic
    assert "train_localizer" not in jobs and "labels" not in jobs, jobs
    neighbour = [
        p
        for p in (work / "results").rglob("*")
        if p.is_file() and p.parent.name == "fc2" and p.name.startswith("pred.")
    ]
    assert len(neighbour) >= 8, neighbour  # pose, qc, stage 1, proposals, 2 modes' outputs
    before = {p: p.stat().st_mtime_ns for p in neighbour}
    snakemake(work, *args, "--keep-going")
    assert {p: p.stat().st_mtime_ns for p in neighbour} == before, "fc2/pred computed again"
    shard = results.read_manifest(work / "results/shards/pose_preprocess/fearcond.predict.000.tsv")
    assert set(shard) == {"fc2/pred", "bad3/no_tail"}
    failed = pd.read_csv(work / "results/failed_sessions.tsv", sep="\t")
    assert set(failed["subject"]) == {"bad1", "bad2", "bad4"}
    assert len(pd.read_csv(work / "results/behavior/pose/bad3/no_tail.csv")) == len(lines) - 3
