import datetime
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ethoflow.errors import InputError
from ethoflow.pose_io import (
    Pose,
    check_length,
    detect_format,
    load_pose,
)
from ethoflow.results import read_pose, write_pose
from ethoflow.vocab import READABLE_POSE_FORMATS

DATA = Path(__file__).resolve().parents[1] / "data"
OPENFIELD = DATA / "dlc_openfield" / "openfield_dlc_inference_example.csv"
OPENFIELD_MISSING = DATA / "dlc_openfield" / "openfield_dlc_inference_example_missingdata.csv"
MABE = DATA / "mabe22_triplet" / "EGS8X2MN4SSUGFWAV976.h5"
DEPOT = DATA / "behaviordepot_freezing" / "demo1_tracking.csv"
OPENFIELD_PARTS = ["snout", "leftear", "rightear", "tailbase"]


def _openfield_table():
    """The openfield CSV read independently with pandas: xy [T, K, 2], likelihood [T, K]."""
    df = pd.read_csv(OPENFIELD, header=[0, 1, 2], index_col=0)
    v = df.to_numpy(np.float64).reshape(len(df), 4, 3)
    return v[..., :2], v[..., 2]


def _two_mice(n=400):
    """Two realistic mice: the openfield mouse and a shifted copy, with a gap in mouse b."""
    xy, lik = _openfield_table()
    xy, lik = xy[:n], lik[:n]
    kp = np.stack([xy, xy + [60.0, 25.0]], 1)
    conf = np.stack([lik, lik], 1)
    kp[50:60, 1] = np.nan
    return kp, conf


def test_formats_and_detection(tmp_path):
    assert set(READABLE_POSE_FORMATS) == {
        "dlc_csv",
        "dlc_h5",
        "sleap_slp",
        "sleap_h5",
        "calms21_json",
        "nwb",
    }
    assert detect_format(OPENFIELD) == "dlc_csv"
    assert detect_format(DEPOT) == "dlc_csv"
    assert detect_format(MABE) == "dlc_h5"


def test_dlc_openfield_csv_matches_pandas():
    pose = load_pose(OPENFIELD, fps=30)
    xy, lik = _openfield_table()
    assert pose.keypoints.shape == (2330, 1, 4, 2)
    assert pose.keypoint_names == OPENFIELD_PARTS
    assert pose.source_format == "dlc_csv" and pose.fps == 30
    np.testing.assert_allclose(pose.keypoints[:, 0], xy, rtol=1e-6)
    np.testing.assert_allclose(pose.confidence[:, 0], lik, rtol=1e-6)


def test_dlc_missingdata_variant_has_nan_only_in_blank_cells():
    full = load_pose(OPENFIELD, fps=30)
    miss = load_pose(OPENFIELD_MISSING, fps=30)
    nan = np.isnan(miss.keypoints).any(-1)
    assert np.argwhere(nan).tolist() == [[0, 0, 0], [1, 0, 0]]  # snout, rows 0 and 1
    assert (miss.confidence[nan] == 0).all()
    np.testing.assert_array_equal(miss.keypoints[2:], full.keypoints[2:])


def test_mabe_h5_zero_is_missing_and_no_likelihood():
    pose = load_pose(MABE, fps=30)
    assert pose.keypoints.shape == (1800, 3, 12, 2)
    assert pose.animal_ids == ["mouse1", "mouse2", "mouse3"]
    assert pose.keypoint_names[0] == "nose" and pose.keypoint_names[-1] == "tail tip"
    missing = np.isnan(pose.keypoints).any(-1)
    # PROVENANCE.md: 6,744 of 64,800 keypoint-frames missing, per mouse 4296 / 504 / 1944
    assert missing.sum() == 6744
    assert missing.sum(axis=(0, 2)).tolist() == [4296, 504, 1944]
    assert (pose.confidence[missing] == 0).all() and (pose.confidence[~missing] == 1).all()
    raw = pd.read_hdf(MABE).to_numpy()
    assert pose.keypoints[0, 0, 0, 0] == raw[0, 0] or missing[0, 0, 0]


def test_behaviordepot_skeleton_reorder_and_fuzzy_names():
    pose = load_pose(DEPOT, fps=50)
    assert pose.keypoints.shape == (6000, 1, 8, 2)
    sub = load_pose(
        DEPOT,
        fps=50,
        skeleton=[
            "Tail",
            "Mid-Back",
            "Right Leg",
            "Left Leg",
            "tail base",
            "right_ear",
            "Left Ear",
            "nose",
        ],
        animals=["m1"],
    )
    assert sub.keypoint_names[0] == "Tail" and sub.animal_ids == ["m1"]
    np.testing.assert_array_equal(sub.keypoints[:, 0, 0], pose.keypoints[:, 0, 7])
    np.testing.assert_array_equal(sub.keypoints[:, 0, 4], pose.keypoints[:, 0, 3])  # Tailbase
    np.testing.assert_array_equal(sub.keypoints[:, 0, 7], pose.keypoints[:, 0, 0])  # Nose


def test_skeleton_and_animal_mismatch_name_the_file_and_names():
    with pytest.raises(InputError) as err:
        load_pose(OPENFIELD, fps=30, skeleton=["snout", "leftear", "rightear", "tail"])
    msg = str(err.value)
    assert str(OPENFIELD) in msg and "'tailbase'" in msg and "'tail'" in msg
    with pytest.raises(InputError, match="mouse4"):
        load_pose(MABE, fps=30, animals=["mouse1", "mouse2", "mouse4"])
    with pytest.raises(InputError, match="animal"):
        load_pose(OPENFIELD, fps=30, animals=["a", "b"])


def test_animals_reorder_multi_animal():
    pose = load_pose(MABE, fps=30)
    re = load_pose(MABE, fps=30, animals=["mouse3", "mouse1", "mouse2"])
    np.testing.assert_array_equal(re.keypoints[:, 0], pose.keypoints[:, 2])
    assert re.animal_ids == ["mouse3", "mouse1", "mouse2"]


def _dlc_frame(kp, conf, animals, parts, likelihood=True):
    coords = ["x", "y", "likelihood"] if likelihood else ["x", "y"]
    cols = pd.MultiIndex.from_product(
        [["DLC_scorer"], animals, parts, coords],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    vals = np.concatenate([kp, conf[..., None]], -1) if likelihood else kp
    return pd.DataFrame(vals.reshape(len(kp), -1), columns=cols)


def test_multi_animal_dlc_csv_and_h5_roundtrip(tmp_path):
    kp, conf = _two_mice()
    df = _dlc_frame(kp, conf, ["a", "b"], OPENFIELD_PARTS)
    df.to_csv(tmp_path / "ma.csv")
    df.to_hdf(tmp_path / "ma.h5", key="df_with_missing", mode="w")
    for name, fmt in (("ma.csv", "dlc_csv"), ("ma.h5", "dlc_h5")):
        pose = load_pose(tmp_path / name, fps=25)
        assert pose.source_format == fmt and pose.animal_ids == ["a", "b"]
        np.testing.assert_allclose(pose.keypoints, kp, rtol=1e-6)
        np.testing.assert_allclose(pose.confidence[:, 0], conf[:, 0], rtol=1e-6)
        assert (pose.confidence[50:60, 1] == 0).all()


def _sleap_labels(kp, conf, names, extra_track=True):
    import sleap_io as sio

    arr = np.concatenate([kp, conf[..., None]], -1)
    if extra_track:  # a spurious short track, as SLEAP's tracker leaves them
        spur = np.full_like(arr[:, :1], np.nan)
        spur[100:103] = arr[100:103, :1] + [[200.0, 0, 0]]
        arr = np.concatenate([arr, spur], 1)
        names = [*names, "spurious"]
    video = sio.Video(filename=str(DATA / "dlc_openfield" / "m3v1mp4.mp4"), open_backend=False)
    return sio.Labels.from_numpy(
        arr,
        videos=[video],
        skeletons=sio.Skeleton(list(OPENFIELD_PARTS)),
        tracks=[sio.Track(n) for n in names],
        return_confidence=True,
    )


def test_sleap_slp_written_by_sleap_io(tmp_path):
    import sleap_io as sio

    kp, conf = _two_mice(300)
    sio.save_slp(_sleap_labels(kp, conf, ["mouse_a", "mouse_b"]), str(tmp_path / "p.slp"))
    assert detect_format(tmp_path / "p.slp") == "sleap_slp"
    pose = load_pose(tmp_path / "p.slp", fps=30)
    assert pose.animal_ids == ["mouse_a", "mouse_b"]  # spurious track dropped, order kept
    np.testing.assert_allclose(pose.keypoints, kp, rtol=1e-5)
    np.testing.assert_allclose(pose.confidence[:, 0], conf[:, 0], rtol=1e-5)
    flipped = load_pose(tmp_path / "p.slp", fps=30, animals=["mouse_b", "mouse_a"])
    np.testing.assert_allclose(flipped.keypoints[:, 0], kp[:, 1], rtol=1e-5)


def test_sleap_analysis_h5(tmp_path):
    import sleap_io as sio

    kp, conf = _two_mice(300)
    labels = _sleap_labels(kp, conf, ["mouse_a", "mouse_b"], extra_track=False)
    sio.save_analysis_h5(labels, str(tmp_path / "p.analysis.h5"))
    assert detect_format(tmp_path / "p.analysis.h5") == "sleap_h5"
    pose = load_pose(tmp_path / "p.analysis.h5", fps=30)
    assert pose.animal_ids == ["mouse_a", "mouse_b"]
    np.testing.assert_allclose(pose.keypoints, kp, rtol=1e-5)
    assert np.isnan(pose.keypoints[50:60, 1]).all() and (pose.confidence[50:60, 1] == 0).all()


def _write_nwb(path, kp, conf, names, rate=30.0):
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(
        session_description="test",
        identifier="test",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )
    mod = nwb.create_processing_module("behavior", "pose")
    skels, pes = [], []
    for a, name in enumerate(names):
        sk = Skeleton(name=f"skeleton_{name}", nodes=OPENFIELD_PARTS, edges=np.zeros((0, 2), "u1"))
        series = [
            PoseEstimationSeries(
                name=p,
                description=p,
                data=kp[:, a, k],
                unit="pixels",
                reference_frame="top left",
                rate=rate,
                confidence=conf[:, a, k],
                confidence_definition="likelihood",
            )
            for k, p in enumerate(OPENFIELD_PARTS)
        ]
        skels.append(sk)
        pes.append(PoseEstimation(name=name, pose_estimation_series=series, skeleton=sk))
    mod.add(Skeletons(skeletons=skels))
    for p in pes:
        mod.add(p)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_nwb_ndx_pose(tmp_path):
    kp, conf = _two_mice(200)
    _write_nwb(tmp_path / "p.nwb", kp, conf, ["mouse_a", "mouse_b"], rate=25.0)
    assert detect_format(tmp_path / "p.nwb") == "nwb"
    pose = load_pose(tmp_path / "p.nwb")
    assert pose.fps == 25.0 and pose.animal_ids == ["mouse_a", "mouse_b"]
    assert pose.keypoint_names == OPENFIELD_PARTS  # skeleton order, not alphabetical
    np.testing.assert_allclose(pose.keypoints, kp, rtol=1e-5)


def _calms21(path, seqs):
    data = {"annotator-id_0": {}}
    for key, (kp, ann) in seqs.items():
        data["annotator-id_0"][key] = {
            "keypoints": kp.tolist(),
            "scores": np.full((len(kp), 2, 7), 0.9).tolist(),
            "annotations": ann.tolist(),
            "metadata": {"vocab": {"attack": 0, "investigation": 1, "mount": 2, "other": 3}},
        }
    Path(path).write_text(json.dumps(data))


def test_calms21_json_layout_and_sequences(tmp_path):
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 500, (40, 2, 2, 7))  # [T, mice, (x, y), keypoints]
    ann = np.full(40, 3)
    _calms21(tmp_path / "one.json", {"task1/train/mouse001_task1_annotator1": (kp, ann)})
    pose = load_pose(tmp_path / "one.json")
    assert detect_format(tmp_path / "one.json") == "calms21_json"
    assert pose.keypoints.shape == (40, 2, 7, 2) and pose.fps == 30
    assert pose.animal_ids == ["resident", "intruder"] and pose.keypoint_names[-1] == "tail_base"
    np.testing.assert_allclose(pose.keypoints[5, 1, 3], [kp[5, 1, 0, 3], kp[5, 1, 1, 3]], 1e-6)
    _calms21(tmp_path / "two.json", {"task1/test/s1": (kp, ann), "task1/test/s2": (kp + 1, ann)})
    with pytest.raises(InputError, match="2 sequences"):
        load_pose(tmp_path / "two.json")
    s2 = load_pose(tmp_path / "two.json", sequence="s2")
    np.testing.assert_allclose(s2.keypoints, pose.keypoints + 1, rtol=1e-6)


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file") as err:
        load_pose(empty, fps=30)
    assert str(empty) in str(err.value)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello\nworld\n")
    with pytest.raises(InputError, match="unknown pose format"):
        load_pose(txt, fps=30)
    with pytest.raises(InputError, match="labelled 'dlc_h5'"):
        load_pose(OPENFIELD, "dlc_h5", fps=30)
    with pytest.raises(InputError, match="unknown pose format 'deeplabcut'"):
        load_pose(OPENFIELD, "deeplabcut", fps=30)
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(MABE.read_bytes()[:20000])
    with pytest.raises(InputError, match="truncated or corrupt") as err:
        load_pose(trunc, fps=30)
    assert str(trunc) in str(err.value)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(InputError, match="not HDF5"):
        load_pose(garbage, fps=30)
    with pytest.raises(InputError, match="not found"):
        load_pose(tmp_path / "missing.csv", fps=30)
    with pytest.raises(InputError, match="frame rate"):
        load_pose(OPENFIELD)


def test_animal_nan_throughout(tmp_path):
    kp, conf = _two_mice(100)
    kp[:, 1] = np.nan
    _dlc_frame(kp, conf, ["a", "b"], OPENFIELD_PARTS).to_csv(tmp_path / "nan.csv")
    with pytest.raises(InputError, match=r"\['b'\].*NaN throughout"):
        load_pose(tmp_path / "nan.csv", fps=30)


def test_check_length():
    assert check_length(1800, 1801, 3, MABE) == 1  # the MABe clip
    assert check_length(2330, 2330, 0) == 0
    assert check_length(1805, 1801, 5) == -4
    with pytest.raises(InputError, match="shorter") as err:
        check_length(1800, 1801, 0, MABE)
    assert str(MABE) in str(err.value)
    with pytest.raises(InputError, match="longer"):
        check_length(2000, 1801, 3, MABE)


def test_pose_h5_roundtrip_and_atomic(tmp_path):
    pose = load_pose(MABE, fps=30)
    feats = np.random.default_rng(1).normal(size=(1800, 3)).astype(np.float32)
    out = tmp_path / "pose" / "s.h5"
    write_pose(out, pose, feats, ["f1", "f2", "f3"], extra_attrs={"n_video_frames": 1801})
    back, f2, names = read_pose(out)
    np.testing.assert_array_equal(back.keypoints, pose.keypoints)
    np.testing.assert_array_equal(back.confidence, pose.confidence)
    np.testing.assert_array_equal(f2, feats)
    assert names == ["f1", "f2", "f3"] and back.animal_ids == pose.animal_ids
    assert back.keypoint_names == pose.keypoint_names and back.fps == 30
    assert back.source_format == "dlc_h5" and back.source_path == str(MABE)
    with h5py.File(out) as f:
        assert f.attrs["n_video_frames"] == 1801 and f["keypoints"].dtype == np.float32
    bad = tmp_path / "pose" / "bad.h5"
    with pytest.raises(ValueError):
        write_pose(bad, pose, feats[:10], ["f1", "f2", "f3"])
    assert sorted(p.name for p in bad.parent.iterdir()) == ["s.h5"]
    with pytest.raises(InputError):
        read_pose(MABE)


def test_pose_validates_shapes():
    with pytest.raises(ValueError):
        Pose(np.zeros((3, 1, 2, 2)), np.zeros((3, 1, 3)), 30, ["a", "b"], ["m"])


@pytest.mark.parametrize(
    "setup,path,frames",
    [("triplet", MABE, 1800), ("openfield", OPENFIELD_MISSING, 2330), ("fearcond", DEPOT, 6000)],
)
def test_real_files_with_the_configured_setups(setup, path, frames):
    import yaml

    config = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
    if not config.is_file():
        pytest.skip("no config/config.yaml")
    setups = yaml.safe_load(config.read_text())["setups"]
    if setup not in setups:
        pytest.skip(f"config has no setup {setup}")
    s = setups[setup]
    pose = load_pose(path, "auto", fps=s["fps"], skeleton=s["skeleton"], animals=s["animals"])
    assert pose.keypoints.shape == (frames, len(s["animals"]), len(s["skeleton"]), 2)
    assert pose.keypoint_names == s["skeleton"] and pose.animal_ids == s["animals"]


# ------------------------------------------------ layouts a generic reader gets wrong
# (movement 0.15, evaluated for adoption, README "Pose readers": it renumbers the rows of a
# DLC table with a gap in its frame index, reads only the key ``df_with_missing`` and keeps
# every SLEAP track; these pin down what ethoflow's own readers do instead.)
def test_dlc_h5_frame_index_gap_keeps_frames_aligned(tmp_path):
    df = pd.read_csv(OPENFIELD, header=[0, 1, 2], index_col=0)
    df.drop(index=range(100, 110)).to_hdf(tmp_path / "gap.h5", key="df_with_missing", mode="w")
    pose = load_pose(tmp_path / "gap.h5", fps=30)
    # reference: pandas, the dropped rows put back as NaN at their frame numbers
    ref = df.copy()
    ref.loc[100:109] = np.nan
    v = ref.to_numpy(np.float64).reshape(len(ref), 4, 3)
    assert pose.n_frames == 2330  # frame i of the video is still row i
    assert np.isnan(pose.keypoints[100:110]).all() and (pose.confidence[100:110] == 0).all()
    keep = np.r_[0:100, 110:2330]
    np.testing.assert_allclose(pose.keypoints[keep, 0], v[keep, :, :2], rtol=1e-6)
    np.testing.assert_allclose(pose.confidence[keep, 0], v[keep, :, 2], rtol=1e-6)


def test_dlc_h5_under_another_key(tmp_path):
    raw = pd.read_hdf(MABE)
    raw.to_hdf(tmp_path / "tracks.h5", key="tracks", mode="w")
    pose = load_pose(tmp_path / "tracks.h5", fps=30)
    v = raw.to_numpy(np.float64).reshape(len(raw), 3, 12, 2)
    missing = (v == 0).all(-1)  # the MABe file writes a missing point as (0, 0)
    assert pose.animal_ids == ["mouse1", "mouse2", "mouse3"]
    assert (np.isnan(pose.keypoints).any(-1) == missing).all()
    np.testing.assert_allclose(pose.keypoints[~missing], v[~missing], rtol=1e-6)


SLEAP_PAIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "sleap_pair"


def _slp_tracks_with_h5py(path, tracks):
    """The predicted points of the named tracks of a .slp, read with h5py alone (format 1.2):
    xy [T, A, K, 2] (NaN where not visible) and score [T, A, K]."""
    with h5py.File(path, "r") as f:
        names = [json.loads(t)[1] for t in f["tracks_json"][()]]
        frames, inst, pts = f["frames"][()], f["instances"][()], f["pred_points"][()]
        nodes = len(json.loads(f["metadata"].attrs["json"])["nodes"])
    t = int(frames["frame_idx"].max()) + 1
    xy = np.full((t, len(tracks), nodes, 2), np.nan)
    score = np.zeros((t, len(tracks), nodes))
    frame_of = dict(zip(frames["frame_id"], frames["frame_idx"], strict=True))
    for row in inst:
        if row["track"] < 0 or names[row["track"]] not in tracks:
            continue
        a, fi = tracks.index(names[row["track"]]), frame_of[row["frame_id"]]
        p = pts[row["point_id_start"] : row["point_id_end"]]
        vis = p["visible"] & np.isfinite(p["x"]) & np.isfinite(p["y"])
        xy[fi, a][vis] = np.stack([p["x"], p["y"]], -1)[vis]
        score[fi, a][vis] = p["score"][vis]
    return xy, score


@pytest.mark.skipif(
    not (SLEAP_PAIR / "centered_pair_predictions.slp").is_file(),
    reason="../shared/data/sleap_pair (research-only licence, not in the repo) absent",
)
def test_sleap_fly_pair_from_shared():
    path = SLEAP_PAIR / "centered_pair_predictions.slp"
    pose = load_pose(path, fps=15)
    assert pose.animal_ids == ["1", "2"]  # the 25 short spurious tracks are dropped
    assert pose.keypoints.shape == (1100, 2, 24, 2) and pose.keypoint_names[0] == "head"
    xy, score = _slp_tracks_with_h5py(path, ["1", "2"])
    missing = np.isnan(xy).any(-1)
    assert (np.isnan(pose.keypoints).any(-1) == missing).all()
    np.testing.assert_allclose(pose.keypoints[~missing], xy[~missing], rtol=1e-5)
    np.testing.assert_allclose(pose.confidence, score, rtol=1e-5, atol=1e-6)
