"""In-context classification: the structured prompt and the choice of exemplar clips.

No training: the VLM sees the behavior definitions, a few labelled exemplar clips as earlier
turns of the conversation, and then the clip to label. Each candidate label's log-likelihood
as the answer is scored (``VLM.score_labels``), so every clip maps onto exactly one label of
the vocabulary, rare ones included.
"""

from __future__ import annotations

import numpy as np


def build_prompt(behaviors: list[str], definitions: dict[str, str]) -> str:
    """The instruction: every label with its definition, and how to answer."""
    lines = [
        "You label the behavior of mice in short top-view videos.",
        "Answer with exactly one label from this list:",
    ]
    for b in behaviors:
        lines.append(f"- {b}: {definitions.get(b, b)}")
    lines.append("- other: none of the behaviors above")
    lines.append("Label:")
    return "\n".join(lines)


def choose_exemplars(
    clip_labels: list[np.ndarray],
    per_class: int,
    n_classes: int,
    seed: int,
    features: list[np.ndarray] | None = None,
) -> list[tuple[int, int]]:
    """Pick up to ``per_class`` labelled clips of every class, reproducibly.

    ``clip_labels`` holds one int array per session (``-1`` = unlabelled). Without
    ``features`` the clips of a class are drawn at random; with ``features`` (one ``[N, D]``
    array per session, e.g. the pose features pooled over each clip) they are chosen to cover
    the class (``cover``): the clip nearest the class centre first, then each time the clip
    farthest from those already chosen (greedy k-center on standardised features), so a
    handful of exemplars spans the class's variants instead of several near-copies.

    Returns ``(session_index, clip_index)`` pairs, rare classes first so that they are never
    crowded out, interleaved by class so no class sits only at the end of the context. With
    ``cover`` the first exemplar of each class is its most typical clip, so truncating the
    list keeps the best ones.
    """
    rng = np.random.default_rng(seed)
    pools: dict[int, list[tuple[int, int]]] = {c: [] for c in range(n_classes)}
    for s, y in enumerate(clip_labels):
        for i, c in enumerate(np.asarray(y)):
            if 0 <= c < n_classes:
                pools[int(c)].append((s, i))
    x = _standardised(features, pools) if features is not None else None
    picked: dict[int, list[tuple[int, int]]] = {}
    for c, pool in pools.items():
        if pool and per_class > 0:
            k = min(per_class, len(pool))
            if x is None:
                idx = sorted(rng.choice(len(pool), size=k, replace=False))
            else:
                idx = cover(np.stack([x[p] for p in pool]), k, rng)
            picked[c] = [pool[i] for i in idx]
    order = sorted(picked, key=lambda c: len(pools[c]))
    out = []
    for round_ in range(per_class):
        for c in order:
            if round_ < len(picked[c]):
                out.append(picked[c][round_])
    return out


def _standardised(features: list[np.ndarray], pools: dict) -> dict:
    """Features of every labelled clip, z-scored over them (NaN -> 0): ``{(s, i): [D]}``."""
    keys = [p for pool in pools.values() for p in pool]
    if not keys:
        return {}
    x = np.stack([np.asarray(features[s][i], np.float64).ravel() for s, i in keys])
    x = np.nan_to_num(x)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    return dict(zip(keys, x, strict=True))


def cover(x: np.ndarray, k: int, rng: np.random.Generator | None = None) -> list[int]:
    """Greedy k-center: ``k`` row indices of ``x [N, D]`` that cover the rows.

    The row nearest the mean first, then the row farthest from the chosen ones; ties go to
    the first in an order shuffled by ``rng`` (deterministic for a seed).
    """
    n = len(x)
    k = min(k, n)
    if k <= 0:
        return []
    order = rng.permutation(n) if rng is not None else np.arange(n)
    xs = np.asarray(x, np.float64)[order]
    first = int(np.argmin(((xs - xs.mean(0)) ** 2).sum(1)))
    chosen = [first]
    dist = ((xs - xs[first]) ** 2).sum(1)
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:  # the rest are duplicates of chosen rows: take them in order
            taken = set(chosen)
            rest = [i for i in range(n) if i not in taken]
            chosen += rest[: k - len(chosen)]
            break
        chosen.append(nxt)
        dist = np.minimum(dist, ((xs - xs[nxt]) ** 2).sum(1))
    return [int(order[i]) for i in chosen]
