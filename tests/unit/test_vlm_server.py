"""One model per allocation: the VLM server and its vision cache, with the tiny Qwen2.5-VL.

The reference is the same step run with ``vlm_server.enabled: false``: a model loaded in the
job, stock vision tower, no cache. The server must give the same numbers while loading the
model once and running each clip (and exemplar) through the vision tower once, whichever of
embed, describe and ICL asks first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from ethoflow.results import read_icl_scores, write_clips, write_icl_exemplars
from ethoflow.steps.vlm import vlm_describe, vlm_embed, vlm_icl
from ethoflow.vision_cache import clip_keys
from ethoflow.vlm import load_vlm

BEHAVIORS = ["freezing", "fleeing"]
DEFS = {"freezing": "no movement but breathing", "fleeing": "running away fast"}


def _frames(seed: int, n: int) -> np.ndarray:
    """Clips with structure (moving bright blob on a gradient), not white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:56, 0:56]
    out = np.empty((n, 4, 56, 56, 3), np.uint8)
    for c in range(n):
        cy, cx = rng.integers(10, 46, 2)
        for f in range(4):
            blob = 200 * np.exp(-((yy - cy - 2 * f) ** 2 + (xx - cx) ** 2) / 40.0)
            img = np.clip(blob + xx + rng.normal(0, 4, (56, 56)), 0, 255)
            out[c, f] = np.stack([img, img * 0.8, img * 0.6], -1).astype(np.uint8)
    return out


@pytest.fixture
def sessions(tmp_path, tiny_vlm_dir, monkeypatch):
    """Two sessions' clips h5 (3 and 2 clips), the ICL exemplars, a short socket folder."""
    monkeypatch.chdir(tmp_path)
    sock = tempfile.mkdtemp(prefix="efs", dir="/tmp")
    monkeypatch.setenv("ETHOFLOW_VLM_SOCKET_DIR", sock)
    clips = []
    for i, n in enumerate((3, 2)):
        frames = _frames(i, n)
        starts = np.arange(n) * 150
        index = np.stack([np.linspace(s, s + 140, 4) for s in starts]).astype(np.int64)
        p = tmp_path / f"clips{i}.h5"
        write_clips(p, frames, starts, starts + 150, index, frames.shape[1:], {})
        clips.append(str(p))
    ex = tmp_path / "exemplars.h5"
    write_icl_exemplars(ex, _frames(9, 2), ["fleeing", "other"], [["x", 0], ["x", 1]])
    settings = {
        "model": str(tiny_vlm_dir),
        "revision": "",
        "dtype": "float32",
        "attn": "sdpa",
        "batch_size": 2,
        "prompt": "What are the mice doing?",
        "pooling": "video_mean",
        "layer": -1,
        "describe_prompt": "Describe.",
        "max_new_tokens": 4,
    }
    yield tmp_path, clips, str(ex), settings
    for log in (tmp_path / "logs" / "vlm_server").glob("*.log"):
        for pid in set(re.findall(r"pid (\d+)", log.read_text())):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(sock, ignore_errors=True)


def _run_all(clips, ex, settings, out, server):
    for i, c in enumerate(clips):
        vlm_embed(c, None, str(out / f"emb{i}.h5"), settings, 1, server)
        vlm_describe(c, None, str(out / f"desc{i}.jsonl"), settings, 1, server)
        vlm_icl(c, ex, None, str(out / f"icl{i}.h5"), settings, BEHAVIORS, DEFS, 1, server)


def _server_log(tmp_path) -> str:
    logs = list((tmp_path / "logs" / "vlm_server").glob("*.log"))
    assert len(logs) == 1, logs
    return logs[0].read_text()


def test_server_loads_once_encodes_each_clip_once_and_equals_a_job_local_model(sessions, capsys):
    tmp_path, clips, ex, settings = sessions
    (tmp_path / "ref").mkdir()
    (tmp_path / "srv").mkdir()
    _run_all(clips, ex, settings, tmp_path / "ref", {"enabled": False})
    assert not (tmp_path / "logs" / "vlm_server").exists()  # the reference used no server
    capsys.readouterr()
    _run_all(clips, ex, settings, tmp_path / "srv", {"enabled": True, "idle_s": 30})
    job_logs = capsys.readouterr().out
    log = _server_log(tmp_path)
    # six jobs, one model load, in one server process
    assert log.count("model loaded once") == 1
    assert len(re.findall(r"^model server pid (\d+)", job_logs, re.M)) == 6
    assert len(set(re.findall(r"^model server pid (\d+)", job_logs, re.M))) == 1
    # every clip (3 + 2) and exemplar (2) through the tower once; the rest from the cache
    enc = [int(x) for x in re.findall(r"clips encoded (\d+)", log)]
    hit = [int(x) for x in re.findall(r"from the cache (\d+)", log)]
    assert sum(enc) == 3 + 2 + 2
    # embed encodes its session's clips, describe takes them all from the cache, ICL the
    # clips from the cache and the exemplars once per server (the first session only)
    assert enc == [3, 0, 2, 2, 0, 0] and hit == [0, 3, 3, 0, 2, 4]
    for i in range(2):
        with (
            h5py.File(tmp_path / "ref" / f"emb{i}.h5") as a,
            h5py.File(tmp_path / "srv" / f"emb{i}.h5") as b,
        ):
            np.testing.assert_allclose(b["embeddings"][()], a["embeddings"][()], atol=1e-5)
            assert b["embeddings"].shape[0] == (3, 2)[i]
        ra = [
            json.loads(x)
            for x in (tmp_path / "ref" / f"desc{i}.jsonl").read_text().split("\n")
            if x
        ]
        rb = [
            json.loads(x)
            for x in (tmp_path / "srv" / f"desc{i}.jsonl").read_text().split("\n")
            if x
        ]
        assert [r["text"] for r in rb] == [r["text"] for r in ra]
        assert [r["start_frame"] for r in rb] == [r["start_frame"] for r in ra]
        np.testing.assert_allclose(
            read_icl_scores(tmp_path / "srv" / f"icl{i}.h5"),
            read_icl_scores(tmp_path / "ref" / f"icl{i}.h5"),
            atol=1e-4,
        )


def test_a_recut_clips_file_is_encoded_again(sessions, tiny_vlm_dir):
    tmp_path, clips, _, _ = sessions
    before = clip_keys(clips[0], 3)
    time.sleep(0.01)
    os.utime(clips[0])  # the file was written again
    assert set(clip_keys(clips[0], 3)).isdisjoint(before)
    vlm = load_vlm(str(tiny_vlm_dir))
    vlm.share_vision(max_bytes=1 << 40)
    frames = _frames(0, 3)
    vlm.embed(frames, "q", keys=before)
    vlm.embed(frames, "q", keys=clip_keys(clips[0], 3))
    assert vlm.vision.stats() == {"vision_encoded": 6, "vision_cached": 0}
    # a cache too small for one clip encodes every time, and stays within its bound
    small = load_vlm(str(tiny_vlm_dir))
    small.share_vision(max_bytes=10)
    small.embed(frames, "q", keys=before)
    small.embed(frames, "q", keys=before)
    assert small.vision.stats()["vision_encoded"] == 6 and small.vision.bytes == 0


def test_a_dead_server_is_started_again_and_a_bad_model_is_an_input_error(sessions):
    tmp_path, clips, _, settings = sessions
    from ethoflow.errors import InputError

    server = {"enabled": True, "idle_s": 30}
    vlm_embed(clips[0], None, str(tmp_path / "a.h5"), settings, 1, server)
    pid = int(re.search(r"pid (\d+)", _server_log(tmp_path)).group(1))
    os.kill(pid, signal.SIGKILL)
    vlm_embed(clips[0], None, str(tmp_path / "b.h5"), settings, 1, server)
    log = _server_log(tmp_path)
    assert log.count("model loaded once") == 2
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a["embeddings"][()], b["embeddings"][()])
    bad = {**settings, "model": str(tmp_path / "no-such-model")}
    (tmp_path / "no-such-model").mkdir()
    with pytest.raises(InputError, match="no-such-model"):
        vlm_embed(clips[0], None, str(tmp_path / "c.h5"), bad, 1, server)
    assert not (tmp_path / "c.h5").exists()


def _fake_squeue(tmp_path, monkeypatch) -> Path:
    """An `squeue` on PATH that answers for job 4242 what the file `state` holds (empty
    file: the job is gone, as SLURM answers for a purged job id)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    state = tmp_path / "state"
    script = bindir / "squeue"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ -s {state} ]; then cat {state}; exit 0; fi\n"
        'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    return state


def test_allocation_alive_reads_the_jobs_state(tmp_path, monkeypatch):
    from ethoflow.vlm_server import allocation_alive

    state = _fake_squeue(tmp_path, monkeypatch)
    for text, alive in [("RUNNING\n", True), ("COMPLETING\n", True), ("PENDING\n", False)]:
        state.write_text(text)
        assert allocation_alive() is alive, text
    state.write_text("")  # purged: squeue exits 1 with "Invalid job id"
    assert allocation_alive() is False
    monkeypatch.delenv("SLURM_JOB_ID")
    assert allocation_alive() is True  # a local run has no allocation to outlive


def test_the_server_leaves_when_its_slurm_job_has_ended(sessions, monkeypatch):
    """Where SLURM tracks a step's processes by parent, the detached server survives the
    steps; it must still go when the allocation ends, not hold the GPU until it idles out."""
    tmp_path, clips, _, settings = sessions
    state = _fake_squeue(tmp_path, monkeypatch)
    monkeypatch.setenv("ETHOFLOW_VLM_ALLOCATION_CHECK_S", "0.5")
    state.write_text("RUNNING\n")
    server = {"enabled": True, "idle_s": 120}
    vlm_embed(clips[0], None, str(tmp_path / "a.h5"), settings, 1, server)
    log = tmp_path / "logs" / "vlm_server"
    (path,) = log.glob("slurm4242-*.log")
    pid = int(re.search(r"pid (\d+)", path.read_text()).group(1))
    time.sleep(2)
    assert _running(pid)  # still serving while the job runs
    state.write_text("COMPLETED\n")
    for _ in range(100):  # the job that started it (this test) is its parent: a zombie counts
        time.sleep(0.1)
        if not _running(pid):
            break
    else:
        raise AssertionError("the server outlived its SLURM job")
    assert "SLURM job 4242 has ended" in path.read_text()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
