"""Stage-2 video preprocessing throughput: the transformers processor on the CPU against
``ethoflow.video_prep`` (torch ops) on the CPU and on CUDA (nothing downloaded).

The processor is the tiny test checkpoint's (``ethoflow.tiny``): its video processor has the
real Qwen2.5-VL settings (14-pixel patches, 2 x 2 merge, 2-frame temporal patches, CLIP
mean/std), so its cost per clip is a real checkpoint's. Random structured uint8 clips (10
frames at 448x448 by default) go through ``VLM._inputs`` as ``VLM.embed`` sends them:

- ``processor (CPU)``: chat template, qwen-vl-utils, the transformers processor
  (``gpu_preprocess: false``; what the prefetch thread did before);
- ``torch, CPU side only``: chat template, stacking the uint8 frames, expanding the video
  placeholders, tokenising (``gpu_preprocess: auto``): the prefetch thread's work now;
- ``torch on <device>``: that plus normalize + patchify on the device (``_to_device``), the
  whole preprocessing of a batch, synchronised;
- ``pixels only on <device>``: ``video_prep.pixel_values`` of a uint8 batch already in memory.

Every figure checks its pixel values against the processor's (max abs difference printed).

Example: ``python benchmarks/bench_prep.py --threads 2 --clips 32 --batch-size 8``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from ethoflow import video_prep  # noqa: E402
from ethoflow.tiny import build_tiny_qwen25vl  # noqa: E402
from ethoflow.vlm import VLM, load_vlm  # noqa: E402

PROMPT = "What are the two mice doing in this video?"


def clips(n: int, frames: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 ``[n, frames, size, size, 3]``: gradients, a moving blob, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([xx, yy, (xx + yy) / 2], -1) * 128
    out = np.empty((n, frames, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.2, 0.8, 2)
        for j in range(frames):
            blob = 120 * np.exp(-((yy - cy - 0.01 * j) ** 2 + (xx - cx) ** 2) / 0.01)
            noise = rng.integers(0, 24, (size, size, 3))
            out[i, j] = np.clip(base + blob[..., None] + noise, 0, 255).astype(np.uint8)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(fn, n_clips: int, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return repeats * n_clips / (time.perf_counter() - t0)


def batches(vlm: VLM, frames: np.ndarray, bs: int) -> list:
    return [
        vlm._inputs(
            [vlm._messages(frames[i], PROMPT) for i in range(lo, min(len(frames), lo + bs))]
        )
        for lo in range(0, len(frames), bs)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--devices", default="cpu,cuda", help="torch-path devices (cuda if present)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    frames = clips(a.clips, a.frames, a.size)
    devices = [d for d in a.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_qwen25vl(Path(tmp) / "tiny")
        off = load_vlm(str(tiny), device="cpu", gpu_preprocess=False)
        ref = batches(off, frames, a.batch_size)  # the processor's output, for the checks
        n = a.clips
        print(
            f"{a.clips} clips of {a.frames} frames at {a.size}x{a.size}, batch size "
            f"{a.batch_size}, torch threads {torch.get_num_threads()}"
        )
        proc = rate(lambda: batches(off, frames, a.batch_size), n, a.repeats, torch.device("cpu"))
        print(f"  processor (CPU)                  {proc:8.2f} clips/s")
        on = load_vlm(str(tiny), device="cpu", gpu_preprocess=True)
        side = rate(lambda: batches(on, frames, a.batch_size), n, a.repeats, torch.device("cpu"))
        print(f"  torch, CPU side only             {side:8.2f} clips/s  ({side / proc:.1f}x)")
        for name in devices:
            dev = torch.device(name)
            vlm = VLM(on.model, on.processor, on.meta, dev, torch.float32, gpu_preprocess=True)

            def whole(vlm=vlm, dev=dev):
                out = []
                for inputs in batches(vlm, frames, a.batch_size):
                    out.append(inputs["pixel_values_videos"].materialize(dev))
                return out

            got = whole()
            diff = max(
                float((g.cpu() - r["pixel_values_videos"]).abs().max())
                for g, r in zip(got, ref, strict=True)
            )
            full = rate(whole, n, a.repeats, dev)
            u8 = torch.from_numpy(frames[: a.batch_size]).to(dev)
            params = vlm._prep

            def pixels(u8=u8, dev=dev, params=params):
                return video_prep.pixel_values(u8, params, device=dev)

            pix = rate(pixels, len(u8), max(a.repeats, 5), dev)
            print(
                f"  torch on {name:<5} (CPU side + pixels) {full:8.2f} clips/s  "
                f"({full / proc:.1f}x; max |diff| to the processor {diff:.1e})"
            )
            print(f"  pixels only on {name:<5}            {pix:8.2f} clips/s")


if __name__ == "__main__":
    main()
