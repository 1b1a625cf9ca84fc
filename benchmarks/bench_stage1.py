"""Stage-1 model choice: inference frames/s of the chosen gradient-boosted trees (window
features included) on one CPU core, and the time to choose and train on a demo setup.

Inference: one hour of a two-mouse, 8-keypoint session at 30 fps (synthetic random walks).
Training: the real BehaviorDEPOT freezing recording, minute 1 (3,000 frames at 50 fps),
candidates gbt and cnn with the default config, as ``train_localizer`` runs it.

    OMP_NUM_THREADS=1 PYTHONPATH=workflow python3 benchmarks/bench_stage1.py
"""

import dataclasses
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ethoflow import features, pose_io, repair, stage1  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests/data/behaviordepot_freezing"
SKELETON = ["Nose", "Left Ear", "Right Ear", "Tailbase", "Left Leg", "Right Leg", "Mid-Back"]
SKELETON += ["Tail"]


def main() -> None:
    torch.set_num_threads(1)
    p = pose_io.load_pose(DATA / "demo1_tracking.csv", fps=50, skeleton=SKELETON, animals=["m"])
    p, _ = repair.repair_pose(p, 0.4, 15)
    y = (pd.read_csv(DATA / "demo1_freezing_labels.csv").behavior == "freezing").to_numpy()
    x, _ = features.compute_features(p, {"head": "Nose", "tail": "Tailbase"})
    train = dataclasses.replace(p, keypoints=p.keypoints[:3000], confidence=p.confidence[:3000])
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "s1.pt"
        t0 = time.perf_counter()
        log = stage1.train([train], [x[:3000]], [y[:3000].astype(int)], 2, {}, ckpt)
        dt = time.perf_counter() - t0
        print(
            f"choose + train, candidates {list(log['candidates'])}: {dt:.1f} s, "
            f"validation macro F1 {log['candidates']}, chosen {log['choice']}"
        )
        model = stage1.load(ckpt)
        if model[0] != "gbt":
            log = stage1.train(
                [train], [x[:3000]], [y[:3000].astype(int)], 2, {"candidates": ["gbt"]}, ckpt
            )
            model = stage1.load(ckpt)
        # one hour of two mice at 30 fps: random-walk keypoints around two centres
        n = 30 * 3600
        rng = np.random.default_rng(0)
        walk = np.cumsum(rng.normal(0, 1.0, (n, 2, 1, 2)), 0) + rng.normal(0, 5, (n, 2, 8, 2))
        hour = dataclasses.replace(
            p,
            keypoints=(walk + 300).astype(np.float32),
            confidence=np.ones((n, 2, 8), np.float32),
            fps=30.0,
            animal_ids=["m1", "m2"],
        )
        # the model was trained on one animal: predict each animal's track as one session
        one = dataclasses.replace(
            hour,
            keypoints=hour.keypoints[:, :1],
            confidence=hour.confidence[:, :1],
            animal_ids=["m"],
        )
        t0 = time.perf_counter()
        stage1.predict(model, np.zeros((n, 1)), one)
        dt = time.perf_counter() - t0
        print(
            f"gbt inference incl. window features, 1 core, 1 animal x 8 keypoints: "
            f"{n / dt:,.0f} frames/s ({dt:.2f} s for one hour at 30 fps)"
        )


if __name__ == "__main__":
    main()
