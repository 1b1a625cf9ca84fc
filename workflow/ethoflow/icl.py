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
    clip_labels: list[np.ndarray], per_class: int, n_classes: int, seed: int
) -> list[tuple[int, int]]:
    """Pick up to ``per_class`` labelled clips of every class, reproducibly.

    ``clip_labels`` holds one int array per session (``-1`` = unlabelled). Returns
    ``(session_index, clip_index)`` pairs, rare classes first so that they are never
    crowded out, interleaved by class so no class sits only at the end of the context.
    """
    rng = np.random.default_rng(seed)
    pools: dict[int, list[tuple[int, int]]] = {c: [] for c in range(n_classes)}
    for s, y in enumerate(clip_labels):
        for i, c in enumerate(np.asarray(y)):
            if 0 <= c < n_classes:
                pools[int(c)].append((s, i))
    picked: dict[int, list[tuple[int, int]]] = {}
    for c, pool in pools.items():
        if pool and per_class > 0:
            idx = rng.choice(len(pool), size=min(per_class, len(pool)), replace=False)
            picked[c] = [pool[i] for i in sorted(idx)]
    order = sorted(picked, key=lambda c: len(pools[c]))
    out = []
    for round_ in range(per_class):
        for c in order:
            if round_ < len(picked[c]):
                out.append(picked[c][round_])
    return out
