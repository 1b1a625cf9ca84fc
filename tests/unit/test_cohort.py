"""Summaries, discovery and NWB export with known answers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ethoflow import clustering, export, summary


def test_behavior_summary_bouts_and_latency():
    y = np.array([0] * 10 + [1] * 5 + [0] * 5 + [1] * 15 + [2] * 5)
    s = summary.behavior_summary(y, 10.0, ["a", "b"]).set_index("behavior")
    assert s.loc["a", "bouts"] == 2 and s.loc["a", "seconds"] == 2.0
    assert s.loc["a", "mean_bout_s"] == 1.0 and s.loc["a", "latency_s"] == 1.0
    assert s.loc["b", "latency_s"] == 3.5 and s.loc["a", "fraction"] == 0.5
    s = summary.behavior_summary(np.zeros(10, int), 10.0, ["a"])
    assert s.loc[0, "bouts"] == 0 and np.isnan(s.loc[0, "latency_s"])


def planted_clusters(seed=0):
    r = np.random.default_rng(seed)
    centres = r.normal(0, 6, (4, 32))
    y = np.repeat(np.arange(4), 40)
    return (centres[y] + r.normal(0, 1, (len(y), 32))).astype(np.float32), y


def test_clustering_recovers_planted_structure_and_is_stable():
    x, y = planted_clusters()
    a = clustering.cluster_embeddings(x, seed=0, n_components=8, min_cluster_size=10)
    b = clustering.cluster_embeddings(x, seed=0, n_components=8, min_cluster_size=10)
    assert np.array_equal(a, b)
    assert adjusted_rand_score(y, a) > 0.9


def test_cluster_names_novel_candidates_and_group_test():
    x, y = planted_clusters(1)
    cl = clustering.cluster_embeddings(x, min_cluster_size=10)
    words = ["chasing running", "grooming face", "sleeping still", "rearing wall"]
    desc = [f"the mouse is {words[c]} in the video" for c in y]
    names = clustering.name_clusters(cl, desc)
    for c in set(cl) - {-1}:
        true = np.bincount(y[cl == c]).argmax()
        assert set(names[c].split(" / ")) <= set(words[true].split()) | {"mouse"}
    labels = np.where(y == 3, 0, y)  # cluster of class 3 has only 'other' labels
    labels[y == 3] = -1
    novel = clustering.flag_novel(cl, labels, 0.2)
    flagged = novel[novel.candidate_new_behavior].cluster.tolist()
    assert len(flagged) == 2  # class 0 ('other' labels) and the unlabelled class 3
    df = pd.DataFrame(
        {
            "subject": [f"m{i % 8}" for i in range(len(y))],
            "session": "s1",
            "group": ["ctrl" if i % 8 < 4 else "drug" for i in range(len(y))],
            "cluster": cl,
        }
    )
    # the drug group uses cluster of class 0 twice as often: move its clips there
    usage = clustering.cluster_usage(df[df.cluster >= 0])
    assert np.allclose(usage.groupby(["subject", "session"])["fraction"].sum(), 1)
    stats = clustering.compare_groups(usage)
    assert set(stats.columns) >= {"cluster", "p_value", "p_adjusted", "mean_ctrl", "mean_drug"}
    assert (stats.p_adjusted.dropna() >= stats.p_value.dropna() - 1e-12).all()


def test_nwb_round_trip(tmp_path):
    from pynwb import NWBHDF5IO

    y = np.array([0, 1, 1, 0, 2, 2])
    probs = np.eye(3)[y]
    path = tmp_path / "s.nwb"
    export.write_nwb(path, y, 2.0, ["a", "b"], "m1", "s1", probs=probs)
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        t = nwb.intervals["behavior"].to_dataframe()
        assert t["label"].tolist() == ["a", "b"]
        assert t["start_time"].tolist() == [0.5, 2.0] and t["stop_time"].tolist() == [1.5, 3.0]
        ts = nwb.processing["behavior"]["behavior_probabilities"]
        assert ts.data[:].shape == (6, 3) and ts.rate == pytest.approx(2.0)


def test_discover_pools_sessions_and_keeps_their_clips_in_order():
    x, y = planted_clusters(2)
    half = len(x) // 2
    sessions = []
    for i, (lo, hi) in enumerate([(0, half), (half, len(x))]):
        n = hi - lo
        sessions.append(
            {
                "subject": f"m{i}",
                "session": "s1",
                "setup": "rig",
                "group": "ctrl" if i == 0 else "drug",
                "embeddings": x[lo:hi],
                "start_frame": np.arange(n) * 10,
                "end_frame": np.arange(n) * 10 + 150,
                "descriptions": ["a mouse grooming"] * (n - 1),  # one answer missing
                "clip_labels": np.where(y[lo:hi] == 3, -1, y[lo:hi]) if i == 0 else np.full(n, -2),
            }
        )
    cfg = {"seed": 0, "n_components": 8, "min_cluster_size": 10, "max_labelled_fraction": 0.2}
    out = clustering.discover(sessions, cfg)
    cl = out["clusters"]
    assert len(cl) == len(x) and cl["subject"].tolist() == ["m0"] * half + ["m1"] * (len(x) - half)
    assert cl["clip"].tolist()[:3] == [0, 1, 2] and cl["end_frame"].iloc[1] == 160
    assert cl["description"].iloc[half - 1] == ""  # the missing answer stays empty
    # the same clusters as clustering the pooled embeddings directly
    direct = clustering.cluster_embeddings(x, seed=0, n_components=8, min_cluster_size=10)
    assert np.array_equal(cl["cluster"].to_numpy(), direct)
    assert adjusted_rand_score(y, cl["cluster"]) > 0.9
    assert set(out["usage"]["group"]) == {"ctrl", "drug"}
    assert out["candidates"]["candidate_new_behavior"].any()
