"""One skeleton across projects: case/separator-insensitive names, per-setup aliases, extra
keypoints dropped and listed in QC, missing ones an error naming the file and the names."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ethoflow.config import defaults
from ethoflow.errors import InputError
from ethoflow.pose_io import load_pose, map_keypoints
from ethoflow.steps import pose as steps

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests/data"
OPENFIELD = DATA / "dlc_openfield/openfield_dlc_inference_example.csv"
DEPOT = DATA / "behaviordepot_freezing/demo1_tracking.csv"
MABE = DATA / "mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5"
SKELETON = ["snout", "leftear", "rightear", "tailbase"]  # the openfield setup's
ALIASES = {"snout": ["Nose", "nose"]}


def test_three_projects_one_skeleton():
    """BehaviorDEPOT's `Nose, Left Ear, ..., Mid-Back`, MABe's `nose, left ear, ..., tail
    base` and DLC's `snout, leftear, ...` all read as the openfield skeleton."""
    ref = load_pose(DEPOT, fps=50)
    depot = load_pose(DEPOT, fps=50, skeleton=SKELETON, keypoint_aliases=ALIASES)
    assert depot.keypoint_names == SKELETON
    assert depot.dropped_keypoints == ["Left Leg", "Right Leg", "Mid-Back", "Tail"]
    for new, old in zip(SKELETON, ["Nose", "Left Ear", "Right Ear", "Tailbase"], strict=True):
        k = ref.keypoint_names.index(old)
        np.testing.assert_array_equal(
            depot.keypoints[:, 0, SKELETON.index(new)], ref.keypoints[:, 0, k]
        )
    mabe = load_pose(MABE, fps=30, skeleton=SKELETON, keypoint_aliases=ALIASES)
    assert mabe.keypoints.shape == (1800, 3, 4, 2) and len(mabe.dropped_keypoints) == 8
    assert "tail base" not in mabe.dropped_keypoints and "center back" in mabe.dropped_keypoints
    dlc = load_pose(OPENFIELD, fps=30, skeleton=SKELETON, keypoint_aliases=ALIASES)
    assert dlc.dropped_keypoints == []


def test_separators_and_case_match_but_abbreviations_need_an_alias():
    have = ["Nose", "Left Ear", "Mid-Back"]
    assert map_keypoints(Path("f.csv"), have, ["nose", "left_ear", "midback"]) == ([0, 1, 2], [])
    assert map_keypoints(Path("f.csv"), have, ["NOSE", "left.ear", "mid_back"])[0] == [0, 1, 2]
    with pytest.raises(
        InputError, match=r"f.csv: keypoint\(s\) of the skeleton missing from the file: \['l_ear'\]"
    ):
        map_keypoints(Path("f.csv"), have, ["nose", "l_ear"])
    idx, extra = map_keypoints(Path("f.csv"), have, ["nose", "l_ear"], {"l_ear": ["left ear"]})
    assert idx == [0, 1] and extra == ["Mid-Back"]
    with pytest.raises(InputError, match="several file keypoints match one skeleton keypoint"):
        map_keypoints(Path("f.csv"), ["nose", "snout"], ["Head"], {"Head": ["nose", "snout"]})


def test_missing_keypoint_names_the_file_and_the_names():
    with pytest.raises(InputError) as err:
        load_pose(OPENFIELD, fps=30, skeleton=[*SKELETON, "neck", "tail_tip"])
    msg = str(err.value)
    assert msg.startswith(str(OPENFIELD)) and "['neck', 'tail_tip']" in msg
    assert "keypoint_aliases" in msg


def test_pose_preprocess_lists_dropped_keypoints_in_qc(tmp_path):
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    setup = {**cfg["setups"]["openfield"], "fps": 50, "keypoint_aliases": ALIASES}
    qc = tmp_path / "qc.tsv"
    steps.pose_preprocess(
        pose=str(DEPOT),
        video=[],
        pose_h5=str(tmp_path / "pose.h5"),
        qc=str(qc),
        fmt="auto",
        setup=setup,
        pose_cfg=cfg["pose"],
        features_cfg=cfg["features"],
        frames={"start": 0, "end": None},
        fps_tolerance=0.01,
    )
    t = pd.read_csv(qc, sep="\t")
    kept, dropped = t[~t.dropped], t[t.dropped]
    assert kept.keypoint.tolist() == SKELETON and (kept.animal == "mouse").all()
    assert kept.missing_fraction.between(0, 1).all()
    assert dropped.keypoint.tolist() == ["Left Leg", "Right Leg", "Mid-Back", "Tail"]
    assert dropped.animal.isna().all() and dropped.missing_fraction.isna().all()


def test_config_defaults():
    d = defaults("setups")
    assert d["keypoint_aliases"] == {} and d["behavior_map"] == {}
