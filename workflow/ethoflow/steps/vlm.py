"""Steps of ``rules/vlm.smk``: the demo model, embeddings, descriptions and in-context labels.

Every VLM step takes its settings as one dict ``vlm`` (``model``, ``revision``, ``dtype``,
``attn``, ``batch_size`` and the keys of its own task), built by the rule from config.
"""

from __future__ import annotations

import time

import numpy as np

from .. import results
from ..atomic import atomic_path
from ..classifiers import clip_labels, clip_pose_features
from ..icl import build_prompt, choose_exemplars
from ..vocab import classes


def _load(vlm: dict, threads: int):
    import torch

    from ..vlm import load_vlm

    torch.set_num_threads(max(1, threads))
    return load_vlm(
        vlm["model"], revision=vlm["revision"] or None, dtype=vlm["dtype"], attn=vlm["attn"]
    )


def build_demo_vlm(model: str) -> None:
    """The tiny random-weight Qwen2.5-VL of the demo, built offline."""
    from ..tiny import build_tiny_qwen25vl

    with atomic_path(model) as tmp:
        build_tiny_qwen25vl(tmp)


def vlm_embed(clips: str, model_dir, embeddings: str, vlm: dict, threads: int = 1) -> None:
    """One pooled VLM hidden-state vector per clip."""
    from ..vlm import embed_sessions

    embed_sessions(
        _load(vlm, threads),
        [clips],
        [embeddings],
        prompt=vlm["prompt"],
        pooling=vlm["pooling"],
        layer=vlm["layer"],
        batch_size=vlm["batch_size"],
    )


def vlm_describe(clips: str, model_dir, descriptions: str, vlm: dict, threads: int = 1) -> None:
    """The VLM's free-text answer for every clip (JSON lines)."""
    model = _load(vlm, threads)
    data = results.read_clips(clips)
    prompt = vlm["describe_prompt"]
    answers = (
        model.describe(data["frames"], prompt, vlm["max_new_tokens"], vlm["batch_size"])
        if len(data["frames"])
        else []
    )
    records = [
        {
            "clip": i,
            "start_frame": int(data["start_frame"][i]),
            "end_frame": int(data["end_frame"][i]),
            "model": vlm["model"],
            "prompt": prompt,
            **a,
        }
        for i, a in enumerate(answers)
    ]
    results.write_descriptions(descriptions, records)


def icl_exemplars(
    clips: list[str],
    labels: list[str],
    pose: list[str],
    exemplars: str,
    behaviors: list[str],
    per_class: int,
    seed: int,
) -> None:
    """Labelled exemplar clips for in-context classification, drawn from the train split,
    chosen to cover each class in pose-feature space (``icl.choose_exemplars``)."""
    clips, labels, pose = results.usable(clips, labels, pose)
    windows = [results.read_clip_windows(c, ph) for c, ph in zip(clips, pose, strict=True)]
    clip_y = [
        clip_labels(results.read_labels(lb, behaviors), w)
        for lb, w in zip(labels, windows, strict=True)
    ]
    feats = [
        clip_pose_features(results.read_pose(ph)[1], w) for ph, w in zip(pose, windows, strict=True)
    ]
    chosen = choose_exemplars(clip_y, per_class, len(behaviors) + 1, seed, features=feats)
    vocab = classes(behaviors)
    frames = [results.read_clip_frames(clips[s], [i])[0] for s, i in chosen]
    results.write_icl_exemplars(
        exemplars,
        np.stack(frames) if frames else np.zeros((0, 2, 1, 1, 3), np.uint8),
        [vocab[clip_y[s][i]] for s, i in chosen],
        [[clips[s], int(i)] for s, i in chosen],
    )


def vlm_icl(
    clips: str,
    exemplars: str,
    model_dir,
    scores: str,
    vlm: dict,
    behaviors: list[str],
    definitions: dict,
    threads: int = 1,
) -> None:
    """Label log-likelihoods of every clip under an in-context prompt (no training)."""
    import json

    model = _load(vlm, threads)
    data = results.read_clips(clips)
    ex_frames, ex_labels = results.read_icl_exemplars(exemplars)
    prompt = build_prompt(behaviors, definitions)
    candidates = classes(behaviors)
    t0 = time.perf_counter()
    if len(data["frames"]):
        s = model.score_labels(
            data["frames"],
            prompt,
            candidates,
            exemplars=list(zip(ex_frames, ex_labels, strict=True)),
            batch_size=vlm["batch_size"],
        )
    else:
        s = np.zeros((0, len(candidates)), np.float32)
    attrs = {
        **model.meta,
        "prompt": prompt,
        "candidates": json.dumps(candidates),
        "n_exemplars": len(ex_labels),
        "seconds": time.perf_counter() - t0,
    }
    results.write_icl_scores(scores, s, attrs)
