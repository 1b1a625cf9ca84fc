"""Stage-2 embedding throughput on random-weight Qwen2.5-VL models (nothing downloaded).

Builds the real Qwen2.5-VL-3B or -7B shapes from config (or the tiny test shape) with random
weights, writes random clips (10 frames at 448x448 by default) to h5 files and reports:

- end-to-end clips/s of the workflow's embedding task (``vlm_server.embed``, what the model
  server runs for ``vlm_embed``: h5 read, preprocessing on a prefetch thread, forward,
  pooling; then ``results.write_embeddings``), with the batched vision attention;
- bare ``model(**inputs)`` forward clips/s on the same preprocessed inputs, stock transformers
  and with the batched vision attention;
- peak GPU memory and the end-to-end / stock-bare ratio.

Example: ``python benchmarks/bench_vlm.py --shape 3b --device cuda --clips 64 --batch-size 8``;
``--shape tiny --device cpu`` runs anywhere (a smoke figure, not a GPU number).
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

from ethoflow import vlm_server
from ethoflow.fast_vision import disable_fast_vision_attention, enable_fast_vision_attention
from ethoflow.results import read_clips, write_clips, write_embeddings
from ethoflow.tiny import build_tiny_qwen25vl
from ethoflow.vlm import VLM

SHAPES = {
    "3b": dict(
        text=dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
        ),
        vision=dict(out_hidden_size=2048),
    ),
    "7b": dict(
        text=dict(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
        ),
        vision=dict(out_hidden_size=3584),
    ),
}
VISION = dict(
    depth=32,
    hidden_size=1280,
    intermediate_size=3420,
    num_heads=16,
    window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31],
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
    tokens_per_second=2,
)


def build(shape: str, device: torch.device, dtype: torch.dtype, work: Path) -> VLM:
    """The tiny processor/tokenizer with a model of the requested shape, random weights."""
    from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLForConditionalGeneration

    tiny = build_tiny_qwen25vl(work / "tiny")
    processor = AutoProcessor.from_pretrained(tiny, local_files_only=True)
    cfg = AutoConfig.from_pretrained(tiny, local_files_only=True)
    if shape != "tiny":
        rope = dict(cfg.text_config.rope_parameters or {})
        rope["mrope_section"] = [16, 24, 24]
        for k, v in SHAPES[shape]["text"].items():
            setattr(cfg.text_config, k, v)
        cfg.text_config.vocab_size = 151936 if shape == "3b" else 152064
        if getattr(cfg.text_config, "layer_types", None) is not None:
            cfg.text_config.layer_types = ["full_attention"] * cfg.text_config.num_hidden_layers
        cfg.text_config.rope_parameters = rope
        cfg.text_config.tie_word_embeddings = shape == "3b"
        for k, v in {**VISION, **SHAPES[shape]["vision"]}.items():
            setattr(cfg.vision_config, k, v)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            net = Qwen2_5_VLForConditionalGeneration(cfg)
        finally:
            torch.set_default_dtype(prev)
    net.eval()
    meta = {"model": f"random-{shape}", "model_revision": "", "random_demo_model": True}
    return VLM(net, processor, meta, device, dtype)


def bare_forward(vlm: VLM, inputs: list, repeats: int) -> float:
    """Clips/s of ``model(**inputs)`` over already preprocessed, device-resident batches."""
    dev = [vlm._to_device(x) for x in inputs]
    n = sum(int(x["input_ids"].shape[0]) for x in inputs)
    with torch.inference_mode():
        vlm.model(**dev[0])  # warm-up
        _sync(vlm.device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            for x in dev:
                vlm.model(**x)
        _sync(vlm.device)
    return repeats * n / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=["tiny", "3b", "7b"], default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--clips", type=int, default=8, help="clips per session")
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    prompt = "What are the two mice doing in this video?"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        vlm = build(a.shape, device, dtype, work)
        rng = np.random.default_rng(0)
        clip_paths, out_paths = [], []
        for s in range(a.sessions):
            p = work / f"clips{s}.h5"
            frames = rng.integers(0, 256, (a.clips, a.frames, a.size, a.size, 3), dtype=np.uint8)
            starts = np.arange(a.clips) * 60
            index = np.stack([np.linspace(t, t + 59, a.frames) for t in starts]).astype(np.int64)
            # as cut_clips writes them (JPEG frames by default): the decode is part of the cost
            write_clips(
                p,
                frames,
                starts,
                starts + 60,
                index,
                frames.shape[1:],
                {"fps_out": 2.0},
                codec="jpeg",
            )
            clip_paths.append(str(p))
            out_paths.append(str(work / f"emb{s}.h5"))
        frames = read_clips(clip_paths[0])["frames"]
        ranges = [(i, min(a.clips, i + a.batch_size)) for i in range(0, a.clips, a.batch_size)]
        inputs = [
            vlm._inputs([vlm._messages(frames[i], prompt) for i in range(*r)]) for r in ranges
        ]
        n_tok = int(inputs[0]["input_ids"].shape[1])

        disable_fast_vision_attention(vlm.model)
        stock = bare_forward(vlm, inputs, a.repeats)
        enable_fast_vision_attention(vlm.model)
        fast = bare_forward(vlm, inputs, a.repeats)

        def embed_file(clips: str, out: str) -> None:
            r = vlm_server.embed(vlm, clips, prompt, "video_mean", -1, a.batch_size)
            write_embeddings(out, r["embeddings"], r["start_frame"], r["end_frame"], vlm.meta)

        embed_file(clip_paths[0], str(work / "warm.h5"))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for clips, out in zip(clip_paths, out_paths, strict=True):
            embed_file(clips, out)
        _sync(device)
        e2e = a.clips * a.sessions / (time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    label = f"{a.shape} on {device.type}" + (" (CPU smoke figure)" if device.type == "cpu" else "")
    print(f"shape {label}, {a.frames} frames at {a.size}x{a.size}, {n_tok} tokens per clip")
    print(f"  batch size                      {a.batch_size}")
    print(f"  bare forward, stock transformers {stock:8.2f} clips/s")
    print(f"  bare forward, batched vision     {fast:8.2f} clips/s")
    print(f"  embed task end to end            {e2e:8.2f} clips/s")
    print(f"  ratio end-to-end / stock bare    {e2e / stock:8.2f}")
    print(f"  peak GPU memory                  {peak:8.2f} GiB")


if __name__ == "__main__":
    main()
