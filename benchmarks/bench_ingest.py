"""Ingest + repair + features of a 30-minute, 30 fps, two-mouse session on one CPU core.

Generates a realistic DLC inference file (two mice on correlated random walks in a 640 x 480
arena, heading following the direction of motion, 7 keypoints, about 3 % low-confidence
points in short bursts), writes it as DLC h5 and CSV, then times ``load_pose`` +
``repair_pose`` + ``compute_features`` (and the canonical h5 write separately).
Usage: ``PYTHONPATH=workflow python benchmarks/bench_ingest.py [--minutes 30] [--repeat 3]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ethoflow.features import compute_features  # noqa: E402
from ethoflow.pose_io import load_pose  # noqa: E402
from ethoflow.repair import repair_pose  # noqa: E402
from ethoflow.results import write_pose  # noqa: E402

PARTS = ["nose", "left_ear", "right_ear", "neck", "left_hip", "right_hip", "tail_base"]
BODY = np.array([[22, 0], [15, 6], [15, -6], [10, 0], [-10, 8], [-10, -8], [-22, 0]], float)


def synth_session(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [T, 2, 7, 2] and likelihood [T, 2, 7] of two mice in a 640 x 480 arena."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([40.0, 40.0]), np.array([600.0, 440.0])
    kps, liks = [], []
    for _ in range(2):
        vel = np.zeros((n, 2))
        noise = rng.normal(0, 0.6, (n, 2))
        for i in range(1, n):  # generation only: an AR(1) velocity, not part of the timing
            vel[i] = 0.95 * vel[i - 1] + noise[i]
        pos = rng.uniform(lo, hi) + np.cumsum(vel, 0)
        span = hi - lo
        pos = lo + np.abs((pos - lo + span) % (2 * span) - span)  # reflect at the walls
        step = np.diff(pos, axis=0, prepend=pos[:1])
        heading = np.unwrap(np.arctan2(step[:, 1], step[:, 0] + 1e-9))
        heading = pd.Series(heading).rolling(15, min_periods=1, center=True).mean().to_numpy()
        c, s = np.cos(heading)[:, None], np.sin(heading)[:, None]
        rot = np.stack([BODY[:, 0] * c - BODY[:, 1] * s, BODY[:, 0] * s + BODY[:, 1] * c], -1)
        kps.append(pos[:, None] + rot + rng.normal(0, 1.0, (n, 7, 2)))
        lik = rng.beta(20, 1, (n, 7))
        bursts = rng.random((n, 7)) < 0.004
        low = np.convolve(bursts.ravel(order="F"), np.ones(8), "same").reshape(n, 7, order="F")
        lik[low > 0] = rng.uniform(0.01, 0.3, int((low > 0).sum()))
        liks.append(lik)
    return np.stack(kps, 1), np.stack(liks, 1)


def write_dlc(kp: np.ndarray, lik: np.ndarray, out: Path) -> tuple[Path, Path]:
    cols = pd.MultiIndex.from_product(
        [["DLC_bench"], ["mouse1", "mouse2"], PARTS, ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    df = pd.DataFrame(np.concatenate([kp, lik[..., None]], -1).reshape(len(kp), -1), columns=cols)
    h5, csv = out / "session.h5", out / "session.csv"
    df.to_hdf(h5, key="df_with_missing", mode="w")
    df.to_csv(csv)
    return h5, csv


def run(path: Path, cfg: dict) -> dict:
    times = {}
    t0 = time.perf_counter()
    pose = load_pose(path, fps=30.0)
    times["load"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    pose, qc = repair_pose(pose, min_confidence=0.4, max_gap=15)
    times["repair"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    feats, names = compute_features(pose, cfg)
    times["features"] = time.perf_counter() - t2
    times["total"] = time.perf_counter() - t0
    times["n_features"] = len(names)
    times["missing"] = float(qc["missing_fraction"].mean())
    times["pose"], times["feats"], times["names"] = pose, feats, names
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    n = int(args.minutes * 60 * 30)
    cfg = {"normalize": True, "speed_smooth_frames": 5, "pairwise": True}
    kp, lik = synth_session(n)
    with tempfile.TemporaryDirectory() as tmp:
        h5, csv = write_dlc(kp, lik, Path(tmp))
        print(f"session: {n} frames ({args.minutes:g} min at 30 fps), 2 mice x 7 keypoints")
        for label, path in (("DLC h5", h5), ("DLC csv", csv)):
            best = min((run(path, cfg) for _ in range(args.repeat)), key=lambda r: r["total"])
            print(
                f"{label:8s} load {best['load']:.3f} s  repair {best['repair']:.3f} s  "
                f"features {best['features']:.3f} s  total {best['total']:.3f} s  "
                f"= {n / best['total']:,.0f} frames/s  ({best['n_features']} features, "
                f"{best['missing']:.1%} points masked)"
            )
        t = time.perf_counter()
        write_pose(Path(tmp) / "pose.h5", best["pose"], best["feats"], best["names"])
        print(f"canonical h5 write: {time.perf_counter() - t:.3f} s")
    print("floor (issue 4): total < 3 s on one core")


if __name__ == "__main__":
    main()
