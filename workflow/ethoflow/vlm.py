"""Stage 2: a Qwen-VL video language model through transformers and qwen-vl-utils.

One ``VLM`` object holds the model and its processor, loaded once per job from a hub id (the
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


def _is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


class VLM:
    """A loaded Qwen-VL model with its processor and provenance."""

    def __init__(self, model, processor, meta: dict, device, dtype):
        self.model = model
        self.processor = processor
        self.meta = meta
        self.device = device
        self.dtype = dtype
        tok = processor.tokenizer
        tok.padding_side = "left"
        self.video_token_id = model.config.video_token_id
        self.eos_ids = {tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id}
        self.eos_ids.discard(None)

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
        from qwen_vl_utils import process_vision_info

        texts = [
            self.processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in conversations
        ]
        if suffixes is not None:
            texts = [t + s for t, s in zip(texts, suffixes, strict=True)]
        _, videos, kwargs = process_vision_info(conversations, return_video_kwargs=True)
        kwargs = {k: v for k, v in (kwargs or {}).items() if k == "fps"}
        if isinstance(kwargs.get("fps"), list | tuple):  # one clip rate per job
            kwargs["fps"] = float(kwargs["fps"][0])
        return self.processor(
            text=texts,
            videos=videos,
            padding=True,
            return_tensors="pt",
            do_resize=False,
            **kwargs,
        )

    def _to_device(self, inputs):
        out = {}
        for k, v in inputs.items():
            if hasattr(v, "to"):
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
    ) -> np.ndarray:
        """One pooled hidden-state vector per clip: ``frames [N,F,H,W,3] uint8 -> [N,D] f4``."""
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        n = len(frames)
        out = np.zeros((n, self.model.config.text_config.hidden_size), np.float32)
        if n == 0:
            return out

        def make(lo: int, hi: int):
            return self._inputs([self._messages(frames[i], prompt) for i in range(lo, hi)])

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
        self, frames: np.ndarray, prompt: str, max_new_tokens: int = 32, batch_size: int = 4
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
            return self._inputs([self._messages(frames[i], prompt) for i in range(lo, hi)])

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
    ) -> np.ndarray:
        """Log-likelihood of each candidate label as the answer: ``[N, C] f4``.

        The conversation shows every exemplar clip with its label as earlier turns, then the
        clip; each candidate (followed by the end-of-turn token) is scored as the answer, so
        every clip maps onto exactly one label and rare labels stay reachable.
        """
        import torch

        tok = self.processor.tokenizer
        end = "<|im_end|>"
        n_ans = [len(tok(c + end, add_special_tokens=False)["input_ids"]) for c in candidates]
        n_c = len(candidates)
        scores = np.zeros((len(frames), n_c), np.float32)
        if len(frames) == 0:
            return scores
        per = max(1, int(batch_size) // n_c) if batch_size >= n_c else 1

        def make(lo, hi):
            convs, suffixes = [], []
            for i in range(lo, hi):
                for c in candidates:
                    convs.append(self._messages(frames[i], prompt, exemplars))
                    suffixes.append(c + end)
            return self._inputs(convs, suffixes)

        @torch.inference_mode()
        def run(inputs):
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
) -> VLM:
    """Load a Qwen-VL checkpoint by hub id or local directory, once per job.

    ``fast_vision`` swaps the vision tower's per-window attention loop for one batched call per
    layer (same maths, see ``fast_vision``); ignored with flash-attention-2.
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
    return VLM(net, processor, meta, dev, torch_dtype)


def embed_sessions(
    vlm: VLM,
    clip_paths: list[str],
    out_paths: list[str],
    prompt: str,
    pooling: str = "video_mean",
    layer: int = -1,
    batch_size: int = 4,
    progress: bool = True,
) -> list[str]:
    """Embed many sessions with one loaded model; complete outputs are kept as they are.

    Each output is written atomically, so a job killed half-way leaves the finished sessions
    and no partial file; running it again embeds only what is missing.
    """
    from .results import embeddings_complete, read_clips, write_embeddings

    done = []
    for clips, out in zip(clip_paths, out_paths, strict=True):
        meta = read_clips(clips, frames=False)
        n = meta["n_clips"]
        if embeddings_complete(out, n):
            log.info("%s is complete, kept", out)
            continue
        frames = read_clips(clips)["frames"]
        starts, ends = meta["start_frame"], meta["end_frame"]
        t0 = time.perf_counter()
        emb = vlm.embed(frames, prompt, pooling, layer, batch_size, progress=progress)
        secs = time.perf_counter() - t0
        attrs = {
            **vlm.meta,
            "prompt": prompt,
            "pooling": pooling,
            "layer": int(layer),
            "seconds": secs,
            "clips_per_second": n / secs if secs > 0 else float("nan"),
        }
        write_embeddings(out, emb, starts, ends, attrs)
        log.info("%s: %d clips in %.1f s", out, n, secs)
        done.append(out)
    return done
