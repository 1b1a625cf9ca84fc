"""The ingest steps as the workflow calls them, on the real demo recordings."""

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from ethoflow.errors import InputError
from ethoflow.results import read_labels
from ethoflow.steps import pose as steps

REPO = Path(__file__).resolve().parents[2]
CFG = yaml.safe_load((REPO / "config/config.yaml").read_text())
DATA = REPO / "tests/data"


def preprocess(tmp_path, setup, pose, video="", fmt="auto", frames=None, **pose_cfg):
    out = tmp_path / "pose.h5"
    steps.pose_preprocess(
        pose=str(pose),
        video=str(video) if video else [],
        pose_h5=str(out),
        qc=str(tmp_path / "qc.tsv"),
        fmt=fmt,
        setup=CFG["setups"][setup],
        pose_cfg={**CFG["pose"], **pose_cfg},
        features_cfg=CFG["features"],
        frames=frames or {"start": 0, "end": None},
        fps_tolerance=CFG["clips"]["fps_tolerance"],
    )
    return out


def test_triplet_with_video_and_frame_range(tmp_path):
    out = preprocess(
        tmp_path,
        "triplet",
        DATA / "mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5",
        DATA / "mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4",
        frames={"start": 1200, "end": None},
    )
    with h5py.File(out, "r") as f:
        assert f["keypoints"].shape == (600, 3, 12, 2)
        assert f.attrs["frame_offset"] == 1200 and f.attrs["n_source_frames"] == 1800
        assert f.attrs["n_video_frames"] == 1801
        assert np.isfinite(f["features"][()]).all()
    qc = pd.read_csv(tmp_path / "qc.tsv", sep="\t")
    assert len(qc) == 3 * 12 and qc.missing_fraction.between(0, 1).all()


def test_pose_shorter_than_video_beyond_tolerance_fails_without_output(tmp_path):
    with pytest.raises(
        InputError, match="EGS8X2MN4SSUGFWAV976.h5: pose has 1800 frames, video 2330"
    ):
        preprocess(
            tmp_path,
            "triplet",
            DATA / "mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5",
            DATA / "dlc_openfield/m3v1mp4.mp4",
        )
    assert not (tmp_path / "pose.h5").exists() and not (tmp_path / "qc.tsv").exists()


def test_real_freezing_labels_are_cropped_like_the_pose(tmp_path):
    pose = DATA / "behaviordepot_freezing/demo1_tracking.csv"
    ann = DATA / "behaviordepot_freezing/demo1_freezing_labels.csv"
    out = preprocess(tmp_path, "fearcond", pose, frames={"start": 3000, "end": None})
    labels = tmp_path / "labels.csv"
    steps.labels(
        pose_h5=str(out),
        annotations=str(ann),
        labels=str(labels),
        rule=str(ann),
        behaviors=["freezing"],
        setup=CFG["setups"]["fearcond"],
        kinematic=CFG["kinematic_labels"],
    )
    y = read_labels(labels, ["freezing"])
    truth = pd.read_csv(ann)["behavior"].to_numpy()[3000:] == "freezing"
    assert len(y) == 3000 and ((y == 1) == truth).all()


def test_rule_based_labels_for_the_open_field(tmp_path):
    out = preprocess(
        tmp_path,
        "openfield",
        DATA / "dlc_openfield/openfield_dlc_inference_example_missingdata.csv",
        DATA / "dlc_openfield/m3v1mp4.mp4",
    )
    labels = tmp_path / "labels.csv"
    steps.labels(
        pose_h5=str(out),
        annotations=[],
        labels=str(labels),
        rule="rule:kinematic",
        behaviors=["locomotion", "immobile"],
        setup=CFG["setups"]["openfield"],
        kinematic=CFG["kinematic_labels"],
    )
    y = read_labels(labels, ["locomotion", "immobile"])
    assert len(y) == 2330
    counts = np.bincount(y, minlength=3)
    assert (counts > 50).all(), counts
