"""Open-vocabulary profiling: cluster clip embeddings, name clusters from descriptions,
flag clusters with few labelled clips as candidate new behaviors, compare groups."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .config import defaults

STOP = set(
    "a an the and or of in on at to is are was were be been being it its this that these "
    "those with for from by as into onto while one two three other each their there they "
    "video mouse mice animal animals doing does do what which who".split()
)

DEFAULTS = defaults("discover")  # the config schema's `discover` defaults


def cluster_embeddings(
    embeddings: np.ndarray,
    seed: int = DEFAULTS["seed"],
    n_components: int = DEFAULTS["n_components"],
    min_cluster_size: int = DEFAULTS["min_cluster_size"],
) -> np.ndarray:
    """Standardise -> PCA -> HDBSCAN. Deterministic for fixed inputs; noise is -1."""
    # lazy: sklearn costs ~1.5 s of start-up to the cohort jobs that do not cluster
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(embeddings, np.float64)
    n = len(x)
    if n < max(2, min_cluster_size):
        return np.full(n, -1, np.int64)
    x = StandardScaler().fit_transform(x)
    k = max(1, min(n_components, n - 1, x.shape[1]))
    z = PCA(n_components=k, random_state=seed).fit_transform(x)
    labels = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(z)
    # relabel by first appearance so the numbering is stable across reruns
    order = {c: i for i, c in enumerate(dict.fromkeys(labels[labels >= 0]))}
    return np.array([order.get(c, -1) for c in labels], np.int64)


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP and len(w) > 2]


def name_clusters(cluster_labels: np.ndarray, descriptions: list[str], top_k: int = 3) -> dict:
    """Each cluster's most distinctive description words (TF-IDF of cluster vs rest)."""
    cl = np.asarray(cluster_labels)
    ids = sorted(c for c in set(cl.tolist()) if c >= 0)
    docs = {c: [w for i in np.flatnonzero(cl == c) for w in _words(descriptions[i])] for c in ids}
    df: dict[str, int] = {}
    for words in docs.values():
        for w in set(words):
            df[w] = df.get(w, 0) + 1
    names = {}
    for c, words in docs.items():
        if not words:
            names[c] = f"cluster {c}"
            continue
        tf = pd.Series(words).value_counts() / len(words)
        score = tf * np.log((1 + len(ids)) / (1 + tf.index.map(df).to_numpy())) + 1e-9 * tf
        names[c] = " / ".join(score.sort_values(ascending=False).index[:top_k])
    return names


def flag_novel(
    cluster_labels: np.ndarray,
    clip_labels: np.ndarray,
    max_labelled_fraction: float = DEFAULTS["max_labelled_fraction"],
) -> pd.DataFrame:
    """Clusters whose clips carry few behavior labels (other than ``other``) or none.

    ``clip_labels``: -2 = session without annotations, -1 = unlabelled clip, 0 = other,
    > 0 = a behavior. A cluster is a candidate new behavior when the share of its clips
    labelled with a behavior is at most ``max_labelled_fraction``.
    """
    cl, y = np.asarray(cluster_labels), np.asarray(clip_labels)
    rows = []
    for c in sorted(set(cl.tolist()) - {-1}):
        m = cl == c
        labelled = float(np.mean(y[m] > 0))
        rows.append(
            {
                "cluster": c,
                "n_clips": int(m.sum()),
                "labelled_behavior_fraction": labelled,
                "candidate_new_behavior": labelled <= max_labelled_fraction,
            }
        )
    return pd.DataFrame(
        rows, columns=["cluster", "n_clips", "labelled_behavior_fraction", "candidate_new_behavior"]
    )


def cluster_usage(clusters: pd.DataFrame) -> pd.DataFrame:
    """Fraction of each session's clips in each cluster, with subject, session and group."""
    keys = ["subject", "session", "group"]
    counts = clusters.groupby([*keys, "cluster"]).size().rename("n").reset_index()
    totals = counts.groupby(keys)["n"].transform("sum")
    counts["fraction"] = counts["n"] / totals
    return counts


def compare_groups(usage: pd.DataFrame, group_col: str = "group") -> pd.DataFrame:
    """Per cluster: Kruskal-Wallis across groups (Mann-Whitney for two), BH-corrected."""
    from scipy.stats import kruskal, mannwhitneyu

    wide = usage.pivot_table(
        index=["subject", "session", group_col],
        columns="cluster",
        values="fraction",
        fill_value=0.0,
    ).reset_index()
    groups = sorted(wide[group_col].unique())
    rows = []
    for c in [c for c in wide.columns if isinstance(c, int | np.integer)]:
        samples = [wide.loc[wide[group_col] == g, c].to_numpy() for g in groups]
        p = np.nan
        if len(groups) >= 2 and all(len(s) >= 2 for s in samples):
            try:
                if len(groups) == 2:
                    p = mannwhitneyu(*samples).pvalue
                else:
                    p = kruskal(*samples).pvalue
            except ValueError:  # all values identical
                p = 1.0
        row = {"cluster": int(c), "p_value": p}
        row.update({f"mean_{g}": float(s.mean()) for g, s in zip(groups, samples, strict=True)})
        rows.append(row)
    out = pd.DataFrame(rows, columns=["cluster", "p_value"] + [f"mean_{g}" for g in groups])
    out["p_adjusted"] = _bh(out["p_value"].to_numpy())
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept)."""
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok])]
        ranked = p[order] * ok.size / np.arange(1, ok.size + 1)
        out[order] = np.minimum(1, np.minimum.accumulate(ranked[::-1])[::-1])
    return out


def plot_usage(usage: pd.DataFrame, names: dict, path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    if len(usage):
        table = usage.pivot_table(
            index="cluster", columns="group", values="fraction", aggfunc="mean", fill_value=0
        )
        table.index = [f"{c}: {names.get(c, '')}"[:40] for c in table.index]
        table.plot.bar(ax=ax)
        ax.set_ylabel("mean fraction of clips")
    else:
        ax.text(0.5, 0.5, "no clusters found", ha="center", va="center")
    ax.set_title("cluster usage by group")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


CLIP_COLUMNS = ["subject", "session", "setup", "group", "clip", "start_frame", "end_frame"]


def discover(sessions: list[dict], cfg: dict) -> dict[str, pd.DataFrame]:
    """Cluster all clips of a cohort together, name the clusters, flag candidate new ones.

    Each session is a dict: ``subject, session, setup, group`` (the sheet row),
    ``embeddings [N, D]``, ``start_frame``/``end_frame`` (video frames, as stored),
    ``descriptions`` (list of text, may be shorter than N) and ``clip_labels [N]``
    (``-2`` where the session has no labels). Returns the tables ``clusters``,
    ``candidates``, ``usage`` and ``group_tests`` and the cluster ``names``.

    Clusters are cohort-wide: embeddings are not standardised per session, which would erase
    real differences between sessions and groups (setups with different prompts tend to
    fall into different clusters, which the report shows).
    """
    recs, emb, y_clip = [], [], []
    for s in sessions:
        x = np.asarray(s["embeddings"])
        texts = list(s["descriptions"])
        for i in range(len(x)):
            recs.append(
                {
                    **{c: s[c] for c in CLIP_COLUMNS[:4]},
                    "clip": i,
                    "start_frame": int(s["start_frame"][i]),
                    "end_frame": int(s["end_frame"][i]),
                    "description": texts[i] if i < len(texts) else "",
                }
            )
        emb.append(x)
        y_clip.append(np.asarray(s["clip_labels"]))
    x = np.concatenate(emb) if emb else np.zeros((0, 1))
    df = pd.DataFrame(recs, columns=[*CLIP_COLUMNS, "description"])
    cl = cluster_embeddings(
        x,
        seed=int(cfg["seed"]),
        n_components=int(cfg["n_components"]),
        min_cluster_size=int(cfg["min_cluster_size"]),
    )
    df["cluster"] = cl
    names = name_clusters(cl, df["description"].tolist() if len(df) else [])
    df["cluster_name"] = [names.get(c, "noise") for c in cl]
    y_all = np.concatenate(y_clip) if y_clip else np.zeros(0, int)
    df["clip_label"] = y_all
    cand = flag_novel(cl, y_all, float(cfg["max_labelled_fraction"]))
    cand["name"] = cand["cluster"].map(names)
    if (df["cluster"] >= 0).any():
        use = cluster_usage(df[df.cluster >= 0])
    else:
        use = pd.DataFrame(columns=["subject", "session", "group", "cluster", "n", "fraction"])
    stats = compare_groups(use) if len(use) else pd.DataFrame(columns=["cluster"])
    return {
        "clusters": df,
        "candidates": cand,
        "usage": use,
        "group_tests": stats,
        "names": names,
    }
