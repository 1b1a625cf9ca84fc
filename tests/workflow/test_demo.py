"""The demo cohort end to end: every declared output exists and honours its contract."""

from __future__ import annotations

import json
import re
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
from wfhelpers import REPO, copy_repo, planned_jobs, snakemake

from ethoflow.results import read_clips

# the session-scoped demo run is shared by the files of this group: one worker runs them
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("demo")]

SHEET = pd.read_csv(REPO / "config/sessions.tsv", sep="\t", dtype=str, keep_default_na=False)
VIDEO = SHEET[SHEET.video != ""]
BEHAVIORS = {
    "triplet": ["contact", "locomotion", "immobile"],
    "openfield": ["locomotion", "immobile"],
    "fearcond": ["freezing"],
}
MODES = ["pose", "kinematic", "linear", "pose+vlm", "knn", "icl"]
POSE_MODES = ["pose", "kinematic"]  # need no video


def keys(df):
    return [f"{r.subject}/{r.session}" for r in df.itertuples()]


def n_pose_frames(run, k):
    with h5py.File(run / f"results/pose/{k}.h5", "r") as f:
        return f["keypoints"].shape[0]


def test_every_declared_output_exists(demo_run):
    proc = snakemake(demo_run, "--summary")
    lines = [ln.split("\t") for ln in proc.stdout.splitlines() if "\t" in ln]
    header, rows = lines[0], lines[1:]
    assert header[0] == "output_file"
    assert len(rows) > 100
    missing = [r[0] for r in rows if not (demo_run / r[0]).exists()]
    assert missing == []
    assert planned_jobs(demo_run) == {}, "a second run with nothing changed must run nothing"


def test_pose_h5_contract(demo_run):
    for r in SHEET.itertuples():
        with h5py.File(demo_run / f"results/pose/{r.subject}/{r.session}.h5", "r") as f:
            kp, conf, feats = f["keypoints"], f["confidence"], f["features"][()]
            t, a, k, two = kp.shape
            assert kp.dtype == np.float32 and conf.dtype == np.float32
            assert two == 2 and conf.shape == (t, a, k) and feats.shape[0] == t
            assert np.isfinite(feats).all()
            n_animals = {"triplet": 3}.get(r.setup, 1)
            assert a == n_animals
            start = int(r.start_frame or 0)
            total = int(f.attrs["n_source_frames"])
            end = int(r.end_frame) if r.end_frame else total
            assert t == end - start
            assert float(f.attrs["fps"]) > 0


def test_labels_are_per_frame_and_in_vocabulary(demo_run):
    for r in SHEET.itertuples():
        k = f"{r.subject}/{r.session}"
        df = pd.read_csv(demo_run / f"results/labels/{k}.csv")
        assert list(df.columns) == ["frame", "behavior"]
        assert len(df) == n_pose_frames(demo_run, k)
        assert set(df.behavior) <= {"other", *BEHAVIORS[r.setup]}
        assert (df.frame.to_numpy() == np.arange(len(df))).all()


def test_proposals_and_clips(demo_run):
    for r in VIDEO.itertuples():
        k = f"{r.subject}/{r.session}"
        n = n_pose_frames(demo_run, k)
        props = pd.read_csv(demo_run / f"results/proposals/{k}.tsv", sep="\t")
        assert list(props.columns[:3]) == ["start_frame", "end_frame", "score"]
        assert (props.start_frame >= 0).all() and (props.end_frame <= n).all()
        assert (props.end_frame > props.start_frame).all()
        d = read_clips(demo_run / f"results/clips/{k}.h5")  # JPEG frames, decoded
        frames = d["frames"]
        assert frames.dtype == np.uint8 and frames.ndim == 5
        assert d["frame_codec"] == "jpeg" and d["decode_check"] in ("exact", "mismatch")
        nclip, nf, h, w, c = frames.shape
        assert nf == 10 and (h, w, c) == (224, 224, 3)
        idx = d["frame_index"]
        start, end = d["start_frame"], d["end_frame"]
        assert idx.shape == (nclip, nf)
        assert ((idx >= start[:, None]) & (idx < end[:, None])).all()
        assert (np.diff(idx, axis=1) >= 0).all()
        if nclip:
            assert frames[0].std() > 1, "decoded frames must hold an image"


def test_embeddings_and_descriptions(demo_run):
    for k in keys(VIDEO):
        nclip = read_clips(demo_run / f"results/clips/{k}.h5", frames=False)["n_clips"]
        with h5py.File(demo_run / f"results/embeddings/{k}.h5", "r") as f:
            emb = f["embeddings"]
            assert emb.dtype == np.float16 and emb.shape[0] == nclip and emb.shape[1] > 0
            assert np.isfinite(emb[()]).all()
            assert bool(f.attrs["random_demo_model"]) is True
            for attr in ("model", "prompt", "pooling", "layer"):
                assert attr in f.attrs
        lines = (demo_run / f"results/descriptions/{k}.jsonl").read_text().splitlines()
        assert len(lines) == nclip
        for line in lines:
            rec = json.loads(line)
            assert isinstance(rec["text"], str) and rec["n_tokens"] > 0


def test_vlm_jobs_share_the_model_server(demo_run):
    """Every VLM job of the local run was served by the run's model server: far fewer model
    loads than jobs (one, unless the server idled out between stages), and no clip through
    the vision tower twice within a server's life."""
    jobs = sorted((demo_run / "logs").glob("vlm_*/*/*.log"))
    assert len(jobs) >= 3 * len(keys(VIDEO))
    assert all("model server pid" in j.read_text() for j in jobs)
    logs = list((demo_run / "logs" / "vlm_server").glob("*.log"))
    text = "".join(p.read_text() for p in logs)
    loads = text.count("model loaded once")
    assert 1 <= loads <= len(jobs) // 3
    cached = sum(int(x) for x in re.findall(r"from the cache (\d+)", text))
    nclips = sum(
        read_clips(demo_run / f"results/clips/{k}.h5", frames=False)["n_clips"] for k in keys(VIDEO)
    )
    assert cached >= nclips  # describe (at least) found every clip encoded by embed


def test_behavior_vectors(demo_run):
    for r in SHEET.itertuples():
        k = f"{r.subject}/{r.session}"
        n = n_pose_frames(demo_run, k)
        modes = MODES if r.video else POSE_MODES
        vocab = ["other", *BEHAVIORS[r.setup]]
        for mode in modes:
            df = pd.read_csv(demo_run / f"results/behavior/{mode}/{k}.csv")
            assert list(df.columns) == ["frame", "time_s", "label"] + [f"p_{b}" for b in vocab]
            assert len(df) == n
            assert set(df.label) <= set(vocab)
            p = df[[f"p_{b}" for b in vocab]].to_numpy()
            assert ((p >= 0) & (p <= 1)).all()
            assert np.allclose(p.sum(axis=1), 1, atol=1e-3)
            # the label is the most probable class (the CSV rounds to 4 decimals)
            chosen = p[np.arange(n), [vocab.index(v) for v in df.label]]
            assert (chosen >= p.max(axis=1) - 1e-3).all()
            ev = pd.read_csv(demo_run / f"results/behavior/{mode}/{k}.events.csv")
            assert list(ev.columns) == ["behavior", "start_s", "stop_s"]
            assert (ev.stop_s > ev.start_s).all() and set(ev.behavior) <= set(vocab[1:])
            assert (demo_run / f"results/behavior/{mode}/{k}.nwb").stat().st_size > 0
            # the same bouts in the BORIS aggregated-events table (read as pandas reads it)
            bo = pd.read_csv(demo_run / f"results/behavior/{mode}/{k}.boris.csv")
            assert len(bo) == len(ev) and set(bo["Behavior type"]) <= {"STATE"}
            np.testing.assert_allclose(
                bo["Start (s)"].to_numpy(float), ev.start_s.to_numpy(float), atol=1e-3
            )


def test_metrics_and_summary(demo_run):
    comparison = pd.read_csv(demo_run / "results/metrics/comparison.tsv", sep="\t")
    assert set(comparison.setup) == set(BEHAVIORS)
    for setup in BEHAVIORS:
        modes = MODES if setup != "fearcond" else POSE_MODES
        for mode in modes:
            m = pd.read_csv(demo_run / f"results/metrics/{setup}/{mode}.tsv", sep="\t")
            f1 = m["f1"].dropna()
            assert ((f1 >= 0) & (f1 <= 1)).all()
            assert (m.evaluated_on == "test").all()
    # the real freezing labels: the pose baseline must find freezing on the held-out half
    fc = pd.read_csv(demo_run / "results/metrics/fearcond/pose.tsv", sep="\t")
    assert fc.set_index(fc.columns[0]).loc["freezing", "f1"] > 0.6
    # the kinematic baseline, tuned on minute 1, on the real labels of minute 2
    kin = pd.read_csv(demo_run / "results/metrics/fearcond/kinematic.tsv", sep="\t")
    assert kin.set_index(kin.columns[0]).loc["freezing", "f1"] > 0.8
    assert "kinematic" in set(comparison[comparison.setup == "fearcond"]["mode"])
    bouts = pd.read_csv(demo_run / "results/summary/bouts.tsv", sep="\t")
    assert list(bouts.columns) == [
        "subject", "session", "setup", "group", "mode", "behavior", "start_s", "stop_s",
        "duration_s",
    ]  # fmt: skip
    n_events = sum(
        len(pd.read_csv(p)) for p in (demo_run / "results/behavior").rglob("*.events.csv")
    )
    assert len(bouts) == n_events and np.allclose(bouts.duration_s, bouts.stop_s - bouts.start_s)
    budget = pd.read_csv(demo_run / "results/summary/time_budget.tsv", sep="\t")
    for _, g in budget.groupby(["subject", "session"]):
        assert 0 <= g["fraction"].sum() <= 1.0 + 1e-6


def test_report_is_honest(demo_run):
    html = (demo_run / "results/report/index.html").read_text()
    assert "random" in html.lower() and "rule-based" in html.lower()
    assert "<img" in html


def test_bad_sheet_fails_before_any_job(tmp_path):
    work = copy_repo(tmp_path)
    sheet = work / "config/sessions.tsv"
    text = sheet.read_text().replace(
        "tests/data/dlc_openfield/m3v1mp4.mp4", "tests/data/dlc_openfield/missing.mp4", 1
    )
    sheet.write_text(text)
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "line 4 (openfield1/part1), column video" in out and "missing.mp4" in out
    assert not (work / "results").exists()
    sheet.write_text(text.replace("missing.mp4", "m3v1mp4.mp4").replace("dlc_csv", "dlc_xlsx", 1))
    proc = snakemake(work, "--dry-run", check=False)
    assert proc.returncode != 0 and "dlc_xlsx" in proc.stdout + proc.stderr


@pytest.fixture
def finished_copy(demo_run, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(demo_run, dest, symlinks=True)
    return dest


def _mtimes(files) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in files if p.is_file()}


def _per_session_outputs(run, keys):
    """Modification times of every per-session output (results/<step>/[<mode>/]<subject>/
    <session>.<ext>) of the given sessions."""
    steps = ("pose", "qc", "labels", "stage1", "proposals", "clips", "embeddings")
    steps += ("descriptions", "icl", "behavior")
    wanted = set(keys)
    files = (
        p
        for step in steps
        for p in (run / "results" / step).rglob("*")
        if f"{p.parent.name}/{p.name.split('.')[0]}" in wanted
    )
    return _mtimes(files)


def test_adding_a_session_runs_only_its_jobs(finished_copy):
    sheet = finished_copy / "config/sessions.tsv"
    row = (
        "triplet2\tpart1\ttriplet\ttests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4\t"
        "tests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5\tdlc_h5\t\tpredict\tB\t300\t900\n"
    )
    before = _per_session_outputs(finished_copy, keys(SHEET))
    models = _mtimes((finished_copy / "results/models").rglob("*"))
    assert len(before) > 50 and models
    sheet.write_text(sheet.read_text() + row)
    jobs = planned_jobs(finished_copy)
    # one job of each per-session rule, for the new session's own shard (every mode of it
    # classified in one job)
    per_session = {
        "pose_preprocess": 1,
        "localize": 1,
        "cut_clips": 1,
        "vlm_embed": 1,
        "vlm_describe": 1,
        "vlm_icl": 1,
        "classify": 1,
    }
    cohort = {"summarize": 1, "discover": 1, "report": 1, "failed_sessions": 1, "all": 1}
    assert jobs == {**per_session, **cohort}, jobs

    # run it: the new session's outputs appear, nothing of the other sessions is rewritten
    snakemake(finished_copy)
    for mode in MODES:
        df = pd.read_csv(finished_copy / f"results/behavior/{mode}/triplet2/part1.csv")
        assert len(df) == 600
    assert _per_session_outputs(finished_copy, keys(SHEET)) == before
    assert _mtimes((finished_copy / "results/models").rglob("*")) == models
    assert planned_jobs(finished_copy) == {}, "a rerun after the addition must run nothing"


def test_changed_prompt_reruns_stage2_and_below_only(finished_copy):
    cfg = finished_copy / "config/config.yaml"
    text = cfg.read_text()
    old = 'prompt: "What are the three mice doing in this video?"'
    assert old in text
    cfg.write_text(text.replace(old, 'prompt: "Which mouse is chasing which?"'))
    jobs = planned_jobs(finished_copy)
    # the triplet setup's embeddings (2 sessions, each its own shard) and everything that
    # reads them: the embedding classifiers, the shards' classify jobs (one per shard for
    # every mode; they compute the embedding modes again, whose inputs changed), the
    # setup's evaluations (of every mode: they wait on those jobs), the cohort tables. Not
    # ingest, labels, stage 1, clips, descriptions or ICL (their prompts did not change).
    assert jobs == {
        "vlm_embed": 2,
        "train_classifier": 3,
        "classify": 2,
        "evaluate": 6,
        "compare": 1,
        "summarize": 1,
        "discover": 1,
        "report": 1,
        "failed_sessions": 1,
        "all": 1,
    }, jobs


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
