"""`ethoflow review` on a cohort of 1,000 sessions: the session list and the queue in < 1 s.

Generates a run of ``--sessions`` sessions (default 1,000), each ``--minutes`` long (default
10) at 30 fps with a behavior CSV per mode (``--modes``, default pose and pose+vlm: 18,000
rows each, ~1 MB, written by ``results.write_behavior``) and a pose h5; ``--variants``
distinct files per mode are generated and hard-linked to every session (so the disk holds a
few, the app reads 1,000 paths; the parse cost per file is the real one). A third of the
sessions get a reviewed file (three corrections each, through the store). Then times: the
cold index (every behavior CSV parsed once), a restart (the cached index checked against the
files), and ``GET /api/sessions`` and ``GET /api/queue`` (both orders) over HTTP from a real
uvicorn server on 127.0.0.1, median and worst of ``--repeat`` requests.
Usage: ``PYTHONPATH=workflow python benchmarks/bench_review.py [--sessions 1000]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ethoflow import results
from ethoflow.review.app import create_app
from ethoflow.review.store import ReviewStore
from ethoflow.sheet import read_sheet

BEHAVIORS = ["contact", "locomotion", "immobile"]
FPS = 30.0


def session_probs(n: int, rng: np.random.Generator) -> np.ndarray:
    """Probabilities ``[n, 4]`` of a session: bouts of ~2 s between gaps of ~3 s."""
    labels = np.zeros(n, np.int64)
    t = 0
    while t < n:
        t += int(rng.exponential(3 * FPS)) + 1
        d = int(rng.exponential(2 * FPS)) + 3
        labels[t : t + d] = rng.integers(1, len(BEHAVIORS) + 1)
        t += d
    conf = rng.uniform(0.35, 0.95, n)
    probs = np.tile(((1 - conf) / len(BEHAVIORS))[:, None], (1, len(BEHAVIORS) + 1))
    probs[np.arange(n), labels] += conf
    return probs


def make_run(root: Path, n_sessions: int, minutes: float, modes: list[str], variants: int) -> dict:
    n = int(minutes * 60 * FPS)
    rng = np.random.default_rng(0)
    src = root / "variants"
    for v in range(variants):
        probs = session_probs(n, rng)
        for m in modes:
            other = probs if m == modes[0] else np.roll(probs, int(rng.integers(0, 30)), axis=0)
            results.write_behavior(src / m / f"{v}.csv", other, FPS, BEHAVIORS)
        with h5py.File(src / f"{v}.h5", "w") as f:
            f.create_dataset("keypoints", data=np.zeros((n, 1, 4, 2), np.float32))
            f.attrs["fps"] = FPS
            f.attrs["frame_offset"] = 0
    keys = [(f"m{i // 4:04d}", f"day{i % 4}") for i in range(n_sessions)]
    for i, (subject, session) in enumerate(keys):
        v = i % variants
        for m in modes:
            dest = root / "results/behavior" / m / subject / f"{session}.csv"
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src / m / f"{v}.csv", dest)
        dest = root / "results/pose" / subject / f"{session}.h5"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src / f"{v}.h5", dest)
    sheet = pd.DataFrame(
        {
            "subject": [k[0] for k in keys],
            "session": [k[1] for k in keys],
            "setup": "rig",
            "video": "",
            "pose": "pose.h5",
            "pose_format": "",
            "annotations": "",
            "split": "predict",
            "group": "",
        }
    )
    (root / "config").mkdir(exist_ok=True)
    sheet.to_csv(root / "config/sessions.tsv", sep="\t", index=False)
    size = (src / modes[0] / "0.csv").stat().st_size
    return {"frames": n, "csv_bytes": size}


def store_of(root: Path, modes: list[str]) -> ReviewStore:
    cfg = {
        "sessions": "config/sessions.tsv",
        "setups": {"rig": {"behaviors": BEHAVIORS}},
        "classifier": {"modes": modes, "primary": modes[-1]},
    }
    return ReviewStore(root, cfg, read_sheet(root / "config/sessions.tsv"), reviewer="bench")


def serve(app) -> tuple[str, object]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--modes", default="pose,pose+vlm")
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    modes = args.modes.split(",")
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        facts = make_run(root, args.sessions, args.minutes, modes, args.variants)
        print(
            f"generated {args.sessions} sessions x {len(modes)} modes, {facts['frames']} frames "
            f"({facts['csv_bytes'] / 1e6:.2f} MB per behavior CSV) "
            f"in {time.perf_counter() - t:.1f} s"
        )
        store = store_of(root, modes)
        t = time.perf_counter()
        store.build_index()
        cold = time.perf_counter() - t
        n_bouts = sum(len(s.bouts) for s in store.summaries.values())
        print(f"cold index: {cold:.1f} s ({cold / args.sessions * 1000:.1f} ms per session)")
        t = time.perf_counter()
        for key in list(store.sessions)[::3]:
            bouts = store.state(key)["bouts"]
            ops = [
                {"op": "accept", "start": bouts[0]["start"], "stop": bouts[0]["stop"]},
                {
                    "op": "relabel",
                    "start": bouts[1]["start"],
                    "stop": bouts[1]["stop"],
                    "behavior": "other",
                },
                {
                    "op": "split",
                    "start": bouts[2]["start"],
                    "stop": bouts[2]["stop"],
                    "at": (bouts[2]["start"] + bouts[2]["stop"]) // 2,
                },
            ]
            etag = store.state(key)["etag"]
            for op in ops:
                etag = store.save(key, etag, [op])["etag"]
        saves = (args.sessions + 2) // 3 * 3
        dt = time.perf_counter() - t
        print(f"{saves} corrections saved in {dt:.1f} s ({dt / saves * 1000:.1f} ms each)")

        # a restart: the cached index is read and checked against the files
        store = store_of(root, modes)
        t = time.perf_counter()
        store.build_index()
        print(f"restart with the cached index: {time.perf_counter() - t:.2f} s")

        token = secrets.token_urlsafe(16)
        base, server = serve(create_app(store, token, index_in_background=False))
        worst = 0.0
        with httpx.Client(base_url=base, headers={"X-Ethoflow-Token": token}, timeout=60) as c:
            for url in (
                "/api/sessions",
                "/api/queue?order=margin",
                "/api/queue?order=disagreement",
            ):
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    r = c.get(url)
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200, (url, r.status_code)
                body = r.json()
                extra = (
                    f"{len(body['sessions'])} sessions"
                    if "sessions" in body
                    else f"{body['reviewed']} / {body['total']} bouts reviewed, "
                    f"{len(body['items'])} of {body['unreviewed']} unreviewed sent"
                )
                print(
                    f"GET {url}: median {statistics.median(times) * 1000:.0f} ms, "
                    f"worst {max(times) * 1000:.0f} ms, {len(r.content) / 1e3:.0f} kB ({extra})"
                )
                worst = max(worst, max(times))
        server.should_exit = True
        print(f"{n_bouts} bouts in the cohort; slowest request {worst * 1000:.0f} ms (goal < 1 s)")
        if worst >= 1.0:
            raise SystemExit("goal not met: a list or queue request took 1 s or more")


if __name__ == "__main__":
    main()
