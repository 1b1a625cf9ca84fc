"""``ethoflow review``: the store's bouts, queue and corrections, and the HTTP app (token,
paths, range requests, conflicts), on a small run written by hand."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from ethoflow import results
from ethoflow.annotations import load_annotations
from ethoflow.review.app import cookie_name, create_app
from ethoflow.review.store import (
    NO_FILE,
    Conflict,
    OpError,
    ReviewStore,
    apply_op,
    bout_stats,
    margins,
    runs,
)
from ethoflow.sheet import read_sheet

BEHAVIORS = ["groom", "rear"]
TOKEN = "test-token-123"
OTHER, GROOM, REAR = [0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]
# 10 frames: other other | groom x3 | other other | rear x3   (margins 0.5 and 0.3)
POSE_PROBS = [OTHER] * 2 + [GROOM] * 3 + [OTHER] * 2 + [REAR] * 3
# the linear mode agrees on the groom bout, calls the last frame other
LINEAR_PROBS = [OTHER] * 2 + [GROOM] * 3 + [OTHER] * 2 + [REAR] * 2 + [OTHER]


def write_pose_attrs(path: Path, n: int, fps: float, offset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("keypoints", data=np.zeros((n, 1, 2, 2), np.float32))
        f.attrs["fps"] = fps
        f.attrs["frame_offset"] = offset


def make_run(root: Path) -> Path:
    """Two sessions of one setup: ``m1/a`` (offset 0, modes pose + linear, stage 1,
    proposals, a video) and ``m1/b`` (offset 100, pose only); ``m2/c`` has no results yet."""
    res = root / "results"
    for key, offset in (("m1/a", 0), ("m1/b", 100)):
        write_pose_attrs(res / f"pose/{key}.h5", 10, 10.0, offset)
        results.write_behavior(
            res / f"behavior/pose/{key}.csv", np.array(POSE_PROBS), 10.0, BEHAVIORS
        )
    results.write_behavior(
        res / "behavior/linear/m1/a.csv", np.array(LINEAR_PROBS), 10.0, BEHAVIORS
    )
    p_action = np.linspace(0, 1, 10, dtype=np.float32)
    results.write_stage1(res / "stage1/m1/a.h5", p_action, np.stack([1 - p_action] * 3, 1), 10, "x")
    results.write_proposals(
        pd.DataFrame({"start_frame": [1], "end_frame": [6], "score": [0.8]}),
        res / "proposals/m1/a.tsv",
    )
    (root / "videos").mkdir()
    (root / "videos/a.mp4").write_bytes(bytes(range(256)) * 40)
    (root / "config").mkdir()
    sheet = pd.DataFrame(
        {
            "subject": ["m1", "m1", "m2"],
            "session": ["a", "b", "c"],
            "setup": ["rig"] * 3,
            "video": ["videos/a.mp4", "", ""],
            "pose": ["x.h5"] * 3,
            "pose_format": [""] * 3,
            "annotations": [""] * 3,
            "split": ["predict"] * 3,
            "group": [""] * 3,
        }
    )
    sheet.to_csv(root / "config/sessions.tsv", sep="\t", index=False)
    return root


CONFIG = {
    "sessions": "config/sessions.tsv",
    "setups": {
        "rig": {"fps": 10, "animals": ["m"], "skeleton": ["n", "t"], "behaviors": BEHAVIORS}
    },
    "classifier": {"modes": ["pose", "linear"], "primary": "pose"},
}


def open_store(root: Path, reviewer: str = "") -> ReviewStore:
    """The store as ``open_run`` makes it, on a config that has only the keys it reads."""
    return ReviewStore(root, CONFIG, read_sheet(root / "config/sessions.tsv"), reviewer=reviewer)


@pytest.fixture
def store(tmp_path) -> ReviewStore:
    s = open_store(make_run(tmp_path), reviewer="ana")
    s.build_index()
    return s


@pytest.fixture
def client(store) -> TestClient:
    app = create_app(
        store, TOKEN, port=8765, allowed_hosts=["testserver"], index_in_background=False
    )
    c = TestClient(app)
    c.headers["X-Ethoflow-Token"] = TOKEN
    return c


# ---------------------------------------------------------------- pure functions
def test_runs_margins_and_bout_stats_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 0, 0, 2, 2, 2])
    assert runs(labels) == [(2, 5, 1), (7, 10, 2)]
    assert runs(np.array([], int)) == []
    np.testing.assert_allclose(margins(np.array([GROOM, REAR])), [0.5, 0.3])
    other = np.array([0, 0, 1, 1, 1, 0, 0, 2, 2, 0])
    stats = bout_stats(labels, np.array(POSE_PROBS), [other])
    assert stats == [[2, 5, 1, 0.5, 0.0], [7, 10, 2, 0.3, 0.3333]]
    # no other mode: no disagreement
    assert bout_stats(labels, np.array(POSE_PROBS), [])[1][4] == 0.0


def bouts_of(*spec):
    return [
        {
            "start": a,
            "stop": b,
            "behavior": c,
            "status": "predicted",
            "mode": "pose",
            "reviewer": "",
            "reviewed_at": "",
        }
        for a, b, c in spec
    ]


def short(bouts):
    return [(b["start"], b["stop"], b["behavior"], b["status"]) for b in bouts]


def test_operations_on_frame_ranges():
    base = bouts_of((2, 5, "groom"), (7, 10, "rear"))
    kw = {"behaviors": BEHAVIORS, "n_frames": 10, "reviewer": "ana", "when": "T"}
    out = apply_op(base, {"op": "accept", "start": 2, "stop": 5}, **kw)
    assert short(out)[0] == (2, 5, "groom", "accepted") and out[0]["reviewer"] == "ana"
    assert base[0]["status"] == "predicted"  # the input is not modified
    out = apply_op(base, {"op": "relabel", "start": 7, "stop": 10, "behavior": "groom"}, **kw)
    assert short(out)[1] == (7, 10, "groom", "relabeled")
    out = apply_op(base, {"op": "relabel", "start": 7, "stop": 10, "behavior": "other"}, **kw)
    assert short(out)[1] == (7, 10, "other", "relabeled")  # rejected, kept as a record
    out = apply_op(base, {"op": "split", "start": 2, "stop": 5, "at": 3}, **kw)
    assert short(out)[:2] == [(2, 3, "groom", "split"), (3, 5, "groom", "split")]
    # trim the end back; then stretch the start into the previous bout, which is cut
    out = apply_op(
        base, {"op": "trim", "start": 7, "stop": 10, "new_start": 7, "new_stop": 9}, **kw
    )
    assert short(out)[1] == (7, 9, "rear", "trimmed")
    out = apply_op(
        base, {"op": "trim", "start": 7, "stop": 10, "new_start": 4, "new_stop": 10}, **kw
    )
    assert short(out) == [(2, 4, "groom", "predicted"), (4, 10, "rear", "trimmed")]
    out = apply_op(base, {"op": "add", "start": 0, "stop": 3, "behavior": "rear"}, **kw)
    assert short(out) == [
        (0, 3, "rear", "added"),
        (3, 5, "groom", "predicted"),
        (7, 10, "rear", "predicted"),
    ]
    for bad in (
        {"op": "accept", "start": 2, "stop": 4},  # no such bout
        {"op": "relabel", "start": 2, "stop": 5, "behavior": "sniff"},
        {"op": "split", "start": 2, "stop": 5, "at": 5},
        {"op": "add", "start": 8, "stop": 12, "behavior": "rear"},
        {"op": "trim", "start": 2, "stop": 5, "new_start": 4, "new_stop": 4},
        {"op": "explode", "start": 2, "stop": 5},
        {"op": "accept", "start": "x", "stop": 5},
    ):
        with pytest.raises(OpError):
            apply_op(base, bad, **kw)


# ---------------------------------------------------------------- the store
def test_session_list_and_queue(store):
    listed = {r["key"]: r for r in store.session_list()["sessions"]}
    a = listed["m1/a"]
    assert a["modes"] == ["pose", "linear"] and a["base"] == "pose"
    assert (a["bouts"], a["reviewed"], a["n_frames"]) == (2, 0, 10)
    assert listed["m2/c"]["error"] == "no predictions yet"
    q = store.queue("margin")
    got = [(i["key"], i["start"], i["margin"], i["disagreement"]) for i in q["items"]]
    # rear bouts (margin 0.3) before groom (0.5); m1/a's rear bout disagrees with linear 1/3
    assert got == [
        ("m1/a", 7, 0.3, 0.3333),
        ("m1/b", 7, 0.3, 0.0),
        ("m1/a", 2, 0.5, 0.0),
        ("m1/b", 2, 0.5, 0.0),
    ]
    assert (q["reviewed"], q["total"], q["unreviewed"], q["complete"]) == (0, 4, 4, True)
    q = store.queue("disagreement", limit=1)
    assert [(i["key"], i["start"]) for i in q["items"]] == [("m1/a", 7)] and q["unreviewed"] == 4
    with pytest.raises(ValueError):
        store.queue("random")


def test_save_writes_annotations_the_workflow_reads(store, tmp_path):
    st = store.state("m1/b")
    assert st["etag"] == NO_FILE and len(st["bouts"]) == 2
    new = store.save(
        "m1/b", NO_FILE, [{"op": "relabel", "start": 2, "stop": 5, "behavior": "rear"}]
    )
    assert new["etag"] != NO_FILE
    path = tmp_path / "results/review/m1/b.csv"
    df = pd.read_csv(path, keep_default_na=False)
    assert list(df.columns) == results.REVIEW_COLUMNS
    # frames of the pose file: the session starts at frame 100 of it
    assert df[["behavior", "start_frame", "stop_frame", "status", "reviewer"]].values.tolist() == [
        ["rear", 102, 105, "relabeled", "ana"],
        ["rear", 107, 110, "predicted", ""],
    ]
    assert df["start_s"].tolist() == [10.2, 10.7] and df["reviewed_at"][0].endswith("Z")
    # the workflow's annotation reader turns it into the labels the sheet row would get
    labels = load_annotations(path, 110, BEHAVIORS, fps=10.0)[100:110]
    assert labels.tolist() == [0, 0, 2, 2, 2, 0, 0, 2, 2, 2]
    # a save on the old version is refused and changes nothing
    before = path.read_bytes()
    with pytest.raises(Conflict) as err:
        store.save("m1/b", NO_FILE, [{"op": "accept", "start": 7, "stop": 10}])
    assert err.value.etag == new["etag"] and path.read_bytes() == before
    # progress counts the reviewed bouts; the queue drops them
    assert store.session_row("m1/b")["reviewed"] == 1
    q = store.queue()
    assert (q["reviewed"], q["total"], q["unreviewed"]) == (1, 4, 3)
    assert ("m1/b", 2) not in [(i["key"], i["start"]) for i in q["items"]]
    # no file besides the reviewed one and the store's own (hidden) cache and lock
    written = sorted(
        str(p.relative_to(tmp_path / "results/review"))
        for p in (tmp_path / "results/review").rglob("*")
    )
    assert written == [".index.json", "m1", "m1/.b.csv.lock", "m1/b.csv"]


def test_index_is_cached_and_refreshed_when_results_change(store, tmp_path, monkeypatch):
    again = open_store(tmp_path)
    calls = []
    real = again.summarize
    monkeypatch.setattr(again, "summarize", lambda k, sig=None: calls.append(k) or real(k, sig))
    again.build_index()
    assert calls == []  # all current: read from results/review/.index.json
    path = tmp_path / "results/behavior/pose/m1/b.csv"
    results.write_behavior(path, np.array([OTHER] * 10), 10.0, BEHAVIORS)
    os.utime(path, ns=(1, 1))
    again.build_index()
    assert calls == ["m1/b"] and again.session_row("m1/b")["bouts"] == 0


# ---------------------------------------------------------------- HTTP
def test_every_route_needs_the_token(store):
    app = create_app(
        store, TOKEN, port=8765, allowed_hosts=["testserver"], index_in_background=False
    )
    c = TestClient(app)
    routes = [
        "/",
        "/static/app.js",
        "/api/sessions",
        "/api/queue",
        "/api/session/m1/a",
        "/api/session/m1/a/window?mode=pose&start=0&stop=5",
        "/api/review/m1/a",
        "/video/m1/a",
        "/files/behavior/pose/m1/a.csv",
    ]
    for url in routes:
        assert c.get(url).status_code == 403, url
        assert c.get(url, headers={"X-Ethoflow-Token": "wrong"}).status_code == 403, url
    assert c.post("/api/review/m1/a", json={"etag": NO_FILE, "ops": []}).status_code == 403
    # the URL printed at start sets the cookie; later requests need no token in the URL
    r = c.get(f"/?token={TOKEN}")
    assert r.status_code == 200 and "ethoflow review" in r.text
    assert f"{cookie_name(8765)}={TOKEN}" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    for url in routes:
        assert c.get(url).status_code == 200, url
    c.cookies.clear()
    assert c.get("/api/sessions", headers={"Authorization": f"token {TOKEN}"}).status_code == 200
    # a foreign Host header (DNS rebinding) is refused by default
    local = create_app(store, TOKEN, index_in_background=False)
    r = TestClient(local, base_url="http://evil.example").get(f"/?token={TOKEN}")
    assert r.status_code == 400
    r = TestClient(local, base_url="http://127.0.0.1:8765").get(f"/?token={TOKEN}")
    assert r.status_code == 200


def test_paths_outside_the_run_are_refused(client, tmp_path):
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "results/link.txt").symlink_to(tmp_path / "secret.txt")
    for url in (
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/behavior/%2e%2e/%2e%2e/secret.txt",
        "/files/%2Fetc%2Fpasswd",
        "/files//etc/passwd",
        f"/files/{tmp_path}/secret.txt",
        "/files/link.txt",
    ):
        r = client.get(url)
        assert r.status_code in (403, 404) and "no" != r.text, url
    assert client.get("/files/%2e%2e/secret.txt").status_code == 403
    assert client.get("/files/link.txt").status_code == 403
    assert client.get("/files/behavior/pose/m1/a.csv").text.startswith("frame,time_s,label")
    # sessions are sheet keys: anything else is unknown
    assert client.get("/api/session/..%2F..%2Fetc/passwd").status_code == 404
    assert client.get("/video/m1/b").status_code == 404  # no video in the sheet
    assert client.get("/video/..%2Fvideos/a").status_code == 404


def test_video_is_served_with_range_requests(client, tmp_path):
    data = (tmp_path / "videos/a.mp4").read_bytes()
    r = client.get("/video/m1/a", headers={"Range": "bytes=1000-1099"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 1000-1099/{len(data)}"
    assert r.content == data[1000:1100]
    r = client.get("/video/m1/a", headers={"Range": f"bytes={len(data) - 10}-"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = client.get("/video/m1/a")
    assert r.status_code == 200 and r.content == data and r.headers["accept-ranges"] == "bytes"


def test_session_detail(client):
    d = client.get("/api/session/m1/a").json()
    assert d["classes"] == ["other", "groom", "rear"] and d["video"] == "/video/m1/a"
    assert d["modes_data"]["pose"]["bouts"] == [[2, 5, 1], [7, 10, 2]]
    assert d["modes_data"]["linear"]["bouts"] == [[2, 5, 1], [7, 9, 2]]
    # 10 frames -> 10 bins: per class, percent
    assert d["modes_data"]["pose"]["probs"][1] == [5, 5, 70, 70, 70, 5, 5, 30, 30, 30]
    assert d["stage1"][0] == 0 and d["stage1"][-1] == 100
    assert d["proposals"] == [[1, 6, 0.8]]
    assert d["etag"] == NO_FILE and len(d["bouts"]) == 2
    w = client.get("/api/session/m1/a/window?mode=linear&start=8&stop=10").json()
    assert w["probs"][2] == [60, 5]
    assert client.get("/api/session/m1/a/window?mode=knn&start=0&stop=5").status_code == 404


def test_two_tabs_keep_each_others_corrections(client, tmp_path):
    tab_a = client.get("/api/review/m1/a").json()
    tab_b = client.get("/api/review/m1/a").json()
    relabel = {"op": "relabel", "start": 7, "stop": 10, "behavior": "groom"}
    r = client.post("/api/review/m1/a", json={"etag": tab_a["etag"], "ops": [relabel]})
    assert r.status_code == 200
    accept = {"op": "accept", "start": 2, "stop": 5}
    r = client.post("/api/review/m1/a", json={"etag": tab_b["etag"], "ops": [accept]})
    assert r.status_code == 409  # tab B's copy is stale: nothing saved
    body = r.json()
    assert short(body["bouts"])[1] == (7, 10, "groom", "relabeled")
    # tab B replays its correction on the version it got back (what app.js does)
    r = client.post("/api/review/m1/a", json={"etag": body["etag"], "ops": [accept]})
    assert r.status_code == 200
    df = results.read_review(tmp_path / "results/review/m1/a.csv")
    assert df[["behavior", "start_frame", "status"]].values.tolist() == [
        ["groom", 2, "accepted"],
        ["groom", 7, "relabeled"],
    ]
    # an operation on a bout that no longer exists is a 400, not a silent change
    gone = {"op": "accept", "start": 7, "stop": 9}
    r = client.post("/api/review/m1/a", json={"etag": r.json()["etag"], "ops": [gone]})
    assert r.status_code == 400 and "no bout" in r.json()["error"]
    assert (
        client.post(
            "/api/review/m1/a", content="x", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert client.post("/api/review/m1/a", json={"ops": []}).status_code == 400
    assert (
        client.post("/api/review/m2/c", json={"etag": NO_FILE, "ops": [accept]}).status_code == 400
    )


def test_queue_and_sessions_over_http(client):
    q = client.get("/api/queue?order=disagreement&limit=2").json()
    # most disagreement first, then lowest margin
    assert [(i["key"], i["start"]) for i in q["items"]] == [("m1/a", 7), ("m1/b", 7)]
    assert client.get("/api/queue?order=nope").status_code == 400
    s = client.get("/api/sessions").json()
    assert s["reviewer"] == "ana" and s["total_sessions"] == 3 and s["indexed"] == 3


def test_cli_review_refuses_a_bad_config(tmp_path, capsys, monkeypatch):
    from ethoflow.cli import main

    (tmp_path / "c.yaml").write_text("sessions: nowhere.tsv\nsetups: {}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["review", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "error:" in capsys.readouterr().err
