"""In-context labelling (``VLM.score_labels``): cost per clip against an embedding, and
accuracy against the number of exemplars per class.

Cost (always): random clips through ``VLM.embed``, cached ICL (the shared prefix of
definitions and exemplar clips run once, its key-value cache reused for every clip) and the
full conversation once per candidate (``cached=False``). It reports seconds per clip, the
ratio to an embedding, and the videos the vision tower encoded (a wrapper counts them).

    python benchmarks/bench_icl.py                           # tiny random model, CPU
    python benchmarks/bench_icl.py --shape 3b --device cuda  # random weights, real shapes
    python benchmarks/bench_icl.py --model Qwen/Qwen2.5-VL-7B-Instruct --device cuda

Accuracy against exemplars per class (``--results``): exemplars are chosen from the
``--train`` sessions of a workflow results directory (``results/clips/{k}.h5``,
``results/labels/{k}.csv``, ``results/pose/{k}.h5``; ``k`` = ``subject/session``) by
``icl.choose_exemplars`` (``cover``: k-center on pose features, or ``random``), every
labelled clip of the ``--test`` sessions is scored, and accuracy and macro F1 of the arg-max
label are reported for each ``--per-class`` value (written to ``--out`` as TSV if given):

    python benchmarks/bench_icl.py --model /path/to/Qwen2.5-VL-7B-Instruct --device cuda \\
        --results results --config config/config.yaml --setup calms21 \\
        --train mouse001/task1 mouse002/task1 --test mouse010/task1 \\
        --per-class 1 2 4 8 --choice cover random --out icl_vs_exemplars.tsv

``--demo-accuracy`` runs the same curve on random clips and random labels: with the tiny
random-weight model it only shows that the code runs; its accuracies mean nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "workflow"))
sys.path.insert(0, str(HERE))

from ethoflow.icl import build_prompt, choose_exemplars  # noqa: E402
from ethoflow.vlm import VLM, load_vlm  # noqa: E402
from ethoflow.vocab import classes  # noqa: E402

CALMS21 = ["attack", "investigation", "mount"]
EMBED_PROMPT = "What are the two mice doing in this video?"


def count_videos(vlm: VLM) -> dict:
    """Count the videos the vision tower encodes (``counter["videos"]``)."""
    visual = vlm.model.model.visual
    counter = {"videos": 0}
    forward = visual.forward

    def counted(*args, **kwargs):
        grid = kwargs.get("grid_thw", args[1] if len(args) > 1 else None)
        counter["videos"] += int(grid.shape[0])
        return forward(*args, **kwargs)

    visual.forward = counted
    return counter


def timed(fn, counter: dict) -> tuple[float, int]:
    counter["videos"] = 0
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, counter["videos"]


def cost(vlm: VLM, a) -> None:
    rng = np.random.default_rng(0)
    shape = (a.frames, a.size, a.size, 3)
    clips = rng.integers(0, 256, (a.clips, *shape), dtype=np.uint8)
    cands = classes(CALMS21)
    ex_frames = rng.integers(0, 256, (a.exemplars * len(cands), *shape), dtype=np.uint8)
    ex = [(f, cands[i % len(cands)]) for i, f in enumerate(ex_frames)]
    prompt = build_prompt(CALMS21, {})
    counter = count_videos(vlm)
    bs = a.batch_size

    vlm.embed(clips[:1], EMBED_PROMPT)  # warm-up
    vlm.score_labels(clips[:1], prompt, cands, ex, batch_size=bs)
    t_emb, v_emb = timed(lambda: vlm.embed(clips, EMBED_PROMPT, batch_size=bs), counter)
    t_one, _ = timed(lambda: vlm.score_labels(clips[:1], prompt, cands, ex, batch_size=bs), counter)
    t_icl, v_icl = timed(lambda: vlm.score_labels(clips, prompt, cands, ex, batch_size=bs), counter)
    n_full = min(a.clips, a.full_clips)
    t_full, v_full = timed(
        lambda: vlm.score_labels(clips[:n_full], prompt, cands, ex, batch_size=bs, cached=False),
        counter,
    )
    n = a.clips
    emb = t_emb / n
    marginal = (t_icl - t_one) / max(1, n - 1)  # the prefix (once per job) left out
    print(
        f"{a.frames} frames at {a.size}x{a.size}, {len(cands)} candidates, "
        f"{len(ex)} exemplars ({a.exemplars} per class), batch size {bs}, {n} clips"
    )
    print(f"  {'':34s} {'s/clip':>9s} {'x embed':>8s} {'videos':>7s}")
    print(f"  {'embed':34s} {emb:9.4f} {1:8.2f} {v_emb:7d}")
    print(f"  {'ICL cached, per clip (marginal)':34s} {marginal:9.4f} {marginal / emb:8.2f}")
    print(f"  {'ICL cached, incl. prefix':34s} {t_icl / n:9.4f} {t_icl / n / emb:8.2f} {v_icl:7d}")
    full = t_full / n_full
    name = f"ICL full conversation ({n_full} clips)"
    print(f"  {name:34s} {full:9.4f} {full / emb:8.2f} {v_full:7d}")
    print(
        f"  videos encoded: embed {v_emb / n:.0f}/clip; cached {len(ex)} once + "
        f"{(v_icl - len(ex)) / n:.0f}/clip; full {v_full / n_full:.0f}/clip "
        f"(= (E+1) x C = {(len(ex) + 1) * len(cands)})"
    )


def accuracy_curve(vlm, train, test, behaviors, definitions, per_class, choices, seed):
    """Accuracy and macro F1 of the arg-max ICL label against exemplars per class.

    ``train``: ``(frames_of(session, clip_indices), clip_labels, clip_features)`` with one
    label and feature array per session; ``test``: ``(frames [N,...], labels [N])``.
    """
    from sklearn.metrics import f1_score

    frames_of, y_train, x_train = train
    x_test, y_test = test
    cands = classes(behaviors)
    prompt = build_prompt(behaviors, definitions)
    rows = []
    for choice in choices:
        for k in per_class:
            feats = x_train if choice == "cover" else None
            picks = choose_exemplars(y_train, k, len(cands), seed, features=feats)
            ex = [(frames_of(s, [i])[0], cands[y_train[s][i]]) for s, i in picks]
            t0 = time.perf_counter()
            scores = vlm.score_labels(x_test, prompt, cands, ex)
            pred = scores.argmax(1)
            row = {
                "choice": choice,
                "per_class": k,
                "n_exemplars": len(ex),
                "n_test": len(y_test),
                "accuracy": float((pred == y_test).mean()),
                "macro_f1": float(
                    f1_score(y_test, pred, labels=range(len(cands)), average="macro")
                ),
                "s_per_clip": (time.perf_counter() - t0) / max(1, len(y_test)),
            }
            rows.append(row)
            print(
                "  ".join(
                    f"{k_}={v:.3f}" if isinstance(v, float) else f"{k_}={v}"
                    for k_, v in row.items()
                ),
                flush=True,
            )
    return rows


def from_results(a):
    """Train pool and labelled test clips of a workflow results directory."""
    import yaml

    from ethoflow import results
    from ethoflow.classifiers import clip_labels, clip_pose_features

    setup = yaml.safe_load(Path(a.config).read_text())["setups"][a.setup]
    behaviors, definitions = setup["behaviors"], setup.get("definitions", {})
    root = Path(a.results)

    def session(k):
        c, lb, ph = (
            root / d / f"{k}{ext}"
            for d, ext in (("clips", ".h5"), ("labels", ".csv"), ("pose", ".h5"))
        )
        w = results.read_clip_windows(c, ph)
        y = clip_labels(results.read_labels(lb, behaviors), w)
        return c, y, clip_pose_features(results.read_pose(ph)[1], w)

    pool = [session(k) for k in a.train]
    train = (
        lambda s, idx: results.read_clip_frames(pool[s][0], idx),
        [p[1] for p in pool],
        [p[2] for p in pool],
    )
    xs, ys = [], []
    for k in a.test:
        c, y, _ = session(k)
        keep = np.flatnonzero(y >= 0)
        if len(keep):
            xs.append(results.read_clip_frames(c, list(keep)))
            ys.append(y[keep])
    return train, (np.concatenate(xs), np.concatenate(ys)), behaviors, definitions


def demo_data(a):
    """Random clips and labels (the code path only; accuracies are chance)."""
    rng = np.random.default_rng(1)
    n_c = len(CALMS21) + 1
    shape = (a.frames, a.size, a.size, 3)
    pool = rng.integers(0, 256, (3 * n_c * max(a.per_class), *shape), dtype=np.uint8)
    y = np.arange(len(pool)) % n_c
    feats = pool.reshape(len(pool), a.frames, -1).mean((1, 2))[:, None] + rng.normal(
        0, 1, (len(pool), 4)
    )
    train = (lambda s, idx: pool[idx], [y], [feats])
    test = rng.integers(0, 256, (a.clips, *shape), dtype=np.uint8)
    return train, (test, np.arange(a.clips) % n_c), CALMS21, {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (hub id or directory); default: --shape")
    ap.add_argument("--shape", choices=["tiny", "3b", "7b"], default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--full-clips", type=int, default=2, help="clips for the slow full path")
    ap.add_argument("--exemplars", type=int, default=1, help="exemplars per class (cost)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--no-cost", action="store_true", help="skip the cost comparison")
    ap.add_argument("--results", help="workflow results directory (accuracy curve)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--setup")
    ap.add_argument("--train", nargs="*", default=[], help="subject/session of the pool")
    ap.add_argument("--test", nargs="*", default=[], help="subject/session scored")
    ap.add_argument("--per-class", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--choice", nargs="*", default=["cover", "random"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--demo-accuracy", action="store_true", help="curve on random data")
    ap.add_argument("--out", help="TSV of the accuracy curve")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        if a.model:
            vlm = load_vlm(a.model, device=a.device)
        else:
            from bench_vlm import build

            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
            vlm = build(a.shape, device, dtype, Path(tmp))
        print(
            f"model {a.model or 'random-' + a.shape} on {device.type}"
            + (" (CPU figure)" if device.type == "cpu" else "")
        )
        if not a.no_cost:
            cost(vlm, a)
        data = from_results(a) if a.results else demo_data(a) if a.demo_accuracy else None
        if data is not None:
            if not a.results:
                print("accuracy on random data with a random model: chance by construction")
            rows = accuracy_curve(vlm, *data, a.per_class, a.choice, a.seed)
            if a.out:
                import pandas as pd

                pd.DataFrame(rows).to_csv(a.out, sep="\t", index=False)


if __name__ == "__main__":
    main()
