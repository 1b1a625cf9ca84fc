import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ethoflow.errors import InputError
from ethoflow.sheet import COLUMNS, check_sheet, read_sheet

REPO = Path(__file__).resolve().parents[2]
SETUPS = yaml.safe_load((REPO / "config/config.yaml").read_text())["setups"]


def write(tmp_path, rows, header=None):
    header = header or "subject\tsession\tsetup\tvideo\tpose\tpose_format\tannotations\tsplit"
    p = tmp_path / "sessions.tsv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


def test_demo_sheet_is_valid():
    df = check_sheet(read_sheet(REPO / "config/sessions.tsv"), "sessions.tsv", SETUPS, REPO)
    assert list(df.index[:2]) == ["triplet1/part1", "triplet1/part2"]
    assert set(df.split) == {"train", "test"}
    assert (df.loc["fc1/part1", "video"]) == ""


def test_optional_columns_get_defaults(tmp_path):
    pose = REPO / "tests/data/dlc_openfield/openfield_dlc_inference_example.csv"
    p = write(tmp_path, [f"m1\ts1\topenfield\t\t{pose}\t\t\ttrain"])
    df = check_sheet(read_sheet(p), p, SETUPS)
    assert df.loc["m1/s1", "pose_format"] == "auto"
    assert df.loc["m1/s1", "group"] == "all"
    assert df.loc["m1/s1", "start_frame"] == ""


def test_missing_file_and_unknown_format_name_row_and_file(tmp_path):
    pose = REPO / "tests/data/dlc_openfield/openfield_dlc_inference_example.csv"
    p = write(
        tmp_path,
        [
            f"m1\ts1\topenfield\t/nope/video.mp4\t{pose}\tdlc_csv\t\ttrain",
            f"m1\ts2\topenfield\t\t{pose}\tdeeplabcut\t\ttest",
            f"m1\ts2\tmars\t\t{pose}\tdlc_csv\trule:magic\ttest",
        ],
    )
    with pytest.raises(InputError) as err:
        check_sheet(read_sheet(p), p, SETUPS)
    msg = str(err.value)
    assert msg.startswith(f"{p}: bad cohort sheet (5 problems):")
    assert f"{p}, line 2 (m1/s1), column video: file not found: /nope/video.mp4" in msg
    assert f"{p}, line 3 (m1/s2), column pose_format: unknown pose_format 'deeplabcut'" in msg
    assert f"{p}, line 4 (m1/s2), column setup: unknown setup 'mars'" in msg
    assert "column annotations: unknown label rule 'rule:magic'" in msg
    assert f"{p}, lines 3, 4: subject/session m1/s2 appears more than once" in msg


def test_bad_frame_range(tmp_path):
    pose = REPO / "tests/data/dlc_openfield/openfield_dlc_inference_example.csv"
    header = "subject\tsession\tsetup\tpose\tpose_format\tsplit\tstart_frame\tend_frame"
    p = write(tmp_path, [f"m1\ts1\topenfield\t{pose}\tdlc_csv\ttrain\t500\t100"], header)
    with pytest.raises(InputError, match="end_frame 100 must be after start_frame 500"):
        check_sheet(read_sheet(p), p, SETUPS)


def test_missing_sheet(tmp_path):
    with pytest.raises(InputError, match="cohort sheet not found"):
        read_sheet(tmp_path / "none.tsv")


POSE = REPO / "tests/data/dlc_openfield/openfield_dlc_inference_example.csv"
FULL = "\t".join(
    ["subject", "session", "setup", "video", "pose", "pose_format", "annotations", "split"]
    + ["group", "start_frame", "end_frame"]
)


def problems(path, base="."):
    """The problem lines of the one InputError that reading and checking ``path`` raises."""
    with pytest.raises(InputError) as err:
        check_sheet(read_sheet(path), path, SETUPS, base)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ")
    return [ln.strip() for ln in msg.splitlines()[1:]]


def test_hash_inside_a_cell_is_data_not_a_comment(tmp_path):
    pose = tmp_path / "run#2" / "pose.csv"
    pose.parent.mkdir()
    pose.write_bytes(POSE.read_bytes())
    p = write(
        tmp_path,
        [
            "# a comment line",
            f"m1\ts1\topenfield\t\t{pose}\tdlc_csv\t\ttrain\tA#1\t10\t200",
            "#m1\ts2\topenfield\t\tpose.csv\tdlc_csv\t\ttrain\tA\t0\t10",
        ],
        FULL,
    )
    df = check_sheet(read_sheet(p), p, SETUPS)
    assert list(df.index) == ["m1/s1"]
    row = df.loc["m1/s1"]
    assert (row["group"], row["start_frame"], row["end_frame"]) == ("A#1", "10", "200")
    assert row["pose"] == str(pose)


def test_every_problem_is_reported_with_its_line_in_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    p = write(
        tmp_path,
        [
            "# sessions of cohort 1",
            "",
            f"m1\ts1\topenfield\t\t{POSE}\tdlc_csv\t\ttrain\tA\t0\t100",
            "# the bad ones",
            "",
            f"m1\ts2\topenfeld\t{empty}\t{POSE}\tdlc_csv\t\ttset\tA\t500\t100",
            "m 1\ts3\topenfield\t\t\tdlc\t\ttrain\tA\t1.5\t",
        ],
        FULL,
    )
    assert problems(p) == [
        f"{p}, line 7 (m1/s2), column split: unknown split 'tset' (one of: train, test, "
        "predict; did you mean 'test'?)",
        f"{p}, line 7 (m1/s2), column setup: unknown setup 'openfeld' (did you mean "
        "'openfield'? the config has triplet, openfield, fearcond)",
        f"{p}, line 7 (m1/s2), column video: file is empty (0 bytes): {empty}",
        f"{p}, line 7 (m1/s2), column end_frame: end_frame 100 must be after start_frame 500",
        f"{p}, line 8 (m 1/s3), column subject: 'm 1' must start with a letter or digit and "
        "hold only letters, digits, '_', '.', '-'",
        f"{p}, line 8 (m 1/s3), column pose: is empty; every session needs one",
        f"{p}, line 8 (m 1/s3), column pose_format: unknown pose_format 'dlc' (one of: auto, "
        "dlc_csv, dlc_h5, sleap_slp, sleap_h5, calms21_json, nwb)",
        f"{p}, line 8 (m 1/s3), column start_frame: '1.5' must be a frame number (0, 1, 2, "
        "...) or empty",
    ]


def test_relative_files_resolve_against_base_and_directories_are_not_files(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/pose.csv").write_bytes(POSE.read_bytes())
    p = write(
        tmp_path,
        [
            "m1\ts1\topenfield\t\tdata/pose.csv\tdlc_csv\t\ttrain",
            "m1\ts2\topenfield\t\tdata\tdlc_csv\tdata/missing.csv\ttrain",
        ],
    )
    assert problems(p, base=tmp_path) == [
        f"{p}, line 3 (m1/s2), column pose: is a directory, not a file: data",
        f"{p}, line 3 (m1/s2), column annotations: file not found: data/missing.csv",
    ]
    p.write_text(p.read_text().splitlines()[0] + "\n" + p.read_text().splitlines()[1] + "\n")
    assert list(check_sheet(read_sheet(p), p, SETUPS, tmp_path).index) == ["m1/s1"]


def test_unreadable_file(tmp_path, monkeypatch):
    pose = tmp_path / "pose.csv"
    pose.write_bytes(POSE.read_bytes())
    pose.chmod(0)
    if os.geteuid() == 0:  # root reads any file: the check asks os.access
        real = os.access
        monkeypatch.setattr(os, "access", lambda f, mode: Path(f) != pose and real(f, mode))
    p = write(tmp_path, [f"m1\ts1\topenfield\t\t{pose}\tdlc_csv\t\ttrain"])
    try:
        assert problems(p) == [
            f"{p}, line 2 (m1/s1), column pose: file is not readable (permission denied): {pose}"
        ]
    finally:
        pose.chmod(0o644)


def test_frame_range_beyond_a_known_length(tmp_path):
    header = "subject\tsession\tsetup\tpose\tpose_format\tsplit\tstart_frame\tend_frame\tn_frames"
    p = write(
        tmp_path,
        [
            f"m1\ts1\topenfield\t{POSE}\tdlc_csv\ttrain\t0\t1500\t1500",
            f"m1\ts2\topenfield\t{POSE}\tdlc_csv\ttrain\t1600\t\t1500",
            f"m1\ts3\topenfield\t{POSE}\tdlc_csv\ttrain\t0\t2000\t1500",
        ],
        header,
    )
    assert problems(p) == [
        f"{p}, line 3 (m1/s2), column start_frame: start_frame 1600 is beyond the recording "
        "(1500 frames)",
        f"{p}, line 4 (m1/s3), column end_frame: end_frame 2000 is beyond the recording "
        "(1500 frames)",
    ]


@pytest.mark.parametrize(("sep", "name"), [(",", "comma"), (";", "semicolon"), (" ", "space")])
def test_other_separators_are_named(tmp_path, sep, name):
    p = tmp_path / "sessions.tsv"
    p.write_text(f"subject{sep}session{sep}setup{sep}pose\nm1{sep}s1{sep}openfield{sep}x\n")
    with pytest.raises(InputError) as err:
        read_sheet(p)
    assert str(err.value) == (
        f"{p}: cohort sheet must be tab-separated, but line 1 (header) is {name}-separated "
        f"('subject{sep}session{sep}setup{sep}pose'); save it as tab-separated text"
    )


def test_a_row_that_is_not_tab_separated(tmp_path):
    p = write(tmp_path, ["# note", "m1,s1,openfield,,x.csv,dlc_csv,,train"])
    with pytest.raises(InputError) as err:
        read_sheet(p)
    assert f"{p}, line 3: no tab in this line (the sheet is tab-separated)" in str(err.value)


def test_a_row_with_more_cells_than_the_header(tmp_path):
    p = write(tmp_path, [f"m1\ts1\topenfield\t\t{POSE}\tdlc_csv\t\ttrain\t\t\t"])
    assert len(read_sheet(p)) == 1  # trailing empty cells are fine
    p = write(tmp_path, [f"m1\ts1\topenfield\t\t{POSE}\tdlc_csv\t\ttrain\tA\t0"])
    with pytest.raises(InputError) as err:
        read_sheet(p)
    assert str(err.value) == (
        f"{p}: bad cohort sheet (1 problem):\n  {p}, line 2: 10 tab-separated cells but the "
        "header has 8 columns"
    )


def test_unknown_and_missing_columns_name_the_nearest(tmp_path):
    header = "subject\tsesion\tsetup\tpose\tpose_format\tsplit\tanotations\tcage"
    p = write(tmp_path, [f"m1\ts1\topenfield\t{POSE}\tdlc_csv\ttrain\t\t3"], header)
    with pytest.raises(InputError) as err:
        read_sheet(p)
    where = f"{p}, line 1 (header)"
    assert str(err.value).splitlines() == [
        f"{p}: bad cohort sheet (4 problems):",
        f"  {where}: unknown column 'sesion' (did you mean 'session'?)",
        f"  {where}: unknown column 'anotations' (did you mean 'annotations'?)",
        f"  {where}: unknown column 'cage' (the columns are: {', '.join(COLUMNS)})",
        f"  {where}: missing required column(s): session",
    ]


def test_header_only_and_empty_sheets(tmp_path):
    p = tmp_path / "sessions.tsv"
    p.write_text("# cohort 1\n\nsubject\tsession\tsetup\tpose\tpose_format\tsplit\n\n")
    with pytest.raises(InputError) as err:
        read_sheet(p)
    assert str(err.value) == (
        f"{p}: cohort sheet has a header (line 3) but no sessions: add one tab-separated line "
        "per session"
    )
    for text in ("", "# nothing yet\n\n"):
        p.write_text(text)
        with pytest.raises(InputError, match="cohort sheet is empty: no header line"):
            read_sheet(p)
    with pytest.raises(InputError, match="cohort sheet has no sessions"):
        check_sheet(pd.DataFrame(columns=list(COLUMNS)), p, SETUPS)


def test_windows_line_ends_and_bom(tmp_path):
    p = tmp_path / "sessions.tsv"
    header = "subject\tsession\tsetup\tpose\tpose_format\tsplit"
    rows = [header, "# c", f"m1\ts1\topenfield\t{POSE}\tdlc_csv\ttrain", f"m1\ts1\tx\t{POSE}\t\t"]
    p.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode())
    assert problems(p) == [
        f"{p}, line 4 (m1/s1), column split: unknown split '' (one of: train, test, predict)",
        f"{p}, line 4 (m1/s1), column setup: unknown setup 'x' (the config has triplet, "
        "openfield, fearcond)",
        f"{p}, lines 3, 4: subject/session m1/s1 appears more than once",
    ]


def test_a_frame_built_elsewhere_is_checked_by_row(tmp_path):
    df = pd.DataFrame(
        [["m1", "s1", "openfield", "", str(POSE), "auto", "", "train", "all", "", ""]],
        columns=list(COLUMNS[:11]),
    )
    for col in COLUMNS[11:]:
        df[col] = ""
    df.loc[0, "split"] = "val"
    with pytest.raises(InputError, match=r"x.tsv, row 1 \(m1/s1\), column split: unknown split"):
        check_sheet(df, "x.tsv", SETUPS)


# ---------------------------------------------------------------- what file headers tell
MABE = REPO / "tests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5"  # 1800 rows
MABE_VIDEO = REPO / "tests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4"  # 1801 frames, 30 fps
OF_VIDEO = REPO / "tests/data/dlc_openfield/m3v1mp4.mp4"  # 2330 frames, 30 fps
WIDE = FULL + "\tfps\tpx_per_cm"


def test_file_headers_stop_bad_sessions_before_any_job(tmp_path):
    """Frame ranges past the video or the pose, sheet fps against the video, pose against
    video length, the pose format, and skeleton keypoints (the head/tail named) the pose file
    lacks: all found from headers, each with its line, session, column and file."""
    rows = [
        f"m1\ts1\topenfield\t{OF_VIDEO}\t{POSE}\tdlc_csv\t\ttrain\tA\t\t\t30\t",
        f"m1\ts2\topenfield\t{OF_VIDEO}\t{POSE}\tdlc_csv\t\ttrain\tA\t\t\t25\t",
        f"m1\ts3\topenfield\t{OF_VIDEO}\t{POSE}\tdlc_csv\t\ttrain\tA\t0\t2400\t\t",
        f"m2\ts1\ttriplet\t\t{MABE}\tdlc_h5\t\ttrain\tA\t0\t1900\t\t",
        f"m2\ts2\topenfield\t\t{MABE}\tauto\t\ttrain\tA\t\t\t\t",
        f"m2\ts3\ttriplet\t\t{MABE}\tdlc_csv\t\ttrain\tA\t\t\t\t",
        f"m2\ts4\ttriplet\t{OF_VIDEO}\t{MABE}\tdlc_h5\t\ttrain\tA\t\t\t\t",
        f"m2\ts5\ttriplet\t{MABE_VIDEO}\t{MABE}\tdlc_h5\t\ttrain\tA\t1200\t\t0\tabc",
    ]
    p = write(tmp_path, rows, WIDE)
    with pytest.raises(InputError) as err:
        check_sheet(read_sheet(p), p, SETUPS, length_tolerance=3, fps_tolerance=0.01)
    got = [ln.strip() for ln in str(err.value).splitlines()[1:]]
    skeleton = SETUPS["openfield"]["skeleton"]
    names = SETUPS["triplet"]["skeleton"]
    assert got == [
        f"{p}, line 3 (m1/s2), column fps: fps 25 but the video ({OF_VIDEO}) runs at 30.000 "
        "fps (beyond clips.fps_tolerance 0.01)",
        f"{p}, line 4 (m1/s3), column end_frame: end_frame 2400 is beyond the recording (2330 "
        f"frames in the video {OF_VIDEO})",
        f"{p}, line 5 (m2/s1), column end_frame: end_frame 1900 is beyond the recording (1800 "
        f"frames in the pose file {MABE})",
        f"{p}, line 6 (m2/s2), column pose: {MABE}: keypoint(s) of the skeleton missing from "
        f"the file: ['snout']; among them the setup's 'snout' (head) (file has {names}, "
        f"skeleton of setup 'openfield' {skeleton}; add names to the setup's keypoint_aliases)",
        f"{p}, line 7 (m2/s3), column pose: {MABE}: labelled 'dlc_csv' but the content is 'dlc_h5'",
        f"{p}, line 8 (m2/s4), column pose: {MABE}: pose has 1800 frames, video 2330: pose is "
        "530 frames shorter than the video (tolerance 3, pose.length_tolerance_frames)",
        f"{p}, line 9 (m2/s5), column px_per_cm: 'abc' must be a number of pixels per cm (e.g. "
        "12.5) or empty",
        f"{p}, line 9 (m2/s5), column fps: '0' must be above 0",
    ]


def test_a_head_or_tail_outside_the_setup_skeleton_names_the_setup(tmp_path):
    setups = {**SETUPS, "openfield": {**SETUPS["openfield"], "head": "nose", "tail": "tail"}}
    p = write(tmp_path, [f"m1\ts1\topenfield\t\t{POSE}\tdlc_csv\t\ttrain"])
    with pytest.raises(InputError) as err:
        check_sheet(read_sheet(p), p, setups)
    skeleton = SETUPS["openfield"]["skeleton"]
    assert [ln.strip() for ln in str(err.value).splitlines()[1:]] == [
        "setup 'openfield' (config setups.openfield.head): head keypoint 'nose' is not in the "
        f"setup's skeleton {skeleton}",
        "setup 'openfield' (config setups.openfield.tail): tail keypoint 'tail' is not in the "
        f"setup's skeleton {skeleton}",
    ]


def test_header_reads_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    from ethoflow import pose_io
    from ethoflow import sheet as sheet_mod

    pose = tmp_path / "pose.h5"
    pose.write_bytes(MABE.read_bytes())
    p = write(tmp_path, [f"m1\ts1\ttriplet\t{MABE_VIDEO}\t{pose}\tdlc_h5\t\ttrain"])
    cache = tmp_path / "cache/headers.json"
    check_sheet(read_sheet(p), p, SETUPS, cache=cache)
    assert cache.is_file()
    calls = []
    real = pose_io.peek_pose
    monkeypatch.setattr(pose_io, "peek_pose", lambda *a: calls.append(a) or real(*a))
    sheet_mod._MEMO.clear()  # a new run: only the cache file remembers
    check_sheet(read_sheet(p), p, SETUPS, cache=cache)
    assert calls == []
    os.utime(pose, ns=(1, 1))  # the file changed: read again
    check_sheet(read_sheet(p), p, SETUPS, cache=cache)
    assert len(calls) == 1
    cache.write_text("{not json")  # a broken cache is ignored and rewritten
    sheet_mod._MEMO.clear()
    check_sheet(read_sheet(p), p, SETUPS, cache=cache)
    assert len(calls) == 2 and cache.read_text().startswith('{"version": 1')


def test_session_params_fps_and_scale_from_the_sheet_else_the_setup():
    from ethoflow.sheet import annotation_params, session_params

    setup = {**SETUPS["fearcond"], "px_per_cm": 8.0}
    row = {"subject": "m1", "session": "s1", "fps": "30", "px_per_cm": ""}
    assert session_params(row, "fearcond", setup) == {
        "setup": "fearcond",
        "subject": "m1",
        "session": "s1",
        "fps": 30.0,
        "px_per_cm": 8.0,
    }
    row = {"subject": "m1", "session": "s1", "fps": "", "px_per_cm": "12.5"}
    got = session_params(row, "fearcond", SETUPS["fearcond"])
    assert got["fps"] is None and got["px_per_cm"] == 12.5
    assert session_params({}, "fearcond", SETUPS["fearcond"])["px_per_cm"] is None
    assert annotation_params({"subject": "m1", "annotation_subjects": "a; b"}) == {
        "subject": "m1",
        "annotation_subjects": ["a", "b"],
    }
    assert annotation_params({"subject": "m1"})["annotation_subjects"] is None


def test_a_1000_session_sheet_is_checked_in_well_under_a_second_per_100(tmp_path):
    import time

    from ethoflow.cli import make_cohort

    out = make_cohort(REPO / "config/sessions.tsv", 1000, tmp_path / "big.tsv")
    t = time.perf_counter()
    df = check_sheet(read_sheet(out), out, SETUPS, REPO, length_tolerance=3)
    assert len(df) == 1000 and time.perf_counter() - t < 10


def test_peek_pose_agrees_with_load_pose_on_every_format_it_peeks(tmp_path):
    """The header read at DAG build gives the reader's keypoint names and frame count."""
    import numpy as np
    import sleap_io as sio

    from ethoflow.pose_io import load_pose, peek_pose

    rng = np.random.default_rng(0)
    parts = ["snout", "leftear", "rightear", "tailbase"]
    kp = rng.uniform(10, 400, (120, 2, 4, 2))
    conf = rng.uniform(0.5, 1, (120, 2, 4))
    cols = pd.MultiIndex.from_product(
        [["DLC_scorer"], ["a", "b"], parts, ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    df = pd.DataFrame(np.concatenate([kp, conf[..., None]], -1).reshape(120, -1), columns=cols)
    df.to_csv(tmp_path / "ma.csv")
    df.to_hdf(tmp_path / "ma.h5", key="df_with_missing", mode="w")
    df.iloc[::2].to_hdf(tmp_path / "gaps.h5", key="df_with_missing", mode="w")  # rows 0, 2, ..
    df.iloc[:-1].set_axis(range(5, 124), axis=0).to_hdf(tmp_path / "late.h5", key="k", mode="w")
    video = sio.Video(filename=str(OF_VIDEO), open_backend=False)
    labels = sio.Labels.from_numpy(
        np.concatenate([kp, conf[..., None]], -1),
        videos=[video],
        skeletons=sio.Skeleton(parts),
        tracks=[sio.Track("a"), sio.Track("b")],
        return_confidence=True,
    )
    sio.save_slp(labels, str(tmp_path / "p.slp"))
    sio.save_analysis_h5(labels, str(tmp_path / "p.analysis.h5"))
    files = ["ma.csv", "ma.h5", "gaps.h5", "late.h5", "p.slp", "p.analysis.h5"]
    for name in [*files, str(MABE), str(POSE)]:
        head = peek_pose(tmp_path / name)
        pose = load_pose(tmp_path / name, fps=30)
        assert head.keypoint_names == pose.keypoint_names, name
        assert head.n_frames in (None, pose.n_frames), name
        assert head.format == pose.source_format, name
        if name.endswith("h5"):
            assert head.n_frames == pose.n_frames, name
