import json

import h5py
import numpy as np
import pytest
import torch

from ethoflow.vlm import embed_sessions, load_vlm

PROMPT = "What are the two mice doing in this video?"


@pytest.fixture(scope="module")
def vlm(tiny_vlm_dir):
    torch.set_num_threads(1)
    return load_vlm(str(tiny_vlm_dir), device="cpu")


def _frames(n, seed=0, f=4, size=56):
    return np.random.default_rng(seed).integers(0, 256, (n, f, size, size, 3), dtype=np.uint8)


def test_load_meta(vlm, tiny_vlm_dir):
    assert vlm.meta["random_demo_model"] is True
    assert vlm.meta["model_type"] == "qwen2_5_vl"
    assert json.loads((tiny_vlm_dir / "ethoflow_demo.json").read_text())["random_demo_model"]
    assert vlm.dtype == torch.float32


def test_embed_shape_determinism_batching(vlm):
    frames = _frames(3)
    d = vlm.model.config.text_config.hidden_size
    a = vlm.embed(frames, PROMPT, batch_size=3)
    assert a.shape == (3, d) and a.dtype == np.float32 and np.isfinite(a).all()
    b = vlm.embed(frames, PROMPT, batch_size=3)
    np.testing.assert_array_equal(a, b)
    one = np.concatenate([vlm.embed(frames[i : i + 1], PROMPT, batch_size=1) for i in range(3)])
    np.testing.assert_allclose(a, one, rtol=1e-4, atol=1e-4)
    assert not np.allclose(a[0], a[1])  # different clips, different vectors
    for pooling in ("all_mean", "last"):
        e = vlm.embed(frames[:2], PROMPT, pooling=pooling, layer=1, batch_size=2)
        assert e.shape == (2, d) and np.isfinite(e).all()
        assert not np.allclose(e, a[:2])
    with pytest.raises(ValueError):
        vlm.embed(frames, PROMPT, pooling="max")


def test_describe_and_score_labels(vlm):
    frames = _frames(2, seed=1)
    out = vlm.describe(frames, PROMPT, max_new_tokens=4, batch_size=2)
    assert len(out) == 2
    for r in out:
        assert isinstance(r["text"], str) and 1 <= r["n_tokens"] <= 4 and r["seconds"] >= 0
    cands = ["other", "attack", "mount"]
    ex = [(_frames(1, seed=2)[0], "attack")]
    s = vlm.score_labels(frames, PROMPT, cands, exemplars=ex, batch_size=2)
    assert s.shape == (2, 3) and s.dtype == np.float32
    assert np.isfinite(s).all() and (s < 0).all()
    assert not np.allclose(s[:, 0], s[:, 1])


def _write_clips(path, frames):
    with h5py.File(path, "w") as f:
        f["frames"] = frames
        f["start_frame"] = np.arange(len(frames)) * 30
        f["end_frame"] = np.arange(len(frames)) * 30 + 30


def test_embed_sessions_resumes_after_kill(vlm, tmp_path):
    clips = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for i, p in enumerate(clips):
        _write_clips(p, _frames(2, seed=10 + i))
    outs = [tmp_path / "emb" / "a.h5", tmp_path / "emb" / "b.h5"]
    first = embed_sessions(vlm, clips[:1], outs[:1], PROMPT, batch_size=2, progress=False)
    assert first == [str(outs[0])] or first == [outs[0]]
    mtime = outs[0].stat().st_mtime_ns
    outs[1].write_bytes(b"partial garbage from a killed job")
    done = embed_sessions(vlm, clips, outs, PROMPT, batch_size=2, progress=False)
    assert [str(p) for p in done] == [str(outs[1])]
    assert outs[0].stat().st_mtime_ns == mtime
    for c, o in zip(clips, outs, strict=True):
        with h5py.File(o) as f, h5py.File(c) as g:
            emb = f["embeddings"][()]
            assert emb.dtype == np.float16 and emb.shape[0] == 2
            assert f.attrs["prompt"] == PROMPT and f.attrs["pooling"] == "video_mean"
            assert bool(f.attrs["random_demo_model"])
            ref = vlm.embed(g["frames"][()], PROMPT, batch_size=2)
        np.testing.assert_allclose(emb.astype(np.float32), ref, rtol=1e-2, atol=1e-2)


def test_windowed_attention_matches_per_window_loop():
    from ethoflow.fast_vision import windowed_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(50, 2, 8, generator=g) for _ in range(3))
    for cu in ([0, 16, 32, 48, 50], [0, 10, 10, 30, 50], [0, 25, 50]):
        cu_t = torch.tensor(cu, dtype=torch.int32)
        ref = []
        for a, b in zip(cu[:-1], cu[1:], strict=True):
            if b > a:
                qa, ka, va = (x[a:b].transpose(0, 1) for x in (q, k, v))
                att = torch.softmax(qa @ ka.transpose(1, 2) * 8**-0.5, -1) @ va
                ref.append(att.transpose(0, 1))
        out = windowed_attention(q, k, v, cu_t, 8**-0.5)
        torch.testing.assert_close(out, torch.cat(ref), rtol=1e-5, atol=1e-5)


def test_fast_vision_equals_stock_forward(vlm):
    from ethoflow.fast_vision import disable_fast_vision_attention, enable_fast_vision_attention

    # 112 x 168 frames -> an 8 x 12 patch grid: two windows of unequal size per frame
    frames = _frames(2, seed=3, size=112)
    frames = np.concatenate([frames, frames[:, :, :, :56]], axis=3)
    assert vlm.meta["fast_vision"]  # load_vlm enables it by default
    fast = vlm.embed(frames, PROMPT, pooling="all_mean", batch_size=2)
    try:
        assert disable_fast_vision_attention(vlm.model) == vlm.model.config.vision_config.depth
        stock = vlm.embed(frames, PROMPT, pooling="all_mean", batch_size=2)
    finally:
        enable_fast_vision_attention(vlm.model)
    np.testing.assert_allclose(fast, stock, rtol=1e-4, atol=1e-5)
    again = vlm.embed(frames, PROMPT, pooling="all_mean", batch_size=2)
    np.testing.assert_array_equal(again, fast)
