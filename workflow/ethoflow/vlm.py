"""Stage 2: a Qwen-VL video language model through transformers and qwen-vl-utils.

One ``VLM`` object holds the model and its processor, loaded once per process (a job, or
the allocation's model server: ``vlm_server``) from a hub id (the
Hugging Face cache; set ``HF_HUB_OFFLINE=1`` on nodes without internet) or a local
``save_pretrained`` directory. Qwen2-VL, Qwen2.5-VL and Qwen3-VL load through
``AutoModelForImageTextToText``. On CUDA the model runs in bf16 with sdpa attention
(flash-attention-2 when installed and asked for); on CPU in float32.

- ``embed``: hidden states of one layer, pooled over the video tokens (or all tokens, or the
  last token), one vector per clip, several clips per forward pass;
- ``describe``: the generated answer to a prompt, batched, greedy;
- ``score_labels``: the log-likelihood of every candidate label as the answer, after the
  behavior definitions and labelled exemplar clips in context (fine-tuning-free ICL).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

POOLINGS = ("video_mean", "all_mean", "last")
KEYS = "ethoflow_video_keys"  # a batch's vision-cache keys, taken off before the model call


def _is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


class VLM:
    """A loaded Qwen-VL model with its processor and provenance."""

    def __init__(self, model, processor, meta: dict, device, dtype, gpu_preprocess="auto"):
        from .video_prep import params_from_processor

        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype
        # video preprocessing on the model's device (video_prep): auto = for the model types it
        # reproduces exactly (Qwen2-VL, Qwen2.5-VL), true = also for frames qwen-vl-utils would
        # resize (an error unless multiples of the patch grid), false = the processor on the CPU
        mode = str(gpu_preprocess).lower()
        if mode not in ("auto", "true", "false"):
            raise ValueError(f"gpu_preprocess must be auto, true or false, got {gpu_preprocess!r}")
        self.gpu_preprocess = mode
        self._prep = (
            None if mode == "false" else params_from_processor(processor, meta.get("model_type"))
        )
        if self._prep is None and mode == "true":
            log.warning("GPU video preprocessing does not support this model: the processor")
        self._prep_warned = False
        self.meta = {**meta, "gpu_preprocess": self._prep is not None}
        tok = processor.tokenizer
        tok.padding_side = "left"
        self.video_token_id = model.config.video_token_id
        self.eos_ids = {tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id}
        self.eos_ids.discard(None)
        self.vision = None  # a VisionCache (``share_vision``): clips encoded once per process
        # frames per second of the clips' sampled frames: Qwen2.5-VL's time positions
        # (second_per_grid_ts); the tasks set it from the clips h5 (attr fps_out)
        self.video_fps = 2.0

    def share_vision(self, max_bytes: int = 4 << 30) -> None:
        """Keep every named clip's vision encoding for later calls (``vision_cache``)."""
        from .vision_cache import VisionCache

        if self.vision is None:
            self.vision = VisionCache(self.model, max_bytes)

    def _named(self, inputs, keys, lo: int = 0, hi: int | None = None):
        """Attach the cache keys ``keys[lo:hi]`` of a batch's videos (in their order) to it."""
        if keys is not None and self.vision is not None:
            inputs[KEYS] = list(keys[lo:hi])
        return inputs

    def _vision_keys(self, keys):
        """The block's model calls use these cache keys (``None``: no caching)."""
        return contextlib.nullcontext() if self.vision is None else self.vision.keys(keys)

    def _vision_scope(self, inputs):
        """Take the cache keys off a batch; the block's model calls use them."""
        return self._vision_keys(inputs.pop(KEYS, None))

    # ------------------------------------------------------------ inputs
    def _messages(self, clip: np.ndarray, prompt: str, exemplars=None, answer=None) -> list:
        """A chat: optional exemplar turns (video + prompt -> label), then the clip."""
        msgs = []
        for frames, label in exemplars or []:
            msgs.append({"role": "user", "content": [_text(prompt), _video_item(frames)]})
            msgs.append({"role": "assistant", "content": [_text(label)]})
        # the prompt comes before the video: with causal attention the video tokens then
        # see the question, so video-token pooling gives a prompt-conditioned embedding
        msgs.append({"role": "user", "content": [_text(prompt), _video_item(clip)]})
        if answer is not None:
            msgs.append({"role": "assistant", "content": [_text(answer)]})
        return msgs

    def _inputs(self, conversations: list[list], suffixes: list[str] | None = None):
        """Tokenise conversations with their videos (qwen-vl-utils) into model inputs."""
        texts = [
            self.processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]
        if suffixes is not None:
            texts = [t + s for t, s in zip(texts, suffixes, strict=True)]
        return self._encode(texts, conversations)

    def _encode(self, texts: list[str], conversations: list[list]):
        """Tokenise ready texts with the videos of ``conversations`` (in order)."""
        if self._prep is not None:  # uint8 frames and text only: pixels on self.device later
            from .video_prep import clip_shape, conversation_frames, encode, kept_by_qwen_vl_utils

            clips = conversation_frames(conversations)
            if clips:
                sizes = {clip_shape(c)[1:3] for c in clips}
                kept = all(kept_by_qwen_vl_utils(h, w, self._prep) for h, w in sizes)
                if kept or self.gpu_preprocess == "true":
                    pin = getattr(self.device, "type", str(self.device)) == "cuda"
                    return self._timed(encode(self.processor, texts, clips, self._prep, pin=pin))
                if not self._prep_warned:
                    self._prep_warned = True
                    log.warning(
                        "clip frames %s are resized by qwen-vl-utils: CPU preprocessing",
                        ", ".join(f"{h}x{w}" for h, w in sorted(sizes)),
                    )
        from qwen_vl_utils import process_vision_info

        _, videos, kwargs = process_vision_info(conversations, return_video_kwargs=True)
        if not videos:
            return self.processor(text=texts, padding=True, return_tensors="pt")
        kwargs = {k: v for k, v in (kwargs or {}).items() if k == "fps"}
        if isinstance(kwargs.get("fps"), list | tuple):  # one clip rate per job
            kwargs["fps"] = float(kwargs["fps"][0])
        out = self.processor(
            text=texts,
            videos=videos,
            padding=True,
            return_tensors="pt",
            do_resize=False,
            **kwargs,
        )
        return self._timed(out)

    def _timed(self, inputs):
        """Seconds per temporal grid step from the clips' real frame rate. Transformers 5
        derives it from video metadata, which a list of frames lacks (it assumes 24 fps: 2/24 s
        a step, and Qwen2.5-VL's integer time positions then collapse to 0 for the first
        dozen frames); transformers 4 took it from the fps the processor was given."""
        if "second_per_grid_ts" in inputs:
            import torch

            step = self.processor.video_processor.temporal_patch_size / float(self.video_fps)
            old = inputs["second_per_grid_ts"]
            inputs["second_per_grid_ts"] = torch.full((len(old),), step, dtype=torch.float32)
        return inputs

    def _to_device(self, inputs):
        out = {}
        from .video_prep import LazyVideoPixels

        for k, v in inputs.items():
            if isinstance(v, LazyVideoPixels):  # normalize + patchify on the device
                v = v.materialize(self.device, self.dtype)
            elif hasattr(v, "to"):
                v = v.to(self.device)
                if v.is_floating_point():
                    v = v.to(self.dtype)
            out[k] = v
        return out

    # ------------------------------------------------------------ embed
    def embed(
        self,
        frames: np.ndarray,
        prompt: str,
        pooling: str = "video_mean",
        layer: int = -1,
        batch_size: int = 4,
        progress: bool = False,
        keys: list | None = None,
    ) -> np.ndarray:
        """One pooled hidden-state vector per clip: ``frames [N,F,H,W,3] uint8 -> [N,D] f4``.

        ``keys`` (one per clip, ``vision_cache.clip_keys``) share the clips' vision encodings
        with later calls when ``share_vision`` is on."""
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        n = len(frames)
        out = np.zeros((n, self.model.config.text_config.hidden_size), np.float32)
        if n == 0:
            return out

        def make(lo: int, hi: int):
            inputs = self._inputs([self._messages(frames[i], prompt) for i in range(lo, hi)])
            return self._named(inputs, keys, lo, hi)

        for lo, hi, vec in self._batched(n, batch_size, make, self._pool(pooling, layer), progress):
            out[lo:hi] = vec
        return out

    def _pool(self, pooling: str, layer: int) -> Callable:
        import torch

        @torch.inference_mode()
        def run(inputs):
            # the base model (no lm_head): vocabulary logits for every position are wasted here
            net = getattr(self.model, "model", None)
            net = net if net is not None and hasattr(net, "language_model") else self.model
            with self._vision_scope(inputs):
                res = net(**self._to_device(inputs), output_hidden_states=True)
            h = res.hidden_states[layer].float()  # [B, L, D]
            ids = inputs["input_ids"].to(h.device)
            att = inputs["attention_mask"].to(h.device).bool()
            if pooling == "last":  # left padding: the last position is every row's last token
                return h[:, -1].cpu().numpy()
            mask = (ids == self.video_token_id) if pooling == "video_mean" else att
            mask = mask & att
            w = mask.unsqueeze(-1).float()
            return ((h * w).sum(1) / w.sum(1).clamp(min=1)).cpu().numpy()

        return run

    def _batched(
        self, n: int, batch_size: int, make: Callable, run: Callable, progress: bool
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Preprocess the next batch on a CPU thread while the model runs on this one;
        halve the batch on CUDA out-of-memory."""
        from tqdm import tqdm

        bs = max(1, int(batch_size))
        bar = tqdm(total=n, disable=not progress, desc="vlm", unit="clip")
        lo = 0
        while lo < n:
            ranges = []
            s = lo
            while s < n:
                ranges.append((s, min(n, s + bs)))
                s += bs
            try:
                for (a, b), inputs in _prefetch(ranges, make):
                    result = run(inputs)
                    yield a, b, result
                    bar.update(b - a)
                    lo = b
            except Exception as err:
                if not _is_oom(err) or bs == 1:
                    raise
                import torch

                torch.cuda.empty_cache()
                bs = max(1, bs // 2)
                log.warning("CUDA out of memory: batch size halved to %d", bs)
        bar.close()

    # ------------------------------------------------------------ describe
    def describe(
        self,
        frames: np.ndarray,
        prompt: str,
        max_new_tokens: int = 32,
        batch_size: int = 4,
        keys: list | None = None,
    ) -> list[dict]:
        """The model's greedy answer for every clip, with token count and seconds."""
        import torch

        answers: list[dict] = []
        if len(frames) == 0:
            return answers
        tok = self.processor.tokenizer

        @torch.inference_mode()
        def run(inputs):
            t0 = time.perf_counter()
            with self._vision_scope(inputs):
                gen = self.model.generate(
                    **self._to_device(inputs),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                )
            new = gen[:, inputs["input_ids"].shape[1] :].cpu().numpy()
            secs = (time.perf_counter() - t0) / len(new)
            rows = []
            for seq in new:
                ends = [i for i, t in enumerate(seq) if t in self.eos_ids]
                seq = seq[: ends[0]] if ends else seq
                rows.append(
                    {
                        "text": tok.decode(seq, skip_special_tokens=True).strip(),
                        "n_tokens": int(len(seq)) or 1,
                        "seconds": secs,
                    }
                )
            return rows

        def make(lo, hi):
            inputs = self._inputs([self._messages(frames[i], prompt) for i in range(lo, hi)])
            return self._named(inputs, keys, lo, hi)

        for _, _, rows in self._batched(len(frames), batch_size, make, run, False):
            answers.extend(rows)
        return answers

    # ------------------------------------------------------------ in-context labels
    def score_labels(
        self,
        frames: np.ndarray,
        prompt: str,
        candidates: list[str],
        exemplars: list[tuple[np.ndarray, str]] | None = None,
        batch_size: int = 4,
        cached: bool = True,
        keys: list | None = None,
        exemplar_keys: list | None = None,
    ) -> np.ndarray:
        """Log-likelihood of each candidate label as the answer: ``[N, C] f4``.

        The conversation shows every exemplar clip with its label as earlier turns, then the
        clip; each candidate (followed by the end-of-turn token) is scored as the answer, so
        every clip maps onto exactly one label and rare labels stay reachable.

        ``cached`` (the default) runs the part shared by every clip (system turn, exemplar
        turns with their videos, the prompt of the last turn) once, keeps its key-value cache,
        runs each clip's video and the answer header once on a copy of it, and scores all
        candidates together from that state: E + 1 video encodings per job of N clips
        (E exemplars, one per clip after the first E) instead of (E + 1) x C per clip.
        ``cached=False`` runs the full conversation once per candidate (the reference; same
        scores up to float rounding, see ``tests/unit/test_vlm.py``).
        ``keys`` and ``exemplar_keys`` name the clips' and exemplars' videos for the vision
        cache (``share_vision``); both or neither.
        """
        if keys is None or exemplar_keys is None or len(exemplar_keys) != len(exemplars or []):
            keys = exemplar_keys = None
        n_c = len(candidates)
        if len(frames) == 0 or n_c == 0:
            return np.zeros((len(frames), n_c), np.float32)
        if cached:
            scorer = _CachedScorer.build(self, frames[0], prompt, candidates, exemplars)
            if scorer is not None:
                if keys is not None:
                    self._named(scorer.prefix, exemplar_keys)
                return scorer.score(frames, batch_size, keys)
            log.warning("the cached prefix does not tokenise like the conversation: full path")
        return self._score_labels_full(
            frames, prompt, candidates, exemplars, batch_size, keys, exemplar_keys
        )

    def _score_labels_full(
        self, frames, prompt, candidates, exemplars, batch_size, keys=None, exemplar_keys=None
    ) -> np.ndarray:
        """The reference: the whole conversation once per clip and candidate."""
        import torch

        tok = self.processor.tokenizer
        end = "<|im_end|>"
        n_ans = [len(tok(c + end, add_special_tokens=False)["input_ids"]) for c in candidates]
        n_c = len(candidates)
        scores = np.zeros((len(frames), n_c), np.float32)
        per = max(1, int(batch_size) // n_c) if batch_size >= n_c else 1

        def make(lo, hi):
            convs, suffixes, names = [], [], []
            for i in range(lo, hi):
                for c in candidates:
                    convs.append(self._messages(frames[i], prompt, exemplars))
                    suffixes.append(c + end)
                    if keys is not None:
                        names += [*exemplar_keys, keys[i]]
            return self._named(self._inputs(convs, suffixes), names if keys is not None else None)

        @torch.inference_mode()
        def run(inputs):
            with self._vision_scope(inputs):
                logits = self.model(**self._to_device(inputs)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], -1)
            target = inputs["input_ids"][:, 1:].to(logp.device)
            tok_lp = logp.gather(-1, target.unsqueeze(-1))[..., 0]  # [B, L-1]
            rows = []
            for b in range(tok_lp.shape[0]):
                k = n_ans[b % n_c]
                rows.append(float(tok_lp[b, -k:].sum()))
            return np.asarray(rows, np.float32).reshape(-1, n_c)

        for lo, hi, s in self._batched(len(frames), per, make, run, False):
            scores[lo:hi] = s
        return scores


class _CachedScorer:
    """Label scoring from a key-value cache of the shared prefix (``VLM.score_labels``).

    The conversation's text is cut just before the clip's video (the last vision-start
    token): the prefix (system turn, exemplar turns and their videos, the prompt of the last
    turn) is the same for every clip of the job and runs once; the rest (the clip's video, the
    end of the turn and the answer header) runs per clip on a copy of the prefix cache. The
    candidates' tokens ride in the same forward, packed after the clip's tokens in its row, a
    4-D attention mask keeping each candidate blind to the others (``_packed``); with
    flash-attention-2, which takes no such mask, they run in a second forward on the clip's
    cache repeated once per candidate (``_repeated``).

    Qwen-VL's multimodal rope positions depend on the videos before a token, so positions are
    not left to the model (which would restart them at the cache length): they come from the
    model's own ``get_rope_index`` over the whole sequence (prefix + clip), sliced to the new
    tokens, and the candidates continue the clip's last text position.
    """

    PACKED: bool | None = None  # None: packed unless flash-attention (tests force either)

    def __init__(self, vlm, prompt, candidates, exemplars, cut, prefix):
        self.vlm = vlm
        self.prompt = prompt
        self.exemplars = exemplars
        self.cut = cut  # the clip's part of the conversation text
        self.prefix = prefix  # processor output of the prefix (CPU)
        tok = vlm.processor.tokenizer
        end = "<|im_end|>"
        self.cand = [tok(c + end, add_special_tokens=False)["input_ids"] for c in candidates]
        self.n_c = len(candidates)
        self.cache = None
        net = vlm.model
        self.base = getattr(net, "model", net)  # has get_rope_index
        fwd = inspect.signature(net.forward).parameters
        self.cache_kw = "cache" if "cache" in fwd else "past_key_values"
        self.keep = "logits_to_keep" in fwd
        self.rope_kw = set(inspect.signature(self.base.get_rope_index).parameters)
        # candidates packed in one row need a 4-D mask, which flash-attention-2 cannot take
        attn = getattr(net.config, "_attn_implementation", None) or vlm.meta.get("attn", "")
        self.packed = "flash" not in str(attn) if self.PACKED is None else self.PACKED

    @classmethod
    def build(cls, vlm, clip0, prompt, candidates, exemplars):
        """The scorer, or None when prefix + clip do not tokenise as the whole conversation."""
        import torch

        exemplars = list(exemplars or [])
        conv = vlm._messages(clip0, prompt, exemplars)
        text = vlm.processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        tok = vlm.processor.tokenizer
        start = tok.convert_ids_to_tokens(int(vlm.model.config.vision_start_token_id))
        k = text.rfind(start)
        if k < 0:
            return None
        prefix = vlm._encode([text[:k]], [conv[:-1]])
        self = cls(vlm, prompt, candidates, exemplars, text[k:], prefix)
        # the check, once per job: the pieces tokenise exactly like the whole conversation
        whole = vlm._inputs([conv])["input_ids"]
        parts = torch.cat([prefix["input_ids"], self._clip_inputs([clip0])["input_ids"]], 1)
        return self if torch.equal(whole, parts) else None

    def _clip_inputs(self, clips):
        convs = [[{"role": "user", "content": [_video_item(c)]}] for c in clips]
        return self.vlm._encode([self.cut] * len(clips), convs)

    def _positions(self, clip):
        """Rope positions ``[3, B, L_clip]`` of the clip tokens after the prefix."""
        import torch

        pre, n = self.prefix, clip["input_ids"].shape[0]
        lp = pre["input_ids"].shape[1]
        ids = torch.cat([pre["input_ids"].expand(n, -1), clip["input_ids"]], 1)
        kw = {"input_ids": ids, "attention_mask": None, "image_grid_thw": None}
        if "mm_token_type_ids" in clip:
            mm = pre.get("mm_token_type_ids")
            mm = torch.zeros_like(pre["input_ids"]) if mm is None else mm
            kw["mm_token_type_ids"] = torch.cat([mm.expand(n, -1), clip["mm_token_type_ids"]], 1)
        for key in ("video_grid_thw", "second_per_grid_ts"):
            if key in clip:  # rows of the batch in order: the prefix's videos, then the clip's
                own = clip[key].reshape(n, -1, *clip[key].shape[1:])
                shared = pre.get(key)
                rows = [own[b] if shared is None else torch.cat([shared, own[b]]) for b in range(n)]
                kw[key] = torch.cat(rows)
        kw = {k: v for k, v in kw.items() if k in self.rope_kw}
        pos, _ = self.base.get_rope_index(**kw)
        return pos[:, :, lp:], pos[:, :1, :lp]

    def _forward(self, inputs: dict, positions, cache, keep: int = 1, mask=None):
        """One forward on ``cache`` (grown in place or replaced): logits of the last ``keep``
        positions (0: all) and the cache."""
        names = inputs.get(KEYS)
        args = {k: v for k, v in inputs.items() if k not in ("attention_mask", KEYS)}
        args = self.vlm._to_device(args)
        args["position_ids"] = positions.to(self.vlm.device)
        if mask is not None:
            args["attention_mask"] = mask.to(self.vlm.device)
        args[self.cache_kw] = cache
        args["use_cache"] = True
        if self.keep and keep:  # vocabulary logits of the positions scored only
            args["logits_to_keep"] = keep
        with self.vlm._vision_keys(names):
            out = self.vlm.model(**args)
        new = getattr(out, "cache", None)
        return out.logits.float(), out.past_key_values if new is None else new

    def _prefix_cache(self, first_clip: dict):  # under inference_mode (``score``)
        """Run the prefix once (the first call), keep its cache."""
        from transformers import DynamicCache

        if self.cache is None:
            _, pos = self._positions(first_clip)
            cache = DynamicCache(config=self.vlm.model.config)
            _, self.cache = self._forward(dict(self.prefix), pos, cache)
        return self.cache

    def score(self, frames: np.ndarray, batch_size: int, keys: list | None = None) -> np.ndarray:
        scores = np.zeros((len(frames), self.n_c), np.float32)
        # packed: one row per clip, its memory is the clip's; repeated: one row per candidate
        bs = max(1, int(batch_size))
        per = bs if self.packed else max(1, bs // self.n_c)

        def make(lo, hi):
            named = self.vlm._named
            inputs = self._clip_inputs([frames[i] for i in range(lo, hi)])
            if not bool(inputs["attention_mask"].bool().all()):  # clips of unequal token counts
                one = [self._clip_inputs([frames[i]]) for i in range(lo, hi)]
                return [named(x, keys, i, i + 1) for i, x in zip(range(lo, hi), one, strict=True)]
            return [named(inputs, keys, lo, hi)]

        def run(groups):
            return np.concatenate([self._score_group(g) for g in groups])

        for lo, hi, s in self.vlm._batched(len(frames), per, make, run, False):
            scores[lo:hi] = s
        return scores

    def _score_group(self, clip: dict) -> np.ndarray:
        """Scores ``[B, C]`` of a batch of clips of equal token counts."""
        import torch

        with torch.inference_mode():
            b = clip["input_ids"].shape[0]
            pos, _ = self._positions(clip)
            cache = copy.deepcopy(self._prefix_cache(clip))
            if b > 1:
                cache.batch_repeat_interleave(b)
            if self.packed:
                return self._packed(clip, pos, cache)
            return self._repeated(clip, pos, cache)

    def _packed(self, clip: dict, pos, cache) -> np.ndarray:
        """One forward: the clip's tokens, then every candidate's tokens (but its last) as
        separate blocks of the same row; a 4-D mask lets each block see the prefix, the clip
        and its own earlier tokens only, and its positions continue from the clip's last."""
        import torch

        b, ls = clip["input_ids"].shape
        lp = self.cache.get_seq_length()
        blocks = [c[:-1] for c in self.cand]
        tail = torch.tensor([t for bl in blocks for t in bl], dtype=torch.long)
        n_t = len(tail)
        block = torch.tensor([j for j, bl in enumerate(blocks) for _ in bl], dtype=torch.long)
        step = torch.tensor([t + 1 for bl in blocks for t in range(len(bl))], dtype=torch.long)
        q = ls + n_t
        allowed = torch.zeros(q, lp + q, dtype=torch.bool)
        allowed[:, :lp] = True
        allowed[:ls, lp : lp + ls] = torch.ones(ls, ls, dtype=torch.bool).tril()
        allowed[ls:, lp : lp + ls] = True
        same = (block[:, None] == block[None, :]) & (step[None, :] <= step[:, None])
        allowed[ls:, lp + ls :] = same
        dtype = self.vlm.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        inputs = dict(clip)
        inputs["input_ids"] = torch.cat([clip["input_ids"], tail.expand(b, -1)], 1)
        if "mm_token_type_ids" in clip:
            zeros = torch.zeros(b, n_t, dtype=clip["mm_token_type_ids"].dtype)
            inputs["mm_token_type_ids"] = torch.cat([clip["mm_token_type_ids"], zeros], 1)
        positions = torch.cat([pos, pos[:, :, -1:] + step], 2)
        logits, _ = self._forward(
            inputs, positions, cache, keep=n_t + 1, mask=mask.expand(b, 1, -1, -1)
        )
        logp = torch.log_softmax(logits[:, -(n_t + 1) :], -1).cpu()  # [B, 1 + T, V]
        first = torch.tensor([c[0] for c in self.cand])
        total = logp[:, 0, first]  # [B, C]: each candidate's first token, after the clip
        if n_t:
            target = torch.tensor([t for c in self.cand for t in c[1:]], dtype=torch.long)
            tok = logp[:, 1:].gather(-1, target.expand(b, -1).unsqueeze(-1))[..., 0]  # [B, T]
            total = total.index_add(1, block, tok)
        return total.numpy().astype(np.float32)

    def _repeated(self, clip: dict, pos, cache) -> np.ndarray:
        """Two forwards (for attention kernels without arbitrary masks: flash-attention-2):
        the clip, then the candidates on the clip's cache repeated once per candidate."""
        import torch

        b = clip["input_ids"].shape[0]
        n_c = self.n_c
        k_max = max(len(c) for c in self.cand)
        pad = self.vlm.processor.tokenizer.pad_token_id or 0
        cand = torch.full((n_c, k_max), pad, dtype=torch.long)
        for j, c in enumerate(self.cand):
            cand[j, : len(c)] = torch.tensor(c)
        logits, cache = self._forward(clip, pos, cache)
        first = torch.tensor([c[0] for c in self.cand])
        total = torch.log_softmax(logits[:, -1], -1).cpu()[:, first]  # [B, C]
        if k_max > 1:
            cache.batch_repeat_interleave(n_c)  # row b * C + j: clip b, candidate j
            cpos = pos[:, :, -1:] + torch.arange(1, k_max)  # text positions go on one by one
            ids = cand[:, :-1].repeat(b, 1)
            logits, _ = self._forward(
                {"input_ids": ids}, cpos.repeat_interleave(n_c, 1), cache, keep=0
            )
            logp = torch.log_softmax(logits, -1).cpu()  # [B*C, K-1, V]
            tok = logp.gather(-1, cand[:, 1:].repeat(b, 1).unsqueeze(-1))[..., 0]  # [B*C, K-1]
            lens = torch.tensor([len(c) for c in self.cand]).repeat(b)
            valid = torch.arange(1, k_max)[None, :] < lens[:, None]
            total = total + (tok * valid).sum(1).reshape(b, n_c)
        return total.numpy().astype(np.float32)


def _video_item(frames: np.ndarray) -> dict:
    from PIL import Image

    h, w = frames.shape[1:3]
    return {
        "type": "video",
        "video": [Image.fromarray(f) for f in frames],
        "resized_height": int(h),
        "resized_width": int(w),
    }


def _text(t: str) -> dict:
    return {"type": "text", "text": t}


def _is_oom(err: Exception) -> bool:
    try:
        import torch

        return isinstance(err, torch.cuda.OutOfMemoryError)
    except (ImportError, AttributeError):
        return False


def _prefetch(ranges: list[tuple[int, int]], make: Callable, depth: int = 2):
    """Yield ``(range, make(*range))`` with preprocessing one step ahead on a thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for r in ranges:
                if stop.is_set():
                    return
                q.put((r, make(*r), None))
        except Exception as err:  # handed to the consumer
            q.put((None, None, err))
        q.put(None)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            r, inputs, err = item
            if err is not None:
                raise err
            yield r, inputs
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(timeout=0.05)


def auto_dtype(dev):
    """bfloat16 on GPUs that compute in it natively (compute capability 8.0 and up: A40, A100,
    H100), float16 on older ones (V100, the Great Lakes `gpu` partition), float32 on CPU."""
    import torch

    if dev.type != "cuda":
        return torch.float32
    major, _ = torch.cuda.get_device_capability(dev)
    return torch.bfloat16 if major >= 8 else torch.float16


def load_vlm(
    model: str,
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    attn: str = "sdpa",
    fast_vision: bool = True,
    gpu_preprocess: str | bool = "auto",
) -> VLM:
    """Load a Qwen-VL checkpoint by hub id or local directory (once per process).

    ``fast_vision`` swaps the vision tower's per-window attention loop for one batched call per
    layer (same maths, see ``fast_vision``); ignored with flash-attention-2.
    ``gpu_preprocess`` (auto | true | false, config ``vlm.gpu_preprocess``): normalize and
    patchify the clips on the model's device instead of the processor on the CPU (the same
    values, see ``video_prep``); auto: for Qwen2-VL and Qwen2.5-VL.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .errors import InputError

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    torch_dtype = auto_dtype(dev) if dtype == "auto" else getattr(torch, dtype)
    if attn == "flash_attention_2":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            log.warning("flash-attn is not installed: using sdpa")
            attn = "sdpa"
        if dev.type != "cuda":
            attn = "sdpa"
    local = _is_local(model)
    kwargs = {"revision": revision} if revision and not local else {}
    if os.environ.get("HF_HUB_OFFLINE") == "1" or local:
        kwargs["local_files_only"] = True
    try:
        processor = AutoProcessor.from_pretrained(model, **kwargs)
        net = AutoModelForImageTextToText.from_pretrained(
            model, dtype=torch_dtype, attn_implementation=attn, **kwargs
        )
    except (OSError, ValueError) as err:
        raise InputError(model, f"cannot load the VLM ({str(err).splitlines()[0]})") from err
    net.to(dev).eval()
    n_fast = 0
    if fast_vision:
        from .fast_vision import enable_fast_vision_attention

        n_fast = enable_fast_vision_attention(net)
    demo = Path(model) / "ethoflow_demo.json" if local else None
    meta = {
        "model": str(model),
        "model_revision": revision or (getattr(net.config, "_commit_hash", None) or ""),
        "model_type": net.config.model_type,
        "random_demo_model": bool(demo and demo.exists()),
        "dtype": str(torch_dtype).removeprefix("torch."),
        "attn": attn,
        "fast_vision": bool(n_fast),
    }
    return VLM(net, processor, meta, dev, torch_dtype, gpu_preprocess=gpu_preprocess)
