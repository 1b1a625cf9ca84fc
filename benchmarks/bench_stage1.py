"""Stage-1 model choice: inference frames/s of the chosen gradient-boosted trees (resampling
and window features included) on one CPU core, and the time to choose and train per setup.

Inference: one hour of a one-mouse, 8-keypoint session at 30 fps (synthetic random walk),
through ``stage1.predict`` (post-processing included) and the tuned proposals.
Training: the real BehaviorDEPOT freezing recording, minute 1 (3,000 frames at 50 fps), and
the train split of every demo setup (``config/sessions.tsv``, rule-based labels where the
sheet says ``rule:kinematic``), candidates gbt and cnn with the demo config's ``localizer``
section, as ``train_localizer`` runs it; each setup's test split is scored like the ``pose``
mode (macro F1 over the behaviors, after ``classifier.smoothing_frames``).

    OMP_NUM_THREADS=1 PYTHONPATH=workflow python3 benchmarks/bench_stage1.py [--no-demo]
"""

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from ethoflow import classifiers, kinematic, metrics, pose_io, repair, stage1  # noqa: E402
from ethoflow.config import defaults  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CFG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def _session(row, setup: dict):
    """Pose (cropped to the sheet's frames, repaired) and labels of a sheet row."""
    p = pose_io.load_pose(
        REPO / row.pose,
        row.pose_format,
        fps=setup["fps"],
        skeleton=setup["skeleton"],
        animals=setup["animals"],
    )
    a = int(row.start_frame or 0)
    b = int(row.end_frame) if str(row.end_frame) != "" else p.n_frames
    p = dataclasses.replace(p, keypoints=p.keypoints[a:b], confidence=p.confidence[a:b])
    p, _ = repair.repair_pose(p, CFG["pose"]["min_confidence"], CFG["pose"]["max_gap_frames"])
    if row.annotations.startswith("rule:"):
        kcfg = {**defaults("kinematic_labels"), **CFG["kinematic_labels"]}
        y = kinematic.kinematic_labels(
            p.keypoints,
            p.fps,
            p.keypoint_names,
            setup["behaviors"],
            setup["head"],
            setup["tail"],
            kcfg,
        )
    else:
        names = pd.read_csv(REPO / row.annotations).behavior.to_numpy()[a:b]
        y = np.zeros(len(names), np.int64)
        for c, beh in enumerate(setup["behaviors"], start=1):
            y[names == beh] = c
    return p, np.asarray(y, np.int64)


def _train(poses, ys, setup: dict, path: Path) -> tuple[dict, float]:
    t0 = time.perf_counter()
    log = stage1.train(
        poses,
        ys,
        len(setup["behaviors"]) + 1,
        CFG["localizer"],
        path,
        head=setup.get("head"),
        tail=setup.get("tail"),
        proposals_cfg=CFG["proposals"],
        behaviors=setup["behaviors"],
    )
    return log, time.perf_counter() - t0


def demo_setups(tmp: Path) -> None:
    sheet = pd.read_csv(REPO / "config/sessions.tsv", sep="\t", keep_default_na=False)
    for name, setup in CFG["setups"].items():
        rows = sheet[sheet.setup == name]
        train = [_session(r, setup) for r in rows[rows.split == "train"].itertuples()]
        test = [_session(r, setup) for r in rows[rows.split == "test"].itertuples()]
        log, dt = _train([p for p, _ in train], [y for _, y in train], setup, tmp / f"{name}.pt")
        model = stage1.load(tmp / f"{name}.pt")
        f1 = []
        for p, y in test:
            pc = classifiers.smooth_probs(stage1.predict(model, p)[1], 5)
            t = metrics.per_class_metrics(y, pc.argmax(1), pc, setup["behaviors"])
            f1.append(float(t.set_index("behavior").loc["macro", "f1"]))
        cands = {k: round(v, 3) for k, v in log["candidates"].items()}
        print(
            f"{name}: choose + train {dt:.1f} s ({log['validation']}), validation macro F1 "
            f"{cands}, chosen {log['choice']}; test macro F1 (pose mode) {np.round(f1, 3)}"
        )


def main() -> None:
    torch.set_num_threads(1)
    setup = CFG["setups"]["fearcond"]
    sheet = pd.read_csv(REPO / "config/sessions.tsv", sep="\t", keep_default_na=False)
    row = next(sheet[(sheet.setup == "fearcond") & (sheet.split == "train")].itertuples())
    train, y = _session(row, setup)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = tmp / "s1.pt"
        log, dt = _train([train], [y], setup, ckpt)
        print(
            f"freezing minute 1: choose + train, candidates {list(log['candidates'])}: "
            f"{dt:.1f} s, validation macro F1 {log['candidates']}, chosen {log['choice']}"
        )
        if "--no-demo" not in sys.argv:
            demo_setups(tmp)
        model = stage1.load(ckpt)
        if model.kind != "gbt":
            CFG["localizer"]["candidates"] = ["gbt"]
            _train([train], [y], setup, ckpt)
            model = stage1.load(ckpt)
        # one hour of one mouse at 30 fps: a random walk of 8 keypoints
        n = 30 * 3600
        rng = np.random.default_rng(0)
        walk = np.cumsum(rng.normal(0, 1.0, (n, 1, 1, 2)), 0) + rng.normal(0, 5, (n, 1, 8, 2))
        hour = dataclasses.replace(
            train,
            keypoints=(walk + 300).astype(np.float32),
            confidence=np.ones((n, 1, 8), np.float32),
            fps=30.0,
        )
        warm = dataclasses.replace(
            hour, keypoints=hour.keypoints[:3000], confidence=hour.confidence[:3000]
        )
        stage1.predict_raw(model, warm)  # one-time imports and set-up
        t0 = time.perf_counter()
        p_raw = stage1.predict_raw(model, hour)
        stage1.postprocess(model, p_raw, hour.fps)
        stage1.proposals(model, p_raw, hour.fps, CFG["proposals"])
        dt = time.perf_counter() - t0
        print(
            f"gbt inference incl. resampling, window features, post-processing and proposals, "
            f"1 core, 1 animal x 8 keypoints: {n / dt:,.0f} frames/s ({dt:.2f} s for one hour "
            f"at 30 fps)"
        )


if __name__ == "__main__":
    main()
