"""Stage-1 speed: batched inference frames/s on one CPU core, and training time.

Inference: a two-mouse, 28-feature input (one hour at 30 fps), the default model size.
Training: the real BehaviorDEPOT freezing recording (6,000 frames at 50 fps), default config.

    PYTHONPATH=workflow python3 benchmarks/bench_localizer.py
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ethoflow import localizer

DATA = Path(__file__).resolve().parents[1] / "tests/data/behaviordepot_freezing"


def _freezing_features() -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(DATA / "demo1_tracking.csv", header=[0, 1, 2], index_col=0)
    xy = df.loc[:, df.columns.get_level_values(2).isin(["x", "y"])].astype(np.float32)
    kp = xy.interpolate(limit_direction="both").to_numpy().reshape(len(df), -1, 2)
    v = np.gradient(kp, axis=0)
    sk = np.log1p(np.hypot(v[..., 0], v[..., 1]))
    c = kp.mean(1)
    dist = np.hypot(*(kp - c[:, None]).transpose(2, 0, 1))
    lab = pd.read_csv(DATA / "demo1_freezing_labels.csv")
    y = (lab.behavior == "freezing").to_numpy().astype(np.int64)
    return np.column_stack([sk, dist]).astype(np.float32), y


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "loc.pt"
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, 28)).astype(np.float32)
        y = (rng.random(2000) < 0.2).astype(np.int64)
        small = {"epochs": 1, "min_epochs": 1, "min_steps": 1}
        localizer.train([x], [y], 4, small, 0, ckpt, False, fps=30.0)
        model = localizer.load(ckpt)
        n = 30 * 3600
        feats = rng.normal(size=(n, 28)).astype(np.float32)
        localizer.predict_frames(model, feats[:20000])  # warm-up
        for batch in (1 << 14, 1 << 16):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                localizer.predict_frames(model, feats, batch_frames=batch)
                times.append(time.perf_counter() - t0)
            fps = n / min(times)
            print(
                f"inference, 1 CPU thread, 28 features, batch_frames={batch}: {fps:,.0f} frames/s"
            )

        fx, fy = _freezing_features()
        t0 = time.perf_counter()
        res = localizer.train([fx[:4000]], [fy[:4000]], 2, {}, 0, ckpt, False, fps=50.0)
        dt = time.perf_counter() - t0
        print(
            f"training, 1 CPU thread, default cfg, 4,000 freezing frames: {dt:.1f} s, "
            f"{res['epochs_run']} epochs, val macro F1 {res['val_macro_f1']:.3f}"
        )


if __name__ == "__main__":
    main()
