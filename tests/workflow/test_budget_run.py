"""A reduced cohort (the two open-field sessions, pose mode only) run with a GPU budget: each
clips h5 holds exactly its session's chosen windows, the report shows the trade-off, a rerun
with nothing changed runs nothing, and a changed budget re-cuts only the sessions whose own
chosen windows changed."""

from __future__ import annotations

import h5py
import pandas as pd
from wfhelpers import copy_repo, planned_jobs, snakemake

from ethoflow import shards

CONFIG = """\
classifier: {{modes: [pose], primary: pose}}
discover: {{enabled: false}}
vlm: {{describe: false, budget_gpu_hours: {hours}, budget_seconds_per_clip: 4.0}}
"""
KEYS = ("openfield1/part1", "openfield1/part2")
SPLITS = ("train", "test")
SHARDS = [
    shards.shard_name("openfield", split, shards.bucket(k, 64))
    for k, split in zip(KEYS, SPLITS, strict=True)
]
# the clips of both sessions (pose mode alone does not need them): their shards' cut_clips
TARGETS = ("all", *(f"results/shards/cut_clips/{s}.tsv" for s in SHARDS))


def _chosen(work) -> dict[str, list[tuple[int, int]]]:
    sel = pd.read_csv(work / "results/budget/selection.tsv", sep="\t", dtype=str)
    sel = sel[sel.chosen == "1"]
    return {
        k: [
            (int(s), int(e))
            for s, e, subj, ses in zip(
                sel.start_frame, sel.end_frame, sel.subject, sel.session, strict=True
            )
            if f"{subj}/{ses}" == k
        ]
        for k in KEYS
    }


def _clips(work, k) -> list[tuple[int, int]]:
    with h5py.File(work / f"results/clips/{k}.h5", "r") as f:
        return list(zip(f["start_frame"][()].tolist(), f["end_frame"][()].tolist(), strict=True))


def test_budget_run_cuts_only_the_chosen_windows(tmp_path):
    work = copy_repo(tmp_path / "run")
    sheet = (work / "config/sessions.tsv").read_text().splitlines(keepends=True)
    rows = [ln for ln in sheet[1:] if ln.startswith("openfield1\t")]
    (work / "config/sessions.tsv").write_text(sheet[0] + "".join(rows))
    offsets = {f"openfield1/{r.split(chr(9))[1]}": int(r.split("\t")[9] or 0) for r in rows}
    assert offsets == {"openfield1/part1": 0, "openfield1/part2": 1500}
    (work / "small.yaml").write_text(CONFIG.format(hours=0.01))
    args = (*TARGETS, "--configfile", "config/config.yaml", "small.yaml")
    snakemake(work, *args)

    chosen = _chosen(work)
    sel = pd.read_csv(work / "results/budget/selection.tsv", sep="\t")
    n_chosen = int(sel.chosen.sum())
    assert n_chosen == int(0.01 * 3600 // 4.0) < len(sel)  # 9 of the clips fit the budget
    for k in KEYS:  # clips files keep video frames: session frames + the sheet's start
        assert _clips(work, k) == [(s + offsets[k], e + offsets[k]) for s, e in chosen[k]]
    trade = pd.read_csv(work / "results/budget/tradeoff.tsv", sep="\t").set_index("budget")
    assert trade.loc["chosen", "clips"] == n_chosen and trade.loc["none", "clips"] == len(sel)
    html = (work / "results/report/index.html").read_text()
    assert "<h2>GPU budget" in html and f"{n_chosen} of {len(sel)}</b> clips" in html

    assert planned_jobs(work, *args) == {}, "nothing changed: nothing runs"

    # a larger budget: the checkpoint solves again; only sessions whose own chosen windows
    # changed are cut again (the selection file itself is an ancient() input)
    before = {k: (work / f"results/clips/{k}.h5").stat().st_mtime_ns for k in KEYS}
    (work / "small.yaml").write_text(CONFIG.format(hours=0.0125))
    snakemake(work, *args)
    after_chosen = _chosen(work)
    changed = {k for k in KEYS if after_chosen[k] != chosen[k]}
    recut = {k for k in KEYS if (work / f"results/clips/{k}.h5").stat().st_mtime_ns != before[k]}
    assert changed and changed != set(KEYS), f"the test needs a mixed case: {changed}"
    assert recut == changed
    for k in KEYS:
        assert _clips(work, k) == [(s + offsets[k], e + offsets[k]) for s, e in after_chosen[k]]
