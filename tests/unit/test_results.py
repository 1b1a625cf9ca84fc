"""The results files: the contract table of workflow/README.md agrees with
``ethoflow.results``, and each writer/reader pair round-trips realistic data."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethoflow import results
from ethoflow.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def readme_table() -> dict[str, tuple[str, str, str]]:
    text = (REPO / "workflow/README.md").read_text()
    section = text[text.index("## Files") : text.index("## Package API")]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `([^`]+)` \| `([^`]+)` \| `([^`]+)` / `([^`]+)` \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def test_contract_table_agrees_with_the_module():
    assert readme_table() == results.FILES
    for _rule, writer, reader in results.FILES.values():
        assert callable(getattr(results, writer)) and callable(getattr(results, reader))


def test_every_results_file_of_the_rules_is_in_the_contract():
    """Each output path of a rule under results/ (models and plots aside) is listed."""
    outputs = set()
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        outputs |= set(re.findall(r'"(results/[^"]+)"', text))
        # per-session files of the shard jobs' calls: f"results/pose/{k}.h5" and the like
        outputs |= {
            o.replace("{k}", "{subject}/{session}").replace("{wc.mode}", "{mode}")
            for o in re.findall(r'f"(results/[^"]*\{k\}[^"]*)"', text)
        }
    # a manifest of each per-session rule's shard jobs
    outputs = {re.sub(r"^results/shards/[a-z_]+/", "results/shards/{rule}/", o) for o in outputs}
    # output patterns use the rules' wildcards; input functions use their own names
    wildcards = {"subject", "session", "setup", "mode", "rule", "shard"}
    outputs = {o for o in outputs if set(re.findall(r"{([^}]*)}", o)) <= wildcards}
    data = {o for o in outputs if not o.endswith((".png", ".pt", ".pkl", ".nwb", ".html", ".json"))}
    data -= {o for o in data if o.startswith(("results/discover/", "results/report/"))}
    data -= {"results/metrics/{setup}/stage1_threshold_sweep.tsv"}
    data -= {"results/summary/group_comparison.png"}
    assert data <= set(results.FILES), sorted(data - set(results.FILES))
    # the per-session files of every shard rule are among them (the pattern above sees them)
    assert {"results/pose/{subject}/{session}.h5", "results/shards/{rule}/{shard}.tsv"} <= data
    assert "results/behavior/{mode}/{subject}/{session}.events.csv" in data


def test_behavior_round_trip_and_fps_from_frame_times(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=301)
    path = tmp_path / "b.csv"
    results.write_behavior(path, probs, 30.0, ["groom", "rear"])
    df = pd.read_csv(path)  # independent reader: the CSV as a user opens it
    assert list(df.columns) == ["frame", "time_s", "label", "p_other", "p_groom", "p_rear"]
    assert df["time_s"].iloc[30] == pytest.approx(1.0)
    back = results.read_behavior(path, ["groom", "rear"])
    np.testing.assert_array_equal(back["labels"], probs.argmax(1))
    np.testing.assert_allclose(back["probs"], probs, atol=5e-5)
    assert back["fps"] == pytest.approx(30.0, rel=1e-5)  # times are rounded to 0.1 ms
    with pytest.raises(InputError, match="lacks columns"):
        results.read_behavior(path, ["groom", "sniff"])


def test_stage1_embeddings_and_icl_round_trip(tmp_path):
    p_action = np.linspace(0, 1, 50, dtype=np.float32)
    p_class = np.stack([1 - p_action, p_action], 1)
    results.write_stage1(tmp_path / "s1.h5", p_action, p_class, 25.0, "m.pt")
    s = results.read_stage1(tmp_path / "s1.h5")
    assert s["fps"] == 25.0 and np.array_equal(s["p_class"], p_class)

    emb = np.random.default_rng(1).normal(size=(4, 8))
    results.write_embeddings(tmp_path / "e.h5", emb, np.arange(4), np.arange(4) + 10, {"m": "x"})
    e = results.read_embeddings(tmp_path / "e.h5")
    np.testing.assert_allclose(e["embeddings"], emb.astype(np.float16).astype(np.float32))

    results.write_descriptions(tmp_path / "d.jsonl", [{"clip": 0, "text": "a"}, {"clip": 1}])
    assert (tmp_path / "d.jsonl").read_text().count("\n") == 2
    assert results.read_descriptions(tmp_path / "d.jsonl")[0]["text"] == "a"


def test_clips_are_written_one_clip_at_a_time(tmp_path):
    frames = np.random.default_rng(2).integers(0, 255, (3, 2, 8, 8, 3), dtype=np.uint8)
    index = np.array([[0, 5], [10, 15], [20, 25]])
    results.write_clips(
        tmp_path / "c.h5", iter(frames), [0, 10, 20], [10, 20, 30], index, (2, 8, 8, 3), {"a": 1}
    )
    d = results.read_clips(tmp_path / "c.h5")
    assert np.array_equal(d["frames"], frames) and d["n_clips"] == 3 and d["a"] == 1
    assert np.array_equal(results.read_clip_frames(tmp_path / "c.h5", [2])[0], frames[2])
