"""Shards: stable assignment of sessions, and a shard job that computes only the sessions
whose files or settings changed (ethoflow.shards, ethoflow.smk.StepCall)."""

from __future__ import annotations

import os

import pytest

from ethoflow import results, shards
from ethoflow.results import write_failed
from ethoflow.smk import StepCall


def test_bucket_is_crc32_of_the_key():
    # the CRC-32 check value of "123456789" is 0xCBF43926 = 3,421,780,262
    assert shards.bucket("123456789", 1000) == 262
    assert shards.bucket("123456789", 2**32) == 0xCBF43926


def test_assign_keeps_splits_and_setups_apart_and_sessions_in_place():
    rows = [(f"m{i}/d{i % 3}", "rig", "train" if i < 50 else "predict") for i in range(200)]
    before = shards.assign(rows, 8)
    assert sum(len(v) for v in before.values()) == 200
    for name, keys in before.items():
        setup, split, _ = name.split(".")
        assert {r[2] for r in rows if r[0] in keys} == {split}
        assert setup == "rig"
    assert len(before) == 16  # 8 buckets of each split, all used at this size
    # adding sessions (another setup, more predict rows) moves no existing session
    more = rows + [(f"n{i}/d0", "rig", "predict") for i in range(40)] + [("x/1", "other", "test")]
    after = shards.assign(more, 8)
    where = {k: s for s, keys in after.items() for k in keys}
    for name, keys in before.items():
        assert all(where[k] == name for k in keys)
    assert where["x/1"].startswith("other.test.")


def _calls(tmp_path, n=3, param=1):
    calls = []
    for i in range(n):
        src = tmp_path / f"in{i}.txt"
        if not src.exists():
            src.write_text(f"input {i}")
        calls.append(
            StepCall(
                input={"src": str(src)},
                output={"out": str(tmp_path / f"out{i}.txt")},
                params={"factor": param},
                log=None,
                session=f"s/{i}",
            )
        )
    return calls


def _copy(call):
    with open(call.input["src"]) as f:
        text = f.read()
    with open(call.output["out"], "w") as f:
        f.write(f"{text} x{call.params['factor']}")


def test_a_shard_job_recomputes_only_what_changed(tmp_path):
    manifest = str(tmp_path / "m.tsv")
    ran = []

    def run(call):
        ran.append(call.session)
        _copy(call)

    rows = shards.run_sessions("step", _calls(tmp_path), manifest, run)
    assert ran == ["s/0", "s/1", "s/2"]
    assert [r["status"] for r in rows.values()] == ["ok"] * 3
    ran.clear()
    shards.run_sessions("step", _calls(tmp_path), manifest, run)
    assert ran == [], "nothing changed: nothing runs"

    # a changed input file (new size and time) reruns its session only
    src = tmp_path / "in1.txt"
    src.write_text("input 1, fixed")
    os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 10**9))
    shards.run_sessions("step", _calls(tmp_path), manifest, run)
    assert ran == ["s/1"]
    assert (tmp_path / "out1.txt").read_text() == "input 1, fixed x1"

    # a deleted output reruns its session; a changed setting reruns every session
    ran.clear()
    (tmp_path / "out2.txt").unlink()
    shards.run_sessions("step", _calls(tmp_path), manifest, run)
    assert ran == ["s/2"]
    ran.clear()
    shards.run_sessions("step", _calls(tmp_path, param=2), manifest, run)
    assert ran == ["s/0", "s/1", "s/2"]
    assert (tmp_path / "out0.txt").read_text() == "input 0 x2"

    # a new session in the shard runs alone; a session gone from it leaves the manifest
    ran.clear()
    rows = shards.run_sessions("step", _calls(tmp_path, n=4, param=2)[1:], manifest, run)
    assert ran == ["s/3"]
    assert list(results.read_manifest(manifest)) == list(rows) == ["s/1", "s/2", "s/3"]


def test_a_killed_shard_job_resumes_after_the_finished_sessions(tmp_path):
    manifest = str(tmp_path / "m.tsv")
    ran = []

    def dies_on_third(call):
        if call.session == "s/2":
            raise KeyboardInterrupt  # stands in for the kill: nothing after it runs
        ran.append(call.session)
        _copy(call)

    with pytest.raises(KeyboardInterrupt):
        shards.run_sessions("step", _calls(tmp_path, n=4), manifest, dies_on_third)
    assert list(results.read_manifest(manifest)) == ["s/0", "s/1"]
    ran.clear()
    shards.run_sessions(
        "step", _calls(tmp_path, n=4), manifest, lambda c: (ran.append(c.session), _copy(c))
    )
    assert ran == ["s/2", "s/3"]


def test_failure_records_are_marked_failed(tmp_path):
    manifest = str(tmp_path / "m.tsv")

    def run(call):
        if call.session == "s/1":
            write_failed(call.output["out"], "step: in1.txt: not a pose file")
        else:
            _copy(call)

    rows = shards.run_sessions("step", _calls(tmp_path), manifest, run)
    assert [r["status"] for r in rows.values()] == ["ok", "failed", "ok"]


def test_an_unreadable_or_foreign_manifest_counts_as_none(tmp_path):
    path = tmp_path / "m.tsv"
    assert results.read_manifest(str(path)) == {}
    path.write_text("subject\tsession\nа\tb\n")
    assert results.read_manifest(str(path)) == {}
