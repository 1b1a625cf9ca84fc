"""The VLM stage on CPU with the tiny random Qwen2.5-VL, loaded like a real checkpoint."""

import json

import numpy as np
import pytest

from ethoflow.errors import InputError
from ethoflow.vlm import load_vlm

rng = np.random.default_rng(0)
FRAMES = rng.integers(0, 255, size=(3, 4, 56, 56, 3), dtype=np.uint8)


def test_tiny_model_is_a_real_qwen25vl_checkpoint(tiny_vlm_dir, tiny_vlm):
    cfg = json.loads((tiny_vlm_dir / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl"
    tok = json.loads((tiny_vlm_dir / "tokenizer.json").read_text())
    specials = {t["content"] for t in tok["added_tokens"]}
    assert {"<|im_start|>", "<|im_end|>", "<|video_pad|>", "<|vision_start|>"} <= specials
    assert tiny_vlm.meta["random_demo_model"] is True
    assert tiny_vlm.meta["model_type"] == "qwen2_5_vl"


def test_embedding_shape_dtype_determinism_and_batching(tiny_vlm):
    a = tiny_vlm.embed(FRAMES, "What are the mice doing?", batch_size=3)
    b = tiny_vlm.embed(FRAMES, "What are the mice doing?", batch_size=3)
    one = np.concatenate(
        [tiny_vlm.embed(FRAMES[i : i + 1], "What are the mice doing?") for i in range(3)]
    )
    assert a.shape == (3, 64) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert np.allclose(a, one, atol=1e-4)
    assert not np.allclose(a[0], a[1])  # different clips, different vectors
    other = tiny_vlm.embed(FRAMES, "Is a mouse grooming?", batch_size=3)
    assert not np.allclose(a, other)  # the prompt matters
    for pooling in ("all_mean", "last"):
        assert tiny_vlm.embed(FRAMES[:1], "x", pooling=pooling, layer=1).shape == (1, 64)


def test_describe_and_label_scores(tiny_vlm):
    answers = tiny_vlm.describe(FRAMES[:2], "Describe.", max_new_tokens=4, batch_size=2)
    assert len(answers) == 2
    assert all(isinstance(a["text"], str) and 1 <= a["n_tokens"] <= 4 for a in answers)
    s = tiny_vlm.score_labels(
        FRAMES[:2], "Label:", ["other", "freezing", "fleeing"], exemplars=[(FRAMES[2], "fleeing")]
    )
    assert s.shape == (2, 3) and np.isfinite(s).all() and (s < 0).all()
    # batched scoring equals scoring one clip at a time
    s1 = tiny_vlm.score_labels(
        FRAMES[:1],
        "Label:",
        ["other", "freezing", "fleeing"],
        exemplars=[(FRAMES[2], "fleeing")],
        batch_size=1,
    )
    assert np.allclose(s[:1], s1, atol=1e-3)


def test_missing_model_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="cannot load the VLM"):
        load_vlm(str(tmp_path / "empty"))


def test_qwen2vl_loads_through_the_same_path(tmp_path):
    from ethoflow.tiny import build_tiny_qwen2vl

    vlm = load_vlm(str(build_tiny_qwen2vl(tmp_path / "q2")))
    assert vlm.meta["model_type"] == "qwen2_vl"
    assert vlm.embed(FRAMES[:2], "q", batch_size=2).shape == (2, 64)


def test_windowed_attention_matches_per_window_loop():
    import torch

    from ethoflow.fast_vision import windowed_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(50, 2, 8, generator=g) for _ in range(3))
    for cu in ([0, 16, 32, 48, 50], [0, 10, 10, 30, 50], [0, 25, 50]):
        ref = []
        for a, b in zip(cu[:-1], cu[1:], strict=True):
            if b > a:
                qa, ka, va = (x[a:b].transpose(0, 1) for x in (q, k, v))
                att = torch.softmax(qa @ ka.transpose(1, 2) * 8**-0.5, -1) @ va
                ref.append(att.transpose(0, 1))
        out = windowed_attention(q, k, v, torch.tensor(cu, dtype=torch.int32), 8**-0.5)
        torch.testing.assert_close(out, torch.cat(ref), rtol=1e-5, atol=1e-5)


def test_fast_vision_equals_stock_forward(tiny_vlm):
    from ethoflow.fast_vision import disable_fast_vision_attention, enable_fast_vision_attention

    # 112 x 168 frames -> an 8 x 12 patch grid: two windows of unequal size (64, 32) per frame
    frames = np.random.default_rng(3).integers(0, 256, (2, 4, 112, 168, 3), dtype=np.uint8)
    assert tiny_vlm.meta["fast_vision"]  # load_vlm enables it by default
    fast = tiny_vlm.embed(frames, "q", pooling="all_mean", batch_size=2)
    depth = tiny_vlm.model.config.vision_config.depth
    try:
        assert disable_fast_vision_attention(tiny_vlm.model) == depth
        stock = tiny_vlm.embed(frames, "q", pooling="all_mean", batch_size=2)
    finally:
        assert enable_fast_vision_attention(tiny_vlm.model) == depth
    np.testing.assert_allclose(fast, stock, rtol=1e-4, atol=1e-5)
    assert np.array_equal(tiny_vlm.embed(frames, "q", pooling="all_mean", batch_size=2), fast)


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 0), "float16"), ((8, 6), "bfloat16"), ((9, 0), "bfloat16")],
)
def test_auto_dtype_follows_the_gpu_generation(monkeypatch, capability, expected):
    """V100 (sm70, the Great Lakes `gpu` partition) has no native bfloat16: float16 there."""
    import torch

    from ethoflow.vlm import auto_dtype

    calls = []

    def capability_of(dev):
        calls.append(dev)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    assert auto_dtype(torch.device("cuda", 0)) == getattr(torch, expected)
    assert calls == [torch.device("cuda", 0)]
    assert auto_dtype(torch.device("cpu")) == torch.float32


def _count_videos(model):
    """Wrap the vision tower: count the videos (grid rows) it encodes."""
    visual = model.model.visual
    counter = {"videos": 0, "calls": 0}
    forward = visual.forward

    def counted(*args, **kwargs):
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        counter["videos"] += int(grid.shape[0])
        counter["calls"] += 1
        return forward(*args, **kwargs)

    return counter, forward, counted


@pytest.mark.parametrize(("n_ex", "packed"), [(0, True), (2, True), (2, False)])
def test_cached_label_scores_equal_the_full_conversation(tiny_vlm, n_ex, packed, monkeypatch):
    """The prefix-cache path gives the full-conversation scores (float32, CPU: within 1e-4)
    and encodes every exemplar once per job and every clip once, against
    (exemplars + 1) x candidates videos per clip for the full conversation. ``packed``: all
    candidates in one row under a 4-D mask; else one row per candidate (flash-attention)."""
    from ethoflow import vlm as vlm_mod

    monkeypatch.setattr(vlm_mod._CachedScorer, "PACKED", packed)
    frames = np.random.default_rng(5).integers(0, 256, (5, 4, 56, 56, 3), dtype=np.uint8)
    cands = ["other", "freezing", "fleeing", "attack investigation"]  # answers of 2..5 tokens
    ex = [(frames[3 + i], cands[i]) for i in range(n_ex)]
    clips = frames[:3]
    visual = tiny_vlm.model.model.visual
    counter, forward, counted = _count_videos(tiny_vlm.model)
    visual.forward = counted
    try:
        full = tiny_vlm.score_labels(clips, "Label:", cands, exemplars=ex, cached=False)
        n_full = counter["videos"]
        counter["videos"] = 0
        fast = tiny_vlm.score_labels(clips, "Label:", cands, exemplars=ex, batch_size=8)
        n_fast = counter["videos"]
    finally:
        visual.forward = forward
    assert n_full == (n_ex + 1) * len(cands) * len(clips)
    assert n_fast == n_ex + len(clips)
    assert fast.shape == (3, 4) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, full, rtol=0, atol=1e-4)
    one = tiny_vlm.score_labels(clips, "Label:", cands, exemplars=ex, batch_size=1)
    np.testing.assert_allclose(one, full, rtol=0, atol=1e-4)


def test_cached_scores_need_the_multimodal_positions(tiny_vlm, monkeypatch):
    """The equivalence above is sharp enough to see rope positions off by one."""
    from ethoflow import vlm as vlm_mod

    frames = np.random.default_rng(6).integers(0, 256, (3, 4, 56, 56, 3), dtype=np.uint8)
    cands = ["other", "freezing", "fleeing"]
    ex = [(frames[2], "fleeing")]
    full = tiny_vlm.score_labels(frames[:2], "Label:", cands, exemplars=ex, cached=False)
    right = vlm_mod._CachedScorer._positions

    def shifted(self, clip):
        pos, prefix = right(self, clip)
        return pos + 1, prefix

    monkeypatch.setattr(vlm_mod._CachedScorer, "_positions", shifted)
    wrong = tiny_vlm.score_labels(frames[:2], "Label:", cands, exemplars=ex)
    assert np.abs(wrong - full).max() > 1e-4


def test_cached_label_scores_on_qwen2vl(tmp_path):
    from ethoflow.tiny import build_tiny_qwen2vl

    vlm = load_vlm(str(build_tiny_qwen2vl(tmp_path / "q2")))
    cands = ["other", "freezing", "fleeing"]
    ex = [(FRAMES[2], "fleeing")]
    full = vlm.score_labels(FRAMES[:2], "Label:", cands, exemplars=ex, cached=False)
    fast = vlm.score_labels(FRAMES[:2], "Label:", cands, exemplars=ex)
    np.testing.assert_allclose(fast, full, rtol=0, atol=1e-4)


def test_cuda_out_of_memory_halves_the_batch(tiny_vlm, monkeypatch, caplog):
    """A (simulated) CUDA OOM on batches of more than one clip: the batch is halved until it
    fits, every clip is still embedded once, and the vectors are the one-clip-at-a-time ones."""
    import torch

    from ethoflow import vlm as vlm_mod

    frames = np.random.default_rng(11).integers(0, 256, (5, 4, 56, 56, 3), dtype=np.uint8)
    ref = np.concatenate([tiny_vlm.embed(frames[i : i + 1], "q") for i in range(5)])
    real = vlm_mod.VLM._pool
    sizes = []

    def pool(self, pooling, layer):
        run = real(self, pooling, layer)

        def oom_above_one(inputs):
            sizes.append(int(inputs["input_ids"].shape[0]))
            if sizes[-1] > 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return run(inputs)

        return oom_above_one

    monkeypatch.setattr(vlm_mod.VLM, "_pool", pool)
    with caplog.at_level("WARNING"):
        out = tiny_vlm.embed(frames, "q", batch_size=4)
    assert sizes[:2] == [4, 2] and set(sizes[2:]) == {1} and sizes.count(1) == 5
    assert "batch size halved to 1" in caplog.text
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("fps", [2.0, 4.0])
def test_time_positions_follow_the_clips_frame_rate(tiny_vlm, fps):
    """Qwen2.5-VL places a video's temporal grid steps tokens_per_second x seconds apart; the
    seconds per step are temporal_patch_size / fps of the sampled frames (hand-computed here),
    not the 24 fps transformers 5 assumes for frames without metadata, under which the four
    frames' two steps would share one position."""
    import inspect

    frames = np.random.default_rng(3).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    tiny_vlm.video_fps = fps
    try:
        inp = tiny_vlm._inputs([tiny_vlm._messages(frames, "q")])
    finally:
        tiny_vlm.video_fps = 2.0
    tp = tiny_vlm.processor.video_processor.temporal_patch_size
    assert inp["second_per_grid_ts"].tolist() == [tp / fps]
    base = tiny_vlm.model.model
    kw = {
        "input_ids": inp["input_ids"],
        "image_grid_thw": None,
        "video_grid_thw": inp["video_grid_thw"],
        "second_per_grid_ts": inp["second_per_grid_ts"],
        "attention_mask": inp["attention_mask"],
        "mm_token_type_ids": inp.get("mm_token_type_ids"),
    }
    kw = {k: v for k, v in kw.items() if k in inspect.signature(base.get_rope_index).parameters}
    pos, _ = base.get_rope_index(**kw)
    t = pos[0, 0][inp["input_ids"][0] == tiny_vlm.video_token_id].unique()
    per_s = tiny_vlm.model.config.vision_config.tokens_per_second
    assert len(t) == 2 and int(t[1] - t[0]) == int(per_s * tp / fps)
