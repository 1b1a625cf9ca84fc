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
