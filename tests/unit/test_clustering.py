"""Clustering on planted structure, cluster names, novel candidates, group tests."""

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ethoflow.clustering import (
    cluster_embeddings,
    cluster_usage,
    compare_groups,
    flag_novel,
    name_clusters,
    plot_usage,
)


def _planted(seed=0, n_clusters=4, n_per=60, dim=256):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(6, dim))
    centres = rng.normal(0, 6, (n_clusters, 6))
    truth = np.repeat(np.arange(n_clusters), n_per)
    x = (centres[truth] + rng.normal(size=(len(truth), 6))) @ basis
    x += rng.normal(0, 0.5, x.shape)
    return x.astype(np.float16), truth


def test_recovers_planted_clusters_stably():
    x, truth = _planted()
    a = cluster_embeddings(x, seed=0, n_components=8, min_cluster_size=10)
    b = cluster_embeddings(x, seed=0, n_components=8, min_cluster_size=10)
    np.testing.assert_array_equal(a, b)
    assert adjusted_rand_score(truth, a) > 0.9
    assert a.min() >= -1 and np.mean(a == -1) < 0.1


def test_names_novel_and_group_comparison(tmp_path):
    words = {0: "grooming face paws licking", 1: "rearing upright wall", 2: "digging bedding"}
    cl = np.repeat([0, 1, 2, -1], 12)
    desc = [f"the mouse is {words.get(c, 'walking')} slowly" for c in cl]
    names = name_clusters(cl, desc, top_k=2)
    assert set(names) == {0, 1, 2}
    assert set(names[2].split(" / ")) == {"digging", "bedding"}
    assert "slowly" not in names[0] and "mouse" not in names[0]
    # clips of clusters 0, 1 carry behavior labels; cluster 2 (digging) nobody labelled
    y = np.where(cl == 0, 1, np.where(cl == 1, 2, 0))
    y[np.flatnonzero(cl == 2)[0]] = 1  # one labelled clip of 12: still a candidate
    nov = flag_novel(cl, y, max_labelled_fraction=0.2).set_index("cluster")
    assert nov.candidate_new_behavior.tolist() == [False, False, True]
    assert nov.loc[2, "n_clips"] == 12
    # usage: group B uses cluster 2 three times as often as group A
    rows = []
    rng = np.random.default_rng(1)
    for i in range(12):
        group = "A" if i < 6 else "B"
        p = [0.45, 0.45, 0.1] if group == "A" else [0.2, 0.2, 0.6]
        for c in rng.choice(3, 60, p=p):
            rows.append((f"m{i}", "s1", group, int(c)))
    clusters = pd.DataFrame(rows, columns=["subject", "session", "group", "cluster"])
    usage = cluster_usage(clusters)
    sums = usage.groupby(["subject", "session"])["fraction"].sum()
    np.testing.assert_allclose(sums, 1.0)
    res = compare_groups(usage).set_index("cluster")
    assert res.loc[2, "p_adjusted"] < 0.05
    assert res.loc[2, "mean_B"] > res.loc[2, "mean_A"]
    assert (res.p_adjusted >= res.p_value - 1e-12).all()
    plot_usage(usage, names, tmp_path / "usage.png")
    assert (tmp_path / "usage.png").read_bytes()[:4] == b"\x89PNG"
