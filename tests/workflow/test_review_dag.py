"""A correction made in ``ethoflow review`` feeds the normal DAG: pointing the sheet row's
``annotations`` at the reviewed file retrains the models of that session's setup, and only
those; the reviewed file becomes the session's training labels."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from wfhelpers import planned_jobs, snakemake

from ethoflow import results, shards
from ethoflow.review.store import open_run

# the session-scoped demo run is shared by the files of this group: one worker runs them
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("demo")]

KEY = "openfield1/part1"  # a train-split session of the openfield setup
# the shards of the openfield setup's sessions (config shards: 64)
SHARD = shards.shard_name("openfield", "train", shards.bucket(KEY, 64))
OPENFIELD_SHARDS = {
    SHARD,
    shards.shard_name("openfield", "test", shards.bucket("openfield1/part2", 64)),
}


@pytest.fixture
def finished_copy(demo_run, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(demo_run, dest, symlinks=True)
    return dest


def planned(workdir) -> list[tuple[str, dict]]:
    """``(rule, wildcards)`` of every job a dry run would execute."""
    proc = snakemake(workdir, "--dry-run")
    jobs, rule = [], None
    for line in proc.stdout.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line.strip())
        if m:
            rule = m.group(1)
            jobs.append((rule, {}))
        elif rule and line.strip().startswith("wildcards:"):
            pairs = line.split(":", 1)[1].split(",")
            jobs[-1][1].update(p.strip().split("=", 1) for p in pairs if "=" in p)
    return jobs


def test_reviewed_file_retrains_exactly_its_setups_models(finished_copy):
    run = finished_copy
    store = open_run("config/config.yaml", workdir=run, reviewer="ana")
    store.build_index()
    state = store.state(KEY)
    first = state["bouts"][0]
    assert first["behavior"] == "locomotion", first  # the demo's first predicted bout
    store.save(
        KEY,
        state["etag"],
        [{"op": "relabel", "start": first["start"], "stop": first["stop"], "behavior": "immobile"}],
    )
    reviewed = run / f"results/review/{KEY}.csv"
    assert results.read_review(reviewed)["status"].tolist()[0] == "relabeled"
    # the review app's files are not part of the DAG: nothing to do yet
    assert planned_jobs(run) == {}

    sheet = run / "config/sessions.tsv"
    df = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    row = (df.subject + "/" + df.session) == KEY
    original = df.loc[row, "annotations"].item()
    df.loc[row, "annotations"] = f"results/review/{KEY}.csv"
    df.to_csv(sheet, sep="\t", index=False)
    jobs = planned(run)
    assert jobs, "pointing the sheet at the reviewed file must rerun something"
    for rule, wc in jobs:
        assert wc.get("setup", "openfield") == "openfield", (rule, wc)
        assert wc.get("shard", SHARD) in OPENFIELD_SHARDS, (rule, wc)
    labels = [wc for rule, wc in jobs if rule == "labels"]
    assert labels == [{"shard": SHARD}]
    models = sorted(
        (rule, wc.get("mode", ""))
        for rule, wc in jobs
        if rule.startswith("train_") or rule == "icl_exemplars"
    )
    # every model of the openfield setup that learns from labels, nothing else
    assert models == [
        ("icl_exemplars", ""),
        ("train_classifier", "knn"),
        ("train_classifier", "linear"),
        ("train_classifier", "pose+vlm"),
        ("train_kinematic", ""),
        ("train_localizer", ""),
    ], models

    # the labels the models would train on are the reviewed ones
    snakemake(run, f"results/shards/labels/{SHARD}.tsv")
    y = pd.read_csv(run / f"results/labels/{KEY}.csv")["behavior"]
    assert (y[first["start"] : first["stop"]] == "immobile").all()
    assert original != f"results/review/{KEY}.csv"  # the original annotations are untouched
