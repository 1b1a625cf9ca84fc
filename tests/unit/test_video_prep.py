"""Video preprocessing in torch (``ethoflow.video_prep``) against the transformers processor.

The reference is the processor itself (``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor`` with the
``Qwen2VLVideoProcessor``, called as ``VLM`` calls it: ``do_resize=False``), never this
module's own path. Tolerances: ``pixel_values_videos`` within 1e-5 (float32; on CPU the values
are in fact bit-identical), everything else (token ids, masks, grids, seconds per grid) exact.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from ethoflow import video_prep
from ethoflow.video_prep import LazyVideoPixels, encode, params_from_processor
from ethoflow.vlm import VLM

ATOL = 1e-5
VIDEO = Path(__file__).resolve().parents[1] / "data" / "dlc_openfield" / "m3v1mp4.mp4"
PROMPT = "What are the two mice doing in this video?"


@pytest.fixture(scope="module")
def processors(tiny_vlm_dir):
    """The tiny checkpoint's Qwen2.5-VL processor and a Qwen2-VL one from the same parts."""
    from transformers import AutoProcessor, Qwen2VLProcessor

    p25 = AutoProcessor.from_pretrained(tiny_vlm_dir, local_files_only=True)
    p2 = Qwen2VLProcessor(
        image_processor=p25.image_processor,
        tokenizer=p25.tokenizer,
        video_processor=p25.video_processor,
        chat_template=p25.chat_template,
    )
    for p in (p25, p2):
        p.tokenizer.padding_side = "left"
    return {"qwen2_5_vl": p25, "qwen2_vl": p2}


@pytest.fixture(scope="module")
def real_frames():
    """Decoded frames of a real recording (open field, one mouse) at 112 x 168 (H x W)."""
    from ethoflow.video import open_video

    vr = open_video(VIDEO, width=168, height=112)
    idx = np.arange(0, 60, 4)[:15]
    return vr.get_batch(list(idx)).asnumpy()  # [15, 112, 168, 3] uint8


def _structured(n, f, h, w, seed):
    """Random uint8 clips with structure: smooth gradients, moving blobs and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n, f, h, w, 3), np.uint8)
    for i in range(n):
        for j in range(f):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            blob = 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (h / 6) ** 2))
            base = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (h + w) * 255], -1)
            img = 0.5 * base + blob[..., None] + rng.normal(0, 12, (h, w, 3))
            out[i, j] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _texts(processor, n_videos_per_text):
    texts = []
    for k in n_videos_per_text:
        content = [{"type": "text", "text": PROMPT}] + [{"type": "video"}] * k
        conv = [{"role": "user", "content": content}]
        texts.append(
            processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        )
    return texts


def _reference(processor, texts, clips):
    """The processor on ``[F, 3, H, W]`` uint8 tensors (odd frame counts: it pads them)."""
    videos = [torch.from_numpy(np.ascontiguousarray(c)).permute(0, 3, 1, 2) for c in clips]
    return processor(
        text=list(texts),
        videos=videos,
        padding=True,
        return_tensors="pt",
        do_resize=False,
    )


def _assert_same(ours: dict, ref, device="cpu"):
    assert set(ours) == set(ref.keys())
    for k, v in ref.items():
        mine = ours[k]
        if k == "pixel_values_videos":
            assert isinstance(mine, LazyVideoPixels)
            assert tuple(mine.shape) == tuple(v.shape)
            got = mine.to(device).cpu()
            assert got.dtype == v.dtype == torch.float32
            torch.testing.assert_close(got, v, rtol=0, atol=ATOL)
        else:
            assert mine.dtype == v.dtype, k
            assert torch.equal(mine, v), k


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen2_vl"])
@pytest.mark.parametrize("n_frames", [10, 7, 5, 1])
def test_equal_to_the_processor_on_real_frames(processors, real_frames, kind, n_frames):
    processor = processors[kind]
    params = params_from_processor(processor)
    assert params is not None and params.model_type == kind
    clips = np.stack([real_frames[i : i + n_frames] for i in (0, 2, 5)])  # [3, F, 112, 168, 3]
    texts = _texts(processor, [1, 1, 1])
    ref = _reference(processor, texts, list(clips))
    ours = encode(processor, texts, clips, params)
    _assert_same(ours, ref)
    t = (n_frames + 1) // 2
    assert ours["video_grid_thw"].tolist() == [[t, 8, 12]] * 3
    if kind == "qwen2_5_vl":  # temporal_patch_size / the processor's default metadata fps
        assert torch.equal(ref["second_per_grid_ts"], torch.tensor([2 / 24] * 3))


@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen2_vl"])
def test_mixed_shapes_and_several_videos_per_text(processors, kind):
    """Exemplar-style batches: a text with two videos, clips of three sizes and frame counts,
    the placeholders consumed in order across the batch."""
    processor = processors[kind]
    params = params_from_processor(processor)
    clips = [
        _structured(1, 5, 56, 56, 1)[0],
        _structured(1, 4, 84, 112, 2)[0],
        _structured(1, 4, 84, 112, 3)[0],
        _structured(1, 9, 112, 56, 4)[0],
    ]
    texts = _texts(processor, [2, 1, 1])
    ref = _reference(processor, texts, clips)
    ours = encode(processor, texts, clips, params)
    _assert_same(ours, ref)
    assert [len(g) for g in ours["pixel_values_videos"].groups] == [1, 2, 1]


def test_pixel_values_on_a_given_device_and_torch_input(processors, real_frames):
    processor = processors["qwen2_5_vl"]
    params = params_from_processor(processor)
    clips = torch.from_numpy(np.stack([real_frames[:7], real_frames[3:10]]))
    ref = _reference(processor, _texts(processor, [1, 1]), list(clips.numpy()))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        got = video_prep.pixel_values(clips.to(dev), params, device=dev)
        assert got.device.type == dev
        torch.testing.assert_close(got.cpu(), ref["pixel_values_videos"], rtol=0, atol=ATOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_equal_to_the_processor_on_cuda(processors, real_frames):
    processor = processors["qwen2_5_vl"]
    params = params_from_processor(processor)
    clips = np.stack([real_frames[i : i + 10] for i in range(4)])
    texts = _texts(processor, [1] * 4)
    ref = _reference(processor, texts, list(clips))
    _assert_same(encode(processor, texts, clips, params, pin=True), ref, device="cuda")


def test_the_resize_check(processors):
    params = params_from_processor(processors["qwen2_5_vl"])
    bad = np.zeros((2, 4, 50, 56, 3), np.uint8)
    with pytest.raises(ValueError, match=r"50x56 .*multiples of patch_size \* merge_size = 28"):
        video_prep.pixel_values(bad, params)
    with pytest.raises(ValueError, match="multiples of"):
        encode(processors["qwen2_5_vl"], ["<|video_pad|>"], [bad[0]], params)
    with pytest.raises(ValueError, match="uint8"):
        video_prep.pixel_values(bad.astype(np.float32), params)
    with pytest.raises(ValueError, match="placeholders"):
        encode(processors["qwen2_5_vl"], ["no video"], [bad[0, :, :28, :28]], params)


def test_unsupported_models_fall_back(processors):
    p = processors["qwen2_5_vl"]
    assert params_from_processor(p, "qwen3_vl") is None  # timestamped video template
    assert params_from_processor(p, "qwen2_vl") is None  # model and processor disagree
    assert params_from_processor(p.tokenizer) is None
    assert params_from_processor(p, "qwen2_5_vl") is not None


# ---------------------------------------------------------------- in VLM
def _twin(vlm: VLM, mode) -> VLM:
    return VLM(vlm.model, vlm.processor, vlm.meta, vlm.device, vlm.dtype, gpu_preprocess=mode)


def test_vlm_fast_path_equals_the_processor_path(tiny_vlm, real_frames):
    """``VLM.embed`` / ``score_labels`` with gpu_preprocess on (auto) and off, on CPU: the same
    code as on a GPU with device=cpu."""
    on, off = _twin(tiny_vlm, "auto"), _twin(tiny_vlm, False)
    assert on.meta["gpu_preprocess"] and not off.meta["gpu_preprocess"]
    clips = np.stack([real_frames[i : i + 5] for i in range(3)])  # odd frame count
    conv = [on._messages(clips[i], PROMPT) for i in range(3)]
    fast = on._inputs(conv)
    assert isinstance(fast["pixel_values_videos"], LazyVideoPixels)  # the fast path ran
    ref = off._inputs(conv)  # qwen-vl-utils + processor
    assert isinstance(ref["pixel_values_videos"], torch.Tensor)
    for k in ("input_ids", "attention_mask", "mm_token_type_ids", "video_grid_thw"):
        assert torch.equal(fast[k], ref[k]), k
    assert torch.equal(fast["second_per_grid_ts"], ref["second_per_grid_ts"])
    torch.testing.assert_close(
        on._to_device(fast)["pixel_values_videos"], ref["pixel_values_videos"], rtol=0, atol=ATOL
    )

    a = on.embed(clips, PROMPT, batch_size=2)
    b = off.embed(clips, PROMPT, batch_size=2)
    np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
    cands = ["other", "freezing", "fleeing"]
    ex = [(real_frames[9:13], "fleeing")]
    sa = on.score_labels(clips[:2], "Label:", cands, exemplars=ex)
    sb = off.score_labels(clips[:2], "Label:", cands, exemplars=ex)
    np.testing.assert_allclose(sa, sb, rtol=0, atol=1e-4)


def test_vlm_qwen2vl_fast_path(tmp_path):
    from ethoflow.tiny import build_tiny_qwen2vl
    from ethoflow.vlm import load_vlm

    on = load_vlm(str(build_tiny_qwen2vl(tmp_path / "q2")))
    assert on.meta["gpu_preprocess"] and on.gpu_preprocess == "auto"
    off = _twin(on, "false")
    clips = _structured(2, 3, 56, 112, 7)
    np.testing.assert_allclose(on.embed(clips, "q"), off.embed(clips, "q"), rtol=0, atol=ATOL)


def test_vlm_frames_qwen_vl_utils_would_resize(tiny_vlm, caplog):
    """Frames qwen-vl-utils would resample: auto keeps the processor path (results as before),
    true feeds the frames as they are (a multiple of 28: what the processor gives for them
    without qwen-vl-utils) or fails the resize check."""
    auto, off, true = _twin(tiny_vlm, "auto"), _twin(tiny_vlm, "false"), _twin(tiny_vlm, True)
    # 56 x 84: multiples of 28, but qwen-vl-utils' PIL step rounds to multiples of 56
    # (84 -> 112) and its torchvision step back to 84: the frames change on the processor path
    clips = _structured(2, 3, 56, 84, 9)
    assert not video_prep.kept_by_qwen_vl_utils(56, 84, auto._prep)
    inputs = auto._inputs([auto._messages(clips[0], PROMPT)])
    assert isinstance(inputs["pixel_values_videos"], torch.Tensor)
    assert "resized by qwen-vl-utils" in caplog.text
    np.testing.assert_array_equal(auto.embed(clips, "q"), off.embed(clips, "q"))
    forced = true._inputs([true._messages(c, PROMPT) for c in clips])
    texts = [
        true.processor.apply_chat_template(
            true._messages(c, PROMPT), tokenize=False, add_generation_prompt=True
        )
        for c in clips
    ]
    ref = _reference(true.processor, texts, list(clips))
    # VLM sets the seconds per temporal step from the clips' frame rate (VLM._timed); the
    # processor, given bare frames, assumes 24 fps: the hand-computed value replaces it
    tp = true.processor.video_processor.temporal_patch_size
    ref["second_per_grid_ts"] = torch.full((len(clips),), tp / true.video_fps)
    _assert_same(forced, ref)
    # 50 x 56: not a multiple of 28
    bad = _structured(1, 4, 50, 56, 9)
    np.testing.assert_array_equal(auto.embed(bad, "q"), off.embed(bad, "q"))
    with pytest.raises(ValueError, match="multiples of"):
        true.embed(bad, "q")
    with pytest.raises(ValueError, match="gpu_preprocess"):
        _twin(tiny_vlm, "yes")
