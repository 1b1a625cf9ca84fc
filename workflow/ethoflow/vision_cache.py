"""Each clip's vision encoding computed once per process, shared by embed, describe and ICL.

The Qwen-VL vision tower turns a video's patches into merged visual tokens, independently of
the text around it and of the other videos in the batch (its attention never crosses a
video, or even a frame group). ``VisionCache`` wraps the tower's ``forward``: the caller names
the videos of the next model call (``with cache.keys([...])``, one key per video in the order
of ``grid_thw``), videos already encoded come from the cache, only the others run through the
tower, and the result is assembled in the original order. A model call without keys runs the
tower as usual. The cache holds the merged tokens on the CPU, least recently used first out,
up to ``max_bytes``.

Keys name a clip by its file and place (``clip_keys``): path, size and modification time of
the clips h5, and the clip's index, so a recut file never hits an old entry.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence

log = logging.getLogger(__name__)


def clip_keys(path: str | os.PathLike, n: int) -> list[tuple]:
    """Cache keys of the ``n`` clips of one clips h5 (or ICL exemplars h5)."""
    st = os.stat(path)
    ident = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    return [(*ident, i) for i in range(n)]


class VisionCache:
    """Memoised vision tower of one loaded Qwen-VL model (see the module docstring)."""

    def __init__(self, model, max_bytes: int = 4 << 30):
        base = getattr(model, "model", model)
        visual = getattr(base, "visual", None) or getattr(model, "visual", None)
        if visual is None:
            raise ValueError(f"{type(model).__name__} has no vision tower (.visual)")
        self.visual = visual
        self.merge = int(getattr(visual, "spatial_merge_size", 2))
        self.max_bytes = int(max_bytes)
        self.store: OrderedDict[Hashable, object] = OrderedDict()
        self.bytes = 0
        self.encoded = 0  # videos run through the tower
        self.cached = 0  # videos served from the cache
        self.enabled = True
        self._kind = "tensor"  # what the tower returns: a tensor, or an output with pooler_output
        self._keys: list | None = None
        self._forward = visual.forward
        visual.forward = self._cached_forward

    @contextlib.contextmanager
    def keys(self, keys: Sequence[Hashable] | None) -> Iterator[None]:
        """Name the videos of the model calls inside the block (``None``: no caching)."""
        saved, self._keys = self._keys, (list(keys) if keys is not None else None)
        try:
            yield
        finally:
            self._keys = saved

    def stats(self) -> dict:
        return {"vision_encoded": self.encoded, "vision_cached": self.cached}

    # ------------------------------------------------------------------ internals
    def _cached_forward(self, hidden_states, grid_thw=None, *args, **kwargs):
        keys = self._keys
        if grid_thw is None or not self.enabled or keys is None or len(keys) != len(grid_thw):
            self.encoded += 0 if grid_thw is None else len(grid_thw)
            return self._forward(hidden_states, grid_thw, *args, **kwargs)
        import torch

        rows_in = grid_thw.prod(-1).tolist()
        starts = [0, *itertools.accumulate(rows_in)]
        todo: dict[Hashable, int] = {}  # key -> its first video in this call
        for i, k in enumerate(keys):
            if k not in self.store and k not in todo:
                todo[k] = i
        if todo:
            idx = list(todo.values())
            sub = torch.cat([hidden_states[starts[i] : starts[i + 1]] for i in idx])
            out = self._forward(sub, grid_thw[idx], *args, **kwargs)
            merged = self._merged(out)
            if merged is None:  # an output this cache does not know how to split: stop caching
                log.warning("vision cache disabled: the tower returns %s", type(out).__name__)
                self.enabled = False
                self.encoded += len(keys)
                return self._forward(hidden_states, grid_thw, *args, **kwargs)
            sizes = [rows_in[i] // self.merge**2 for i in idx]
            fresh = dict(zip(todo, torch.split(merged, sizes), strict=True))
            self.encoded += len(todo)
        else:
            fresh = {}
        self.cached += len(keys) - len(todo)
        device = hidden_states.device
        parts = []
        for k in keys:
            if k in fresh:
                parts.append(fresh[k])
            else:
                self.store.move_to_end(k)
                parts.append(self.store[k].to(device))
        for k, part in fresh.items():
            self._put(k, part)
        return self._wrap(torch.cat(parts))

    def _merged(self, out):
        import torch

        if isinstance(out, torch.Tensor):
            self._kind = "tensor"
            return out
        pooled = getattr(out, "pooler_output", None)
        fields = getattr(out, "keys", list)()
        # the tower's own hidden states (asked for with output_hidden_states) are not used by
        # the language model; any other field (Qwen3-VL's deepstack features) is not cached
        extra = [
            k
            for k in fields
            if k not in ("last_hidden_state", "pooler_output", "hidden_states", "attentions")
        ]
        if isinstance(pooled, torch.Tensor) and not extra:
            self._kind = "pooled"
            return pooled
        return None

    def _wrap(self, merged):
        if self._kind == "tensor":
            return merged
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(last_hidden_state=None, pooler_output=merged)

    def _put(self, key: Hashable, part) -> None:
        part = part.detach().to("cpu", copy=True)
        size = part.numel() * part.element_size()
        if size > self.max_bytes:
            return
        self.store[key] = part
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self.store.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()
