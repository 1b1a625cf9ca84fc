"""SimBA targets_inserted CSVs in: pose and feature columns, then one 0/1 column per behavior."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethoflow.annotations import load_annotations
from ethoflow.errors import InputError
from ethoflow.simba import read_targets

OPENFIELD = Path(__file__).resolve().parents[1] / "data/dlc_openfield"
N = 2330  # frames of the openfield recording (PROVENANCE.md)


def simba_file(path: Path, targets: dict[str, np.ndarray], with_index: bool = True) -> Path:
    """A targets_inserted file as SimBA writes it for the openfield mouse: its DLC pose as
    ``<bodypart>_1_x/_y/_p``, a few movement features, then the annotations."""
    dlc = pd.read_csv(
        OPENFIELD / "openfield_dlc_inference_example.csv", header=[0, 1, 2], index_col=0
    )
    df = pd.DataFrame(index=dlc.index)
    for part in ("snout", "leftear", "rightear", "tailbase"):
        for coord, short in (("x", "x"), ("y", "y"), ("likelihood", "p")):
            df[f"{part}_1_{short}"] = dlc.xs((part, coord), axis=1, level=[1, 2]).iloc[:, 0]
    move = np.hypot(df.snout_1_x.diff(), df.snout_1_y.diff()).fillna(0)
    df["Movement_snout_1"] = move
    df["Mean_movement_snout_1_1s"] = move.rolling(30, min_periods=1).mean()
    df["Low_prob_detections_0.1"] = (df.filter(like="_p") < 0.1).sum(axis=1)
    for name, col in targets.items():
        df[name] = col.astype(int)
    df.to_csv(path, index=with_index)
    return path


def bouts(seed: int, n_bouts: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    on = np.zeros(N, bool)
    for s in rng.integers(0, N - 90, n_bouts):
        on[s : s + rng.integers(10, 90)] = True
    return on


@pytest.fixture
def targets():
    return {"Rearing": bouts(1, 12), "Grooming": bouts(2, 8), "Freezing": bouts(3, 5)}


def test_targets_become_labels_first_listed_wins(tmp_path, targets):
    path = simba_file(tmp_path / "m3v1mp4.csv", targets)
    # the detection count stays 0/1 in this video: a 0/1 column that is not a behavior
    assert set(pd.read_csv(path)["Low_prob_detections_0.1"]) == {0, 1}
    frames, got = read_targets(path, {"rearing", "grooming", "freezing"})
    assert list(got.columns) == ["Rearing", "Grooming", "Freezing"]
    np.testing.assert_array_equal(frames, np.arange(N))
    behaviors = ["groom", "rear"]
    bmap = {"Rearing": "rear", "Grooming": "groom", "Freezing": "other"}
    y = load_annotations(path, N, behaviors, 30.0, behavior_map=bmap)
    want = np.where(targets["Grooming"], 1, np.where(targets["Rearing"], 2, 0))
    np.testing.assert_array_equal(y, want)
    assert (y == 1).any() and (y == 2).any()
    # no index column: row i = frame i
    path2 = simba_file(tmp_path / "noindex.csv", targets, with_index=False)
    np.testing.assert_array_equal(
        load_annotations(path2, N, behaviors, 30.0, "simba_csv", behavior_map=bmap), want
    )


def test_bad_simba_files_are_refused(tmp_path, targets):
    behaviors, bmap = ["rear", "groom"], {"Rearing": "rear", "Grooming": "groom"}
    good = simba_file(tmp_path / "good.csv", targets)
    with pytest.raises(InputError, match=r"good.csv: label 'freezing' is not in the behavior"):
        load_annotations(good, N, behaviors, 30.0, behavior_map=bmap)
    with pytest.raises(InputError, match=r"good.csv: none of the trailing 0/1 columns"):
        load_annotations(good, N, ["attack"], 30.0)
    feats = simba_file(tmp_path / "features_extracted.csv", {})
    with pytest.raises(
        InputError,
        match="features_extracted.csv: .*a features_extracted file rather than targets_inserted",
    ):
        load_annotations(feats, N, behaviors, 30.0, "simba_csv")
    text = good.read_text()
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: len(text) // 2 - 7])  # cut mid-row
    with pytest.raises(InputError, match="cut.csv"):
        load_annotations(cut, N, behaviors, 30.0, behavior_map={**bmap, "Freezing": "other"})
    plain = tmp_path / "labels.csv"
    plain.write_text("frame,behavior\n0,rear\n")
    with pytest.raises(InputError, match="labels.csv: not a SimBA targets_inserted file"):
        load_annotations(plain, N, behaviors, 30.0, "simba_csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty.csv: empty file"):
        load_annotations(empty, N, behaviors, 30.0, "simba_csv")
    wrong = tmp_path / "x.csv"
    with pytest.raises(InputError, match="unknown annotation format 'simba'"):
        load_annotations(wrong, N, behaviors, 30.0, "simba")
