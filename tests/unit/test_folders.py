"""`ethoflow sheet`: a lab's folders of videos and tracking files -> a cohort sheet."""

import os
from pathlib import Path

import pandas as pd
import pytest

from ethoflow import cli
from ethoflow.errors import InputError
from ethoflow.folders import (
    COLUMNS,
    build_sheet,
    mp4_header,
    pair,
    video_header,
    walk,
    write_sheet,
)
from ethoflow.pose_io import load_pose
from ethoflow.sheet import check_sheet, read_sheet

DATA = Path(__file__).resolve().parents[1] / "data"
OPENFIELD = DATA / "dlc_openfield"
TRIPLET = DATA / "mabe22_triplet"

# every naming convention, as the tools write it (empty placeholders: pairing reads no file)
TREE = {
    # DeepLabCut, single animal: h5 + csv of one analysis, its labelled video and pickle
    "dlc/m1.mp4": "m1DLC_resnet50_openfieldOct30shuffle1_6000.h5",
    "dlc/m1DLC_resnet50_openfieldOct30shuffle1_6000.csv": None,
    "dlc/m1DLC_resnet50_openfieldOct30shuffle1_6000_labeled.mp4": None,
    "dlc/m1DLC_resnet50_openfieldOct30shuffle1_6000_meta.pickle": None,
    # DeepLabCut, multi-animal tracklets, filtered; csv only
    "dlc/m2.avi": "m2DLC_dlcrnetms5_triMar1shuffle1_200000_el_filtered.h5",
    "dlc/m3.mov": "m3DLC_dlcrnetms5_triMar1shuffle1_200000_bx.csv",
    # SLEAP: sleap-track output, analysis export (short and default name), a labels file
    "sleap/f1.mp4": "f1.mp4.predictions.slp",
    "sleap/f2.mov": "f2.analysis.h5",
    "sleap/f3.mkv": "f3.slp",
    "sleap/f4.mp4": "labels.v001.000_f4.analysis.h5",
    "sleap/f1.mp4.predictions.slp.mp4": None,  # sleap-render output
    # LightningPose: videos in one folder, predictions of a model in another
    "lp/videos/c1.mp4": "../model/video_preds/c1.csv",
    "lp/model/video_preds/c1_temporal_norm.csv": None,
    "lp/model/video_preds/c1_pca_singleview_error.csv": None,
    "lp/model/video_preds/labeled_videos/c1_labeled.mp4": None,
    # NWB with ndx-pose
    "nwb/n1.mp4": "n1.nwb",
    # one key in two folders: each video takes the file beside it
    "day1/m9.mp4": "m9DLC_resnet50_x_1000.h5",
    "day2/m9.mp4": "m9DLC_resnet50_x_1000.h5",
    # unpaired on both sides, and files that are no pose at all
    "extra/lonely.mp4": None,
    "extra/orphanDLC_resnet50_x_1000.h5": None,
    "extra/notes.csv": None,
    "extra/.hidden/ghost.mp4": None,
}


def make_tree(root: Path, tree: dict = TREE) -> Path:
    for rel, pose in tree.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
        if pose:
            q = (p.parent / pose).resolve()
            q.parent.mkdir(parents=True, exist_ok=True)
            q.touch()
    return root


def rows_by_video(df: pd.DataFrame, root: Path) -> dict:
    return {os.path.relpath(r.video, root): r for r in df.itertuples()}


def test_every_convention_pairs(tmp_path):
    root = make_tree(tmp_path / "lab")
    df, rep = build_sheet([root], setup="openfield", video_info=False)
    got = rows_by_video(df, root)
    expect = {
        "dlc/m1.mp4": ("dlc/m1DLC_resnet50_openfieldOct30shuffle1_6000.h5", "dlc_h5"),
        "dlc/m2.avi": ("dlc/m2DLC_dlcrnetms5_triMar1shuffle1_200000_el_filtered.h5", "dlc_h5"),
        "dlc/m3.mov": ("dlc/m3DLC_dlcrnetms5_triMar1shuffle1_200000_bx.csv", "dlc_csv"),
        "sleap/f1.mp4": ("sleap/f1.mp4.predictions.slp", "sleap_slp"),
        "sleap/f2.mov": ("sleap/f2.analysis.h5", "sleap_h5"),
        "sleap/f3.mkv": ("sleap/f3.slp", "sleap_slp"),
        "sleap/f4.mp4": ("sleap/labels.v001.000_f4.analysis.h5", "sleap_h5"),
        "lp/videos/c1.mp4": ("lp/model/video_preds/c1.csv", "auto"),  # empty: not sniffed
        "nwb/n1.mp4": ("nwb/n1.nwb", "nwb"),
        "day1/m9.mp4": ("day1/m9DLC_resnet50_x_1000.h5", "dlc_h5"),
        "day2/m9.mp4": ("day2/m9DLC_resnet50_x_1000.h5", "dlc_h5"),
    }
    assert set(got) == set(expect)
    for video, (pose, fmt) in expect.items():
        assert os.path.relpath(got[video].pose, root) == pose, video
        assert got[video].pose_format == fmt, video
    assert list(df.columns) == [*COLUMNS, "fps", "n_frames", "px_per_cm", "annotation_subjects"]
    assert got["day1/m9.mp4"].subject == "m9" and got["day1/m9.mp4"].session == "day1"
    assert got["day2/m9.mp4"].session == "day2"
    assert set(df.split) == {"predict"} and set(df.setup) == {"openfield"}
    assert not rep.errors
    assert [os.path.relpath(v, root) for v in rep.unpaired_videos] == ["extra/lonely.mp4"]
    assert [os.path.relpath(p, root) for p in rep.unpaired_pose] == [
        "extra/orphanDLC_resnet50_x_1000.h5"
    ]
    skipped = {os.path.relpath(p, root) for p in rep.skipped}
    assert "dlc/m1DLC_resnet50_openfieldOct30shuffle1_6000_labeled.mp4" in skipped
    assert "lp/model/video_preds/labeled_videos/c1_labeled.mp4" in skipped
    assert "lp/model/video_preds/c1_temporal_norm.csv" in skipped
    assert "sleap/f1.mp4.predictions.slp.mp4" in skipped
    assert not any("ghost" in f for f in walk([root]))


def test_lightning_pose_csv_sniffed_by_header(tmp_path):
    """A `<key>.csv` outside a predictions folder counts only with LightningPose's DLC-style
    header (`scorer` row); then it is read as dlc_csv."""
    (tmp_path / "c2.mp4").touch()
    (tmp_path / "c2.csv").write_text("scorer,heatmap_tracker\nbodyparts,nose\ncoords,x\n")
    (tmp_path / "c3.mp4").touch()
    (tmp_path / "c3.csv").write_text("frame,behavior\n0,other\n")  # labels, not pose
    pairs, rep = pair(walk([tmp_path]))
    assert [(Path(v).name, c.kind, c.fmt) for v, c in pairs] == [
        ("c2.mp4", "lightning_pose", "dlc_csv")
    ]
    assert [Path(v).name for v in rep.unpaired_videos] == ["c3.mp4"]


def test_two_candidates_are_an_error_unless_preferred(tmp_path, capsys):
    root = make_tree(
        tmp_path / "lab",
        {
            "a/a1.mp4": "a1DLC_resnet50_x_1000.h5",
            "a/a1.predictions.slp": None,
            "b/d3.mp4": "d3DLC_resnet50_x_1000.h5",
            "b/d3DLC_resnet50_x_1000_filtered.h5": None,
            "b/ok.mp4": "okDLC_resnet50_x_1000.h5",
        },
    )
    df, rep = build_sheet([root], setup="s", video_info=False)
    assert rep.errors
    assert {Path(v).name: [Path(c).name for c in cs] for v, cs in rep.ambiguous.items()} == {
        "a1.mp4": ["a1.predictions.slp", "a1DLC_resnet50_x_1000.h5"],
        "d3.mp4": ["d3DLC_resnet50_x_1000.h5", "d3DLC_resnet50_x_1000_filtered.h5"],
    }
    assert list(df.video.map(lambda v: Path(v).name)) == ["ok.mp4"]  # never a silent pick
    out = tmp_path / "sessions.tsv"
    assert cli.main(["sheet", str(root), "--setup", "s", "--no-video-info", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        "ERROR ambiguous" in err and "a1.mp4" in err and "d3DLC_resnet50_x_1000_filtered.h5" in err
    )
    assert not out.exists()
    # an explicit preference resolves both
    df, rep = build_sheet(
        [root], setup="s", video_info=False, prefer=("dlc_filtered", "sleap_predictions")
    )
    assert not rep.errors
    got = {Path(r.video).name: Path(r.pose).name for r in df.itertuples()}
    assert got["a1.mp4"] == "a1.predictions.slp"
    assert got["d3.mp4"] == "d3DLC_resnet50_x_1000_filtered.h5"
    with pytest.raises(InputError, match="unknown --prefer kind"):
        build_sheet([root], setup="s", video_info=False, prefer=("filtered",))


def test_pose_file_shared_by_two_videos_is_an_error(tmp_path):
    """Two videos with one key in one folder (m.mp4, m.avi) cannot both own m.nwb."""
    root = make_tree(tmp_path, {"m.mp4": "m.nwb", "m.avi": None})
    df, rep = build_sheet([root], setup="s", video_info=False)
    assert rep.errors and len(df) == 0
    assert [Path(p).name for p in rep.shared_pose] == ["m.nwb"]


def test_metadata_join_by_stem_and_path(tmp_path):
    root = make_tree(
        tmp_path / "lab",
        {
            "cage1/rec01.mp4": "rec01DLC_resnet50_x_1000.h5",
            "cage1/rec02.mp4": "rec02DLC_resnet50_x_1000.h5",
            "cage2/rec03.mp4": "rec03.nwb",
        },
    )
    meta = tmp_path / "meta.csv"
    rec02 = root / "cage1" / "rec02.mp4"
    meta.write_text(
        "video,subject,session,group,split,setup\n"
        "rec01,mouse_A,day1,control,train,\n"
        f"{rec02},mouse_A,day2,control,test,openfield\n"
        "rec99.mp4,mouse_Z,day1,drug,train,\n"
    )
    df, rep = build_sheet([root], metadata=meta, setup="openfield", video_info=False)
    got = {Path(r.video).name: r for r in df.itertuples()}
    assert (got["rec01.mp4"].subject, got["rec01.mp4"].session) == ("mouse_A", "day1")
    assert (got["rec01.mp4"].group, got["rec01.mp4"].split) == ("control", "train")
    assert got["rec01.mp4"].setup == "openfield"  # empty cell: --setup
    assert (got["rec02.mp4"].session, got["rec02.mp4"].split) == ("day2", "test")
    assert (got["rec03.mp4"].subject, got["rec03.mp4"].session) == ("rec03", "cage2")
    assert (got["rec03.mp4"].group, got["rec03.mp4"].split) == ("all", "predict")
    assert rep.metadata_unmatched == ["rec99.mp4"]
    assert [Path(v).name for v in rep.no_metadata] == ["rec03.mp4"]
    assert any("metadata row matches no video: rec99.mp4" in line for line in rep.lines())


def test_metadata_problems_name_the_file(tmp_path):
    root = make_tree(tmp_path / "lab", {"r.mp4": "r.nwb"})
    bad = tmp_path / "meta.csv"
    bad.write_text("name,subject\nr,m1\n")
    with pytest.raises(InputError, match="meta.csv: metadata needs a 'video' column"):
        build_sheet([root], metadata=bad, setup="s", video_info=False)
    bad.write_text("video,subject\nr,m1\nr,m2\n")
    with pytest.raises(InputError, match="more than once"):
        build_sheet([root], metadata=bad, setup="s", video_info=False)
    bad.write_text("")
    with pytest.raises(InputError, match="empty file"):
        build_sheet([root], metadata=bad, setup="s", video_info=False)
    with pytest.raises(InputError, match="no setup"):
        build_sheet([root], video_info=False)
    with pytest.raises(InputError, match="not a folder"):
        build_sheet([tmp_path / "nope"], setup="s")


def test_duplicate_sessions_are_an_error(tmp_path):
    root = make_tree(tmp_path, {"x/a/m.mp4": "m.nwb", "y/a/m.mp4": "m.nwb"})
    _, rep = build_sheet([root], setup="s", video_info=False)
    assert rep.errors and list(rep.duplicates) == ["m/a"]


@pytest.fixture
def demo_lab(tmp_path):
    """The real demo recordings laid out as DLC leaves them (links to tests/data)."""
    root = tmp_path / "lab"
    (root / "openfield").mkdir(parents=True)
    (root / "triplet").mkdir()
    links = {
        "openfield/m3v1mp4.mp4": OPENFIELD / "m3v1mp4.mp4",
        "openfield/m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv": OPENFIELD
        / "openfield_dlc_inference_example.csv",
        "triplet/EGS8X2MN4SSUGFWAV976.mp4": TRIPLET / "EGS8X2MN4SSUGFWAV976.mp4",
        "triplet/EGS8X2MN4SSUGFWAV976DLC_dlcscorer_el.h5": TRIPLET / "EGS8X2MN4SSUGFWAV976.h5",
    }
    for rel, src in links.items():
        (root / rel).symlink_to(src)
    return root


def test_real_videos_fill_fps_and_frames_and_the_sheet_reads_back(demo_lab, tmp_path):
    meta = tmp_path / "meta.tsv"
    meta.write_text(
        "video\tsubject\tsession\tsetup\tsplit\n"
        "m3v1mp4\tm3\tv1\topenfield\ttrain\n"
        "EGS8X2MN4SSUGFWAV976\ttriplet1\tclip1\ttriplet\ttest\n"
    )
    out = tmp_path / "sessions.tsv"
    rc = cli.main(["sheet", str(demo_lab), "--metadata", str(meta), "-o", str(out)])
    assert rc == 0
    df = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    assert list(df.columns) == [*COLUMNS, "fps", "n_frames", "px_per_cm", "annotation_subjects"]
    got = {r.subject: r for r in df.itertuples()}
    # PROVENANCE.md: 2330 frames at 1000000/33333 fps; 1801 decoded frames at 30 fps
    assert got["m3"].n_frames == "2330" and float(got["m3"].fps) == pytest.approx(30.0003)
    assert got["triplet1"].n_frames == "1801" and float(got["triplet1"].fps) == 30
    assert (got["m3"].pose_format, got["triplet1"].pose_format) == ("dlc_csv", "dlc_h5")
    # the workflow reads the sheet as written
    sheet = read_sheet(out)
    checked = check_sheet(sheet, out, {"openfield": {}, "triplet": {}})
    assert sorted(checked.index) == ["m3/v1", "triplet1/clip1"]
    # the pose files it found are the ones the workflow reads
    p = load_pose(got["m3"].pose, got["m3"].pose_format, fps=30)
    assert p.n_frames == 2330 and p.keypoint_names == ["snout", "leftear", "rightear", "tailbase"]
    p = load_pose(got["triplet1"].pose, got["triplet1"].pose_format, fps=30)
    assert p.keypoints.shape[:3] == (1800, 3, 12)


def test_without_video_info_no_video_is_opened(demo_lab, tmp_path):
    broken = demo_lab / "openfield" / "broken.mp4"
    broken.write_bytes(b"not a video")
    (demo_lab / "openfield" / "broken.nwb").touch()
    df, rep = build_sheet([demo_lab], setup="s", video_info=False)
    assert (df.fps == "").all() and not rep.bad_videos
    df, rep = build_sheet([demo_lab], setup="s")
    assert [Path(v).name for v in rep.bad_videos] == ["broken.mp4"]
    assert df.loc[df.video.str.endswith("broken.mp4"), "fps"].item() == ""
    out = tmp_path / "s.tsv"
    write_sheet(df.assign(fps="", n_frames=""), out)
    assert "fps" not in out.read_text().splitlines()[0]  # no empty optional columns


def _encode(path: Path, n: int = 40, fps: int = 25) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), "rgb24")
            for pk in s.encode(frame):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def test_video_headers_of_every_container(tmp_path):
    """mp4/mov from the moov box (here at the end of the file, as muxers leave it), mkv/avi
    through PyAV or decoding; the demo mp4s agree with PROVENANCE.md and with PyAV."""
    import av

    for ext in ("mp4", "mov", "mkv", "avi"):
        assert video_header(str(_encode(tmp_path / f"v.{ext}"))) == (25.0, 40), ext
    for p, frames in (
        (OPENFIELD / "m3v1mp4.mp4", 2330),
        (TRIPLET / "EGS8X2MN4SSUGFWAV976.mp4", 1801),
    ):
        fps, n = mp4_header(str(p))
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            assert (n, fps) == (frames, pytest.approx(float(s.average_rate)))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((OPENFIELD / "m3v1mp4.mp4").read_bytes()[:4096])  # truncated: no moov
    with pytest.raises(InputError, match="cut.mp4"):
        video_header(str(cut))
