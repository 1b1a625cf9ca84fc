"""Qwen2-VL / Qwen2.5-VL video preprocessing with torch ops on any device.

The transformers video processor turns every clip into ``pixel_values_videos`` on the CPU
(convert, rescale + normalize, patchify) and expands each ``<|video_pad|>`` placeholder of the
text into one token per merged patch. Stage 2's clips are already at their final size (cut at
multiples of ``patch_size * merge_size``), so the CPU only has to stack the uint8 frames and
tokenise the expanded text; the arithmetic runs where the model is (``LazyVideoPixels``).

What the processor does (``Qwen2VLVideoProcessor._preprocess`` with ``do_resize=False``, and
``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor``), reproduced here:

- frames ``[F, H, W, 3]`` go channels-first and to float32; rescale and normalize are fused:
  ``(x - mean / rescale_factor) / (std / rescale_factor)`` (float32 mean/std scaled in float32);
- the frame count is padded to a multiple of ``temporal_patch_size`` by repeating the last
  frame;
- patchify: the video viewed as ``[t, T, C, h/m, m, p, w/m, m, p]`` (``T`` temporal patch, ``m``
  merge size, ``p`` patch size) is permuted to ``[t, h/m, w/m, m, m, C, T, p, p]`` and flattened
  to ``[t * h * w, C * T * p * p]``; the clips of a batch are concatenated in order;
- ``video_grid_thw`` is ``[t, h, w]`` per clip (grid units); each ``<|video_pad|>`` becomes
  ``t * h * w / m**2`` of them, the i-th placeholder of the batch for the i-th clip;
- Qwen2.5-VL adds ``second_per_grid_ts = temporal_patch_size / sampled_fps`` per clip, where
  ``sampled_fps`` is that of the processor's default video metadata (no fps known: 24).

Rescale/normalize are elementwise, so they run after the (uint8, four times cheaper) patchify
permutation; the result is bit-identical to the processor's on CPU (see
``tests/unit/test_video_prep.py``). Other model types (Qwen3-VL and its timestamped video
template) give ``None`` from ``params_from_processor``: the caller keeps the processor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SUPPORTED = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}


@dataclass(frozen=True)
class PrepParams:
    """The video processor's settings, read from a loaded processor."""

    model_type: str
    patch_size: int
    temporal_patch_size: int
    merge_size: int
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    rescale_factor: float
    do_rescale: bool
    do_normalize: bool
    video_token: str
    mm_token_type_ids: bool  # the processor also returns mm_token_type_ids

    @property
    def factor(self) -> int:
        """Frame height and width must be multiples of this (one merged patch)."""
        return self.patch_size * self.merge_size

    @property
    def second_per_grid(self) -> bool:
        return self.model_type == "qwen2_5_vl"


def params_from_processor(processor, model_type: str | None = None) -> PrepParams | None:
    """The settings of a Qwen2-VL / Qwen2.5-VL processor, or None for anything else (other
    model types, or settings this module does not reproduce: frame sampling)."""
    name = type(processor).__name__
    if model_type is None:  # from the processor class
        model_type = next((k for k, v in SUPPORTED.items() if v == name), None)
    if model_type not in SUPPORTED or SUPPORTED[model_type] != name:
        return None
    vp = getattr(processor, "video_processor", None)
    try:
        from transformers import Qwen2VLVideoProcessor
    except ImportError:  # pragma: no cover - transformers without it cannot run the model
        return None
    if not isinstance(vp, Qwen2VLVideoProcessor) or getattr(vp, "do_sample_frames", False):
        return None
    mean, std = vp.image_mean, vp.image_std
    mean = (mean,) * 3 if isinstance(mean, int | float) else tuple(float(x) for x in mean)
    std = (std,) * 3 if isinstance(std, int | float) else tuple(float(x) for x in std)
    return PrepParams(
        model_type=model_type,
        patch_size=int(vp.patch_size),
        temporal_patch_size=int(vp.temporal_patch_size),
        merge_size=int(vp.merge_size),
        image_mean=mean,
        image_std=std,
        rescale_factor=float(vp.rescale_factor),
        do_rescale=bool(vp.do_rescale),
        do_normalize=bool(vp.do_normalize),
        video_token=str(getattr(processor, "video_token", "<|video_pad|>")),
        mm_token_type_ids=bool(getattr(processor, "return_mm_token_type_ids", False)),
    )


# ---------------------------------------------------------------- shapes
def check_size(height: int, width: int, params: PrepParams) -> None:
    """The resize check: frames must already be at a size the processor would keep."""
    f = params.factor
    if height % f or width % f or height <= 0 or width <= 0:
        raise ValueError(
            f"clip frames are {height}x{width} (HxW): GPU video preprocessing needs height and "
            f"width to be multiples of patch_size * merge_size = {f} (it does not resize); cut "
            f"the clips at such a size or set vlm.gpu_preprocess: false"
        )


def grid_thw(n_frames: int, height: int, width: int, params: PrepParams) -> tuple[int, int, int]:
    """``(t, h, w)`` in patches of a clip, after padding the frames to the temporal patch."""
    check_size(height, width, params)
    if n_frames < 1:
        raise ValueError("a clip needs at least one frame")
    tp = params.temporal_patch_size
    t = (n_frames + (-n_frames % tp)) // tp
    return t, height // params.patch_size, width // params.patch_size


def second_per_grid_ts(n_frames: Sequence[int], params: PrepParams, fps=None) -> list[float]:
    """Qwen2.5-VL's seconds per temporal grid step per clip, as its processor computes them:
    ``temporal_patch_size / metadata.sampled_fps`` of the default metadata it builds (``fps``:
    the metadata's frame rate, None when the processor is given no metadata, as in ``VLM``)."""
    from transformers.video_utils import VideoMetadata

    out = []
    for n in n_frames:
        meta = VideoMetadata(total_num_frames=int(n), fps=fps, frames_indices=list(range(int(n))))
        out.append(params.temporal_patch_size / meta.sampled_fps)
    return out


# ---------------------------------------------------------------- pixels
def _as_uint8_tensor(frames):
    import torch

    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
    if t.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8, got {t.dtype}")
    return t


def patchify(frames, params: PrepParams):
    """uint8 frames ``[B, F, H, W, C]`` (torch, any device) -> uint8 patches
    ``[B * t * h * w, C * T * p * p]`` in the processor's row and column order."""
    import torch

    b, f, hh, ww, c = frames.shape
    check_size(hh, ww, params)
    tp, p, m = params.temporal_patch_size, params.patch_size, params.merge_size
    if pad := -f % tp:  # repeat the last frame, as the processor does
        frames = torch.cat([frames, frames[:, -1:].expand(-1, pad, -1, -1, -1)], 1)
        f += pad
    t, gh, gw = f // tp, hh // p, ww // p
    x = frames.reshape(b, t, tp, gh // m, m, p, gw // m, m, p, c)
    # -> [b, t, h/m, w/m, m_h, m_w, C, T, p_h, p_w] (the processor's 0,1,4,7,5,8,3,2,6,9 of
    # its channels-first view)
    x = x.permute(0, 1, 3, 6, 4, 7, 9, 2, 5, 8)
    return x.reshape(b * t * gh * gw, c * tp * p * p)


def normalize(patches, params: PrepParams):
    """uint8 patches -> float32, rescaled and normalized exactly like the processor (fused:
    mean and std divided by the rescale factor, in float32)."""
    import torch

    x = patches.to(torch.float32)
    c = len(params.image_mean)
    dev = patches.device
    if params.do_normalize:
        mean = torch.tensor(params.image_mean, device=dev)
        std = torch.tensor(params.image_std, device=dev)
        if params.do_rescale:
            mean = mean * (1.0 / params.rescale_factor)
            std = std * (1.0 / params.rescale_factor)
        # the channel is the outermost part of a patch's columns; sub then div, as
        # torchvision's normalize does
        v = x.reshape(x.shape[0], c, -1)
        x = v.sub_(mean[:, None]).div_(std[:, None]).reshape(x.shape)
    elif params.do_rescale:
        x = x * params.rescale_factor
    return x


def pixel_values(clips, params: PrepParams, device=None):
    """``pixel_values_videos`` float32 on ``device`` from uint8 clips: a ``[B, F, H, W, 3]``
    array/tensor or a sequence of ``[F, H, W, 3]`` clips (any sizes, kept in order)."""
    return LazyVideoPixels.from_clips(clips, params).materialize(device)


class LazyVideoPixels:
    """``pixel_values_videos`` not yet computed: the stacked uint8 frames of a batch's clips
    (runs of consecutive clips of one shape), normalized and patchified on the device they are
    moved to (``.to(device)`` / ``materialize``)."""

    def __init__(self, groups: list, params: PrepParams):
        self.groups = groups  # uint8 tensors [B, F, H, W, 3], in clip order
        self.params = params

    @classmethod
    def from_clips(cls, clips, params: PrepParams, pin: bool = False) -> LazyVideoPixels:
        """``clips``: a ``[B, F, H, W, 3]`` uint8 array/tensor, or a sequence of clips, each a
        ``[F, H, W, 3]`` uint8 array/tensor or a list of RGB PIL images (frames). Consecutive
        clips of one shape are copied once into one (pinned: ``pin``) uint8 buffer."""
        if not isinstance(clips, list | tuple):
            t = _as_uint8_tensor(clips)
            if t.ndim != 5:
                raise ValueError(f"clips must be [B, F, H, W, 3], got {tuple(t.shape)}")
            groups = [t.pin_memory() if pin and t.device.type == "cpu" else t]
        else:
            groups, run, shape = [], [], None
            for c in [*clips, None]:
                s = clip_shape(c) if c is not None else None
                if run and s != shape:
                    groups.append(_gather(run, shape, pin))
                    run = []
                if c is not None:
                    run.append(c)
                    shape = s
        for g in groups:
            check_size(g.shape[2], g.shape[3], params)
            if g.shape[-1] != len(params.image_mean):
                raise ValueError(f"frames must have {len(params.image_mean)} channels (RGB)")
        return cls(groups, params)

    @property
    def n_clips(self) -> int:
        return sum(int(g.shape[0]) for g in self.groups)

    @property
    def shape(self) -> tuple[int, int]:
        p = self.params
        rows = sum(int(g.shape[0]) * int(np.prod(grid_thw(*g.shape[1:4], p))) for g in self.groups)
        return rows, len(p.image_mean) * p.temporal_patch_size * p.patch_size**2

    def grids(self) -> list[tuple[int, int, int]]:
        out = []
        for g in self.groups:
            out += [grid_thw(*g.shape[1:4], self.params)] * int(g.shape[0])
        return out

    def n_frames(self) -> list[int]:
        return [int(g.shape[1]) for g in self.groups for _ in range(int(g.shape[0]))]

    def materialize(self, device=None, dtype=None):
        """float32 ``[rows, C * T * p * p]`` on ``device`` (then cast to ``dtype``, as moving
        the processor's float32 output would)."""
        import torch

        out = []
        for g in self.groups:
            g = g.to(device, non_blocking=g.is_pinned()) if device is not None else g
            out.append(normalize(patchify(g, self.params), self.params))
        x = out[0] if len(out) == 1 else torch.cat(out)
        return x if dtype is None else x.to(dtype)

    def to(self, device=None, dtype=None):
        return self.materialize(device, dtype)


def clip_shape(clip) -> tuple[int, int, int, int]:
    """``(F, H, W, C)`` of a clip: an array/tensor or a list of frames (PIL images, arrays)."""
    if isinstance(clip, list | tuple):
        if not clip:
            raise ValueError("a clip needs at least one frame")
        f0 = clip[0]
        if hasattr(f0, "mode") and hasattr(f0, "size"):  # PIL
            if any(f.mode != "RGB" or f.size != f0.size for f in clip):
                raise ValueError("the frames of a clip must be RGB images of one size")
            return len(clip), f0.size[1], f0.size[0], 3
        shapes = {tuple(np.shape(f)) for f in clip}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise ValueError("the frames of a clip must be [H, W, 3] arrays of one size")
        return (len(clip), *next(iter(shapes)))
    shape = tuple(int(x) for x in clip.shape)
    if len(shape) != 4:
        raise ValueError(f"a clip must be [F, H, W, 3], got {shape}")
    return shape


def _gather(run: list, shape: tuple, pin: bool):
    """One uint8 tensor ``[len(run), F, H, W, C]`` from clips of one shape (one copy)."""
    import torch

    if all(isinstance(c, torch.Tensor) for c in run) and run[0].device.type != "cpu":
        return torch.stack([_as_uint8_tensor(c) for c in run])
    if len(run) == 1 and not pin and not isinstance(run[0], list | tuple):
        return _as_uint8_tensor(run[0]).unsqueeze(0)  # no copy
    buf = torch.empty((len(run), *shape), dtype=torch.uint8, pin_memory=pin)
    dst = buf.numpy()
    for b, c in enumerate(run):
        if isinstance(c, list | tuple):
            for j, f in enumerate(c):
                a = np.asarray(f)
                if a.dtype != np.uint8:
                    raise ValueError(f"frames must be uint8, got {a.dtype}")
                dst[b, j] = a
        else:
            buf[b] = _as_uint8_tensor(c)
    return buf


# ---------------------------------------------------------------- text
def expand_video_tokens(texts: Sequence[str], grids: Sequence, params: PrepParams) -> list[str]:
    """Each ``<|video_pad|>`` -> ``t * h * w / merge_size**2`` of them, the i-th placeholder of
    the batch (texts in order) for the i-th clip, as the processor expands them."""
    tok = params.video_token
    n = sum(t.count(tok) for t in texts)
    if n != len(grids):
        raise ValueError(f"the texts have {n} {tok} placeholders for {len(grids)} videos")
    it = iter(grids)
    merge = params.merge_size**2
    pattern = re.compile(re.escape(tok))

    def repl(_m):
        t, h, w = next(it)
        return tok * (int(t) * int(h) * int(w) // merge)

    return [pattern.sub(repl, t) for t in texts]


def conversation_frames(conversations: list) -> list | None:
    """The clips of every video of the conversations, in the order qwen-vl-utils finds them
    (each a ``[F, H, W, 3]`` uint8 array or the item's list of RGB PIL frames, not copied), or
    None when one is anything else (a path, an image item, a size to resize it to): the
    processor path handles those."""
    from PIL import Image

    convs = conversations
    if convs and isinstance(convs[0], dict):
        convs = [convs]
    out = []
    for conv in convs:
        for msg in conv:
            content = msg.get("content")
            if not isinstance(content, list):
                continue
            for item in content:
                if not isinstance(item, dict):
                    continue
                if "image" in item or "image_url" in item or item.get("type") == "image":
                    return None
                if "video" not in item and item.get("type") != "video":
                    continue
                video = item.get("video")
                if isinstance(video, list | tuple) and video:
                    pil = all(isinstance(f, Image.Image) for f in video)
                    arr = all(isinstance(f, np.ndarray) and f.dtype == np.uint8 for f in video)
                    if not (pil or arr):
                        return None
                    video = list(video)
                elif not (isinstance(video, np.ndarray) and video.dtype == np.uint8):
                    return None
                try:
                    f, h, w, c = clip_shape(video)
                except ValueError:
                    return None
                if c != 3 or (item.get("resized_height", h), item.get("resized_width", w)) != (
                    h,
                    w,
                ):
                    return None
                out.append(video)
    return out


def kept_by_qwen_vl_utils(height: int, width: int, params: PrepParams) -> bool:
    """Whether qwen-vl-utils (the processor path of ``VLM``) hands frames of this size to the
    processor unchanged. Its ``fetch_video`` resizes each frame twice: with PIL through
    ``fetch_image``, which it passes the merged-patch factor (28) as the *patch* size, so that
    step rounds to multiples of 2 x 28 = 56 (qwen-vl-utils 0.0.14), then back to multiples of
    28 with torchvision; both keep the frame only at its size, and only above its minimum."""
    try:
        from qwen_vl_utils.vision_process import SPATIAL_MERGE_SIZE, smart_resize
    except ImportError:  # the processor path needs it; without it only the factor matters
        return height % params.factor == 0 and width % params.factor == 0
    f = params.factor
    try:
        return all(
            tuple(smart_resize(height, width, factor=k)) == (height, width)
            for k in (f * SPATIAL_MERGE_SIZE, f)
        )
    except ValueError:  # an aspect ratio it refuses
        return False


# ---------------------------------------------------------------- the processor's output
def encode(processor, texts: Sequence[str], clips, params: PrepParams, pin: bool = False) -> dict:
    """What ``processor(text=texts, videos=clips, padding=True, return_tensors="pt",
    do_resize=False)`` returns, with ``pixel_values_videos`` a ``LazyVideoPixels`` (the CPU
    part: stack the uint8 frames, expand the placeholders, tokenise)."""
    import torch

    pixels = LazyVideoPixels.from_clips(clips, params, pin=pin)
    grids = pixels.grids()
    text = expand_video_tokens(list(texts), grids, params)
    out = dict(processor.tokenizer(text, padding=True, return_tensors="pt"))
    if params.mm_token_type_ids:
        mm = processor.create_mm_token_type_ids(out["input_ids"])
        out["mm_token_type_ids"] = torch.tensor(mm, dtype=out["input_ids"].dtype)
    out["pixel_values_videos"] = pixels
    out["video_grid_thw"] = torch.tensor(grids)
    if params.second_per_grid:
        out["second_per_grid_ts"] = torch.tensor(second_per_grid_ts(pixels.n_frames(), params))
    return out
