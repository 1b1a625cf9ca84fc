"""Steps of ``rules/vlm.smk``: the demo model, embeddings, descriptions and in-context labels.

Every VLM step takes its settings as one dict ``vlm`` (``model``, ``revision``, ``dtype``,
``attn``, ``batch_size`` and the keys of its own task), built by the rule from config.
"""

from __future__ import annotations

import numpy as np

from .. import results
from ..atomic import atomic_path
from ..classifiers import clip_labels, clip_pose_features
from ..icl import build_prompt, choose_exemplars
from ..vlm_server import client
from ..vocab import classes


def _served(model) -> None:
    """Say in the job's log where the work was done and what the vision cache saved."""
    st = model.stats
    if not st.get("server"):
        print(f"model loaded in this job ({st['load_seconds']:.1f} s)")
        return
    req = st.get("this_request", {})
    print(
        f"model server pid {st['pid']} (model loaded once, {st['load_seconds']:.1f} s; "
        f"{st['requests']} requests served): this job's videos encoded "
        f"{req.get('vision_encoded', 0)}, from the vision cache {req.get('vision_cached', 0)}"
    )


def build_demo_vlm(model: str) -> None:
    """The tiny random-weight Qwen2.5-VL of the demo, built offline."""
    from ..tiny import build_tiny_qwen25vl

    with atomic_path(model) as tmp:
        build_tiny_qwen25vl(tmp)


def vlm_embed(
    clips: str,
    model_dir,
    embeddings: str,
    vlm: dict,
    threads: int = 1,
    vlm_server: dict | None = None,
) -> None:
    """One pooled VLM hidden-state vector per clip."""
    model = client(vlm, threads, vlm_server)  # the allocation's model server
    r = model.run(
        "embed",
        clips=clips,
        prompt=vlm["prompt"],
        pooling=vlm["pooling"],
        layer=vlm["layer"],
        batch_size=vlm["batch_size"],
    )
    n, secs = len(r["embeddings"]), r["seconds"]
    attrs = {
        **model.meta,
        "prompt": vlm["prompt"],
        "pooling": vlm["pooling"],
        "layer": int(vlm["layer"]),
        "seconds": secs,
        "clips_per_second": n / secs if secs > 0 else float("nan"),
    }
    results.write_embeddings(embeddings, r["embeddings"], r["start_frame"], r["end_frame"], attrs)
    print(f"{embeddings}: {n} clips in {secs:.1f} s")
    _served(model)


def vlm_describe(
    clips: str,
    model_dir,
    descriptions: str,
    vlm: dict,
    threads: int = 1,
    vlm_server: dict | None = None,
) -> None:
    """The VLM's free-text answer for every clip (JSON lines)."""
    model = client(vlm, threads, vlm_server)  # the allocation's model server
    prompt = vlm["describe_prompt"]
    r = model.run(
        "describe",
        clips=clips,
        prompt=prompt,
        max_new_tokens=vlm["max_new_tokens"],
        batch_size=vlm["batch_size"],
    )
    records = [
        {
            "clip": i,
            "start_frame": int(r["start_frame"][i]),
            "end_frame": int(r["end_frame"][i]),
            "model": vlm["model"],
            "prompt": prompt,
            **a,
        }
        for i, a in enumerate(r["answers"])
    ]
    results.write_descriptions(descriptions, records)
    _served(model)


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
    vlm_server: dict | None = None,
) -> None:
    """Label log-likelihoods of every clip under an in-context prompt (no training)."""
    import json

    model = client(vlm, threads, vlm_server)  # the allocation's model server
    prompt = build_prompt(behaviors, definitions)
    candidates = classes(behaviors)
    r = model.run(
        "score",
        clips=clips,
        exemplars=exemplars,
        prompt=prompt,
        candidates=candidates,
        batch_size=vlm["batch_size"],
    )
    attrs = {
        **model.meta,
        "prompt": prompt,
        "candidates": json.dumps(candidates),
        "n_exemplars": r["n_exemplars"],
        "seconds": r["seconds"],
    }
    results.write_icl_scores(scores, r["scores"], attrs)
    _served(model)
