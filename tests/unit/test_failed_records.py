"""Failure records: a per-session job with bad input records the reason in place of its
outputs (and later jobs pass it on) instead of failing; cohort steps leave such rows out."""

from __future__ import annotations

import pytest

from ethoflow import results
from ethoflow.smk import StepCall, call_step


def _job(tmp_path, inputs: dict, outputs: dict, params: dict, on_bad="skip"):
    """A session's call of a step, as a shard job makes it, and the job's config."""
    call = StepCall(inputs, outputs, params, log=str(tmp_path / "job.log"), session="m1/s1")
    return call, {"on_bad_session": on_bad}


def run_step(job, name):
    call, config = job
    call_step(name, call, config)


LABEL_PARAMS = {
    "rule": "",
    "behaviors": ["freezing"],
    "setup": {},
    "kinematic": {},
    "behavior_map": {},
}


def test_bad_input_writes_a_record_per_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results/pose/m1").mkdir(parents=True)
    (tmp_path / "results/pose/m1/s1.h5").write_bytes(b"not an h5 file")
    job = _job(
        tmp_path,
        {"pose_h5": "results/pose/m1/s1.h5", "annotations": "ann.csv"},
        {"labels": "results/labels/m1/s1.csv"},
        LABEL_PARAMS,
    )
    run_step(job, "labels")  # no SystemExit: the session is recorded as failed
    reason = results.failed_reason("results/labels/m1/s1.csv")
    assert reason.startswith("labels: results/pose/m1/s1.h5: not a readable ethoflow pose h5")

    # a later job of the same session passes the record on without running its step
    later = _job(
        tmp_path,
        {"labels": "results/labels/m1/s1.csv", "pose_h5": "results/pose/m1/s1.h5"},
        {"a": "results/x/m1/s1.csv", "b": "results/y/m1/s1.h5"},
        {},
    )
    run_step(later, "classify")
    assert results.failed_reason("results/x/m1/s1.csv") == reason
    assert results.failed_reason("results/y/m1/s1.h5") == reason


def test_fail_mode_and_real_bugs_still_fail_the_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = _job(
        tmp_path,
        {"pose_h5": "results/pose/m1/s1.h5", "annotations": "ann.csv"},
        {"labels": "results/labels/m1/s1.csv"},
        LABEL_PARAMS,
        on_bad="fail",
    )
    with pytest.raises(SystemExit):
        run_step(job, "labels")
    assert not (tmp_path / "results/labels/m1/s1.csv").exists()
    # a programming error (an unknown parameter) is no bad input: never recorded
    bug = _job(
        tmp_path,
        {"pose_h5": "results/pose/m1/s1.h5", "annotations": "ann.csv"},
        {"labels": "results/labels/m1/s1.csv"},
        {**LABEL_PARAMS, "no_such_param": 1},
    )
    with pytest.raises(SystemExit):
        run_step(bug, "labels")
    assert not (tmp_path / "results/labels/m1/s1.csv").exists()


def test_drop_failed_keeps_rows_aligned(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("frame,behavior\n0,other\n")
    bad = tmp_path / "bad.csv"
    results.write_failed(bad, "pose_preprocess: x.csv: truncated")
    keys = ["a/1", "b/1", "c/1"]
    first = [str(good), str(bad), str(good)]
    second = [str(good), str(good), None]
    kept, dropped = results.drop_failed(keys, first, second)
    assert kept == [["a/1", "c/1"], [str(good), str(good)], [str(good), None]]
    assert dropped == [(1, "pose_preprocess: x.csv: truncated")]
    assert results.failed_reason(good) is None and results.failed_reason(tmp_path / "no") is None
    with pytest.raises(ValueError):
        results.drop_failed(keys, first[:2])


def test_evaluation_of_only_failed_sessions_is_an_empty_table(tmp_path):
    from ethoflow.steps.classify import evaluate

    b, lb = tmp_path / "b.csv", tmp_path / "l.csv"
    results.write_failed(b, "cut_clips: v.mp4: cannot decode")
    results.write_failed(lb, "cut_clips: v.mp4: cannot decode")
    out = tmp_path / "m.tsv"
    evaluate([str(b)], [str(lb)], str(out), str(tmp_path / "c.png"), ["freezing"], "test")
    table = results.read_table(out)
    assert list(table["n_sessions"].unique()) == [0]
    assert table[["precision", "recall", "f1", "ap"]].isna().all().all()
    assert (table["support"] == 0).all()
