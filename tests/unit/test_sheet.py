from pathlib import Path

import pytest
import yaml

from ethoflow.errors import InputError
from ethoflow.sheet import check_sheet, read_sheet

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
    assert msg.startswith(str(p))
    assert "row 2 (m1/s1): video file not found: /nope/video.mp4" in msg
    assert "row 3 (m1/s2): unknown pose_format 'deeplabcut'" in msg
    assert "unknown setup 'mars'" in msg and "unknown label rule 'rule:magic'" in msg
    assert "m1/s2 appears more than once" in msg


def test_bad_frame_range(tmp_path):
    pose = REPO / "tests/data/dlc_openfield/openfield_dlc_inference_example.csv"
    header = "subject\tsession\tsetup\tpose\tpose_format\tsplit\tstart_frame\tend_frame"
    p = write(tmp_path, [f"m1\ts1\topenfield\t{pose}\tdlc_csv\ttrain\t500\t100"], header)
    with pytest.raises(InputError, match="end_frame 100 must be after start_frame 500"):
        check_sheet(read_sheet(p), p, SETUPS)


def test_missing_sheet(tmp_path):
    with pytest.raises(InputError, match="cohort sheet not found"):
        read_sheet(tmp_path / "none.tsv")
