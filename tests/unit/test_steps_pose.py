"""The ingest steps as the workflow calls them, on the real demo recordings."""

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from ethoflow.errors import InputError
from ethoflow.results import read_labels
from ethoflow.sheet import annotation_params, session_params
from ethoflow.steps import pose as steps

REPO = Path(__file__).resolve().parents[2]
CFG = yaml.safe_load((REPO / "config/config.yaml").read_text())
DATA = REPO / "tests/data"


def preprocess(
    tmp_path, setup, pose, video="", fmt="auto", frames=None, session=None, cfg=None, **pose_cfg
):
    out = tmp_path / "pose.h5"
    steps.pose_preprocess(
        pose=str(pose),
        video=str(video) if video else [],
        pose_h5=str(out),
        qc=str(tmp_path / "qc.tsv"),
        fmt=fmt,
        setup=cfg or CFG["setups"][setup],
        pose_cfg={**CFG["pose"], **pose_cfg},
        features_cfg=CFG["features"],
        frames=frames or {"start": 0, "end": None},
        fps_tolerance=CFG["clips"]["fps_tolerance"],
        session=session,
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


FREEZE_POSE = DATA / "behaviordepot_freezing/demo1_tracking.csv"
FREEZE_LABELS = DATA / "behaviordepot_freezing/demo1_freezing_labels.csv"
OPENFIELD = DATA / "dlc_openfield/openfield_dlc_inference_example.csv"
OPENFIELD_VIDEO = DATA / "dlc_openfield/m3v1mp4.mp4"


def session(row: dict, setup: str) -> dict:
    return session_params({"subject": "m1", "session": "s1", **row}, setup, CFG["setups"][setup])


def test_session_fps_and_px_per_cm_from_the_sheet_else_the_setup(tmp_path):
    """A 30 fps session in the 50 fps fearcond setup: the h5 carries the session's own fps;
    px_per_cm is the sheet's, else the setup's, else NaN."""
    out = preprocess(tmp_path, "fearcond", FREEZE_POSE, session=session({"fps": "30"}, "fearcond"))
    with h5py.File(out, "r") as f:
        assert f.attrs["fps"] == 30.0 and np.isnan(f.attrs["px_per_cm"])
    row = {"fps": "", "px_per_cm": "12.5"}
    out = preprocess(tmp_path, "fearcond", FREEZE_POSE, session=session(row, "fearcond"))
    with h5py.File(out, "r") as f:
        assert f.attrs["fps"] == 50.0 and f.attrs["px_per_cm"] == 12.5
    cfg = {**CFG["setups"]["fearcond"], "px_per_cm": 8.0}
    out = preprocess(
        tmp_path, "fearcond", FREEZE_POSE, cfg=cfg, session=session_params({}, "fearcond", cfg)
    )
    with h5py.File(out, "r") as f:
        assert f.attrs["px_per_cm"] == 8.0


def test_the_video_gives_the_fps_and_must_agree_with_the_sheet(tmp_path):
    cfg = {**CFG["setups"]["openfield"], "fps": 50}  # the video (30 fps) wins
    out = preprocess(tmp_path, "openfield", OPENFIELD, OPENFIELD_VIDEO, cfg=cfg)
    with h5py.File(out, "r") as f:
        assert abs(f.attrs["fps"] - 30.0) < 0.01
    (tmp_path / "bad").mkdir()
    with pytest.raises(InputError) as err:
        preprocess(
            tmp_path / "bad",
            "openfield",
            OPENFIELD,
            OPENFIELD_VIDEO,
            session=session({"fps": "25"}, "openfield"),
        )
    assert str(err.value) == (
        f"{OPENFIELD_VIDEO}: video runs at 30.000 fps but the sheet's fps column says 25 "
        "(beyond clips.fps_tolerance 0.01)"
    )
    assert not (tmp_path / "bad/pose.h5").exists()


def test_end_frame_past_the_recording_is_an_error_not_clamped(tmp_path):
    with pytest.raises(InputError) as err:
        preprocess(tmp_path, "fearcond", FREEZE_POSE, frames={"start": 3000, "end": 6500})
    assert str(err.value) == (
        f"{FREEZE_POSE}: end_frame 6500 of the sheet is beyond the recording (the pose file has "
        "6000 frames)"
    )
    with pytest.raises(InputError, match="start_frame 7000 of the sheet is beyond the record"):
        preprocess(tmp_path, "fearcond", FREEZE_POSE, frames={"start": 7000, "end": None})
    out = preprocess(tmp_path, "fearcond", FREEZE_POSE, frames={"start": 3000, "end": 6000})
    with h5py.File(out, "r") as f:
        assert f["keypoints"].shape[0] == 3000


def test_missing_head_keypoint_names_the_setup_the_file_and_the_names(tmp_path):
    cfg = {**CFG["setups"]["openfield"], "skeleton": ["nose", "leftear", "rightear", "tailbase"]}
    cfg["head"] = "nose"
    with pytest.raises(InputError) as err:
        preprocess(tmp_path, "openfield", OPENFIELD, cfg=cfg, session={"setup": "openfield"})
    msg = str(err.value)
    assert msg.startswith(f"{OPENFIELD}: keypoint(s) of the skeleton missing from the file: ")
    assert "['nose']; among them the setup's 'nose' (head)" in msg
    assert "skeleton of setup 'openfield'" in msg


def freezing_labels(tmp_path, ann, n_extra_s=None, sess=None):
    out = preprocess(tmp_path, "fearcond", FREEZE_POSE)
    labels = tmp_path / "labels.csv"
    steps.labels(
        pose_h5=str(out),
        annotations=str(ann),
        labels=str(labels),
        rule=str(ann),
        behaviors=["freezing"],
        setup=CFG["setups"]["fearcond"],
        kinematic=CFG["kinematic_labels"],
        session=sess,
    )
    return read_labels(labels, ["freezing"])


@pytest.mark.parametrize(("extra", "fails"), [(40, False), (2000, True)])
def test_annotations_longer_than_the_pose(tmp_path, extra, fails):
    """Up to 1 s (50 frames here) past the pose is slack; 2,000 frames is another recording."""
    df = pd.read_csv(FREEZE_LABELS)
    longer = pd.concat([df, df.iloc[:extra]], ignore_index=True)
    if "frame" in longer:
        longer["frame"] = np.arange(len(longer))
    ann = tmp_path / "longer.csv"
    longer.to_csv(ann, index=False)
    if not fails:
        assert len(freezing_labels(tmp_path, ann)) == 6000
        return
    with pytest.raises(InputError) as err:
        freezing_labels(tmp_path, ann)
    assert str(err.value) == (
        f"{ann}: annotations reach frame 8000 but the pose has 6000 frames: 2000 frames (40.0 s "
        "at 50 fps) longer than the pose, beyond the tolerance of 1 s (annotations of another "
        "recording, or timed at another fps?)"
    )


def test_the_sheet_subject_picks_its_boris_subject(tmp_path):
    from ethoflow.boris import AGGREGATED_COLUMNS

    rows = []
    for subject, (a, b) in (("m1", (10.0, 20.0)), ("m2", (40.0, 50.0))):
        r = dict.fromkeys(AGGREGATED_COLUMNS, "")
        r.update(
            {"Observation id": "obs1", "Subject": subject, "Behavior": "freezing"}
            | {"Behavior type": "STATE", "Start (s)": f"{a:.3f}", "Stop (s)": f"{b:.3f}"}
        )
        rows.append(r)
    ann = tmp_path / "boris.csv"
    pd.DataFrame(rows, columns=AGGREGATED_COLUMNS).to_csv(ann, index=False)

    def frames(row):
        y = freezing_labels(tmp_path, ann, sess=annotation_params(row))
        return np.flatnonzero(y)[[0, -1]].tolist()

    assert frames({"subject": "m2"}) == [2000, 2499]
    assert frames({"subject": "M1"}) == [500, 999]
    assert frames({"subject": "cage7", "annotation_subjects": "m2"}) == [2000, 2499]
    assert frames({"subject": "m1", "annotation_subjects": "*"}) == [500, 2499]
    with pytest.raises(InputError) as err:
        frames({"subject": "cage7"})
    assert str(err.value).startswith(
        f"{ann}: holds the events of 2 subjects ['m1', 'm2'], none named like the session's "
        "subject 'cage7': name the ones of this session in the sheet's annotation_subjects"
    )
