"""Batched window attention for the Qwen-VL vision towers.

Stock transformers runs the vision encoder's sdpa/eager attention once per window
(``cu_seqlens`` chunk): with 10 frames at 448x448 that is thousands of tiny attention calls per
clip, and the GPU waits on Python. The same maths as one call per layer: every window is
scattered into a padded ``[windows, heads, max_len, head_dim]`` batch, attended with a key mask
(none when all windows have the same length) and gathered back. Flash-attention-2 already runs
varlen in one call, so it is left alone.
"""

from __future__ import annotations

import sys
import types

import torch
import torch.nn.functional as F


def _rotary(module, q, k, rotary_pos_emb, position_embeddings):
    apply = sys.modules[type(module).__module__].apply_rotary_pos_emb_vision
    if position_embeddings is None:  # transformers < 4.54 passed the raw frequencies
        emb = torch.cat((rotary_pos_emb, rotary_pos_emb), dim=-1)
        position_embeddings = (emb.cos(), emb.sin())
    cos, sin = position_embeddings
    return apply(q, k, cos, sin)


def windowed_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, scale: float
) -> torch.Tensor:
    """Block-diagonal attention over ``[S, heads, dim]`` tensors in one sdpa call."""
    s, h, d = q.shape
    cu = cu_seqlens.to(q.device, torch.long)
    lengths = cu[1:] - cu[:-1]
    keep = lengths > 0
    cu_start, lengths = cu[:-1][keep], lengths[keep]
    n_win = int(lengths.numel())
    max_len = int(lengths.max())
    win = torch.repeat_interleave(torch.arange(n_win, device=q.device), lengths)
    off = torch.arange(s, device=q.device) - cu_start[win]
    uniform = bool((lengths == max_len).all())

    def pack(x):
        if uniform:
            return x.reshape(n_win, max_len, h, d).transpose(1, 2)
        buf = x.new_zeros(n_win, max_len, h, d)
        buf[win, off] = x
        return buf.transpose(1, 2)

    mask = None
    if not uniform:
        mask = (torch.arange(max_len, device=q.device)[None, :] < lengths[:, None])[:, None, None]
    out = F.scaled_dot_product_attention(pack(q), pack(k), pack(v), attn_mask=mask, scale=scale)
    out = out.transpose(1, 2)  # [windows, max_len, heads, dim]
    return out.reshape(s, h, d) if uniform else out[win, off]


def _fast_forward(
    self,
    hidden_states: torch.Tensor,
    cu_seqlens: torch.Tensor,
    rotary_pos_emb: torch.Tensor | None = None,
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    **kwargs,
) -> torch.Tensor:
    s = hidden_states.shape[0]
    q, k, v = self.qkv(hidden_states).reshape(s, 3, self.num_heads, -1).permute(1, 0, 2, 3)
    q, k = _rotary(self, q, k, rotary_pos_emb, position_embeddings)
    out = windowed_attention(q, k.to(q.dtype), v.to(q.dtype), cu_seqlens, self.scaling)
    return self.proj(out.reshape(s, -1).contiguous())


def _vision_attentions(model) -> list:
    return [
        m
        for m in model.modules()
        if type(m).__name__.endswith("VisionAttention")
        and hasattr(m, "qkv")
        and hasattr(m, "proj")
        and hasattr(m, "num_heads")
    ]


def enable_fast_vision_attention(model) -> int:
    """Swap batched window attention into every vision attention module; returns how many.

    A no-op (returns 0) for flash-attention-2 models, which already attend all windows at once.
    """
    n = 0
    for m in _vision_attentions(model):
        impl = getattr(getattr(m, "config", None), "_attn_implementation", None) or "sdpa"
        if "flash" in impl:
            continue
        if not hasattr(m, "scaling"):
            m.scaling = (m.qkv.in_features // m.num_heads) ** -0.5
        m.forward = types.MethodType(_fast_forward, m)
        n += 1
    return n


def disable_fast_vision_attention(model) -> int:
    """Restore the stock transformers forward; returns how many modules were restored."""
    n = 0
    for m in _vision_attentions(model):
        if "forward" in m.__dict__:
            del m.forward
            n += 1
    return n
