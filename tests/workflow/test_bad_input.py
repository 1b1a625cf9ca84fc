"""Bad input stops the run at DAG build, before any job, with every problem named at once."""

from __future__ import annotations

import pytest
from wfhelpers import copy_repo, snakemake

pytestmark = pytest.mark.workflow


def _fails(work, *args) -> str:
    proc = snakemake(work, "--dry-run", *args, check=False)
    assert proc.returncode != 0
    assert not (work / "results").exists()
    return proc.stdout + proc.stderr


@pytest.fixture
def work(tmp_path):
    return copy_repo(tmp_path)


def test_bad_sheet_names_every_problem_with_its_line(work):
    sheet = work / "config/sessions.tsv"
    header, *rows = sheet.read_text().splitlines()
    bad = rows[2].replace("m3v1mp4.mp4", "missing.mp4").replace("\ttrain\t", "\ttrian\t")
    empty = work / "tests/data/empty.h5"
    empty.write_bytes(b"")
    bad2 = rows[3].replace("openfield_dlc_inference_example.csv", "../empty.h5")
    bad2 = bad2.replace("\tB\t1500\t", "\tB#1\t1500\t1400")
    sheet.write_text("\n".join([header, "# cohort 1", "", *rows[:2], "", bad, bad2]) + "\n")
    out = _fails(work)
    where = "config/sessions.tsv, line"
    assert f"{where} 7 (openfield1/part1), column split: unknown split 'trian'" in out
    assert f"{where} 7 (openfield1/part1), column video: file not found: " in out
    assert "missing.mp4" in out
    assert f"{where} 8 (openfield1/part2), column pose: file is empty (0 bytes): " in out
    assert f"{where} 8 (openfield1/part2), column end_frame: end_frame 1400 must be after" in out
    assert "bad cohort sheet (4 problems)" in out


def test_header_only_sheet(work):
    sheet = work / "config/sessions.tsv"
    sheet.write_text(sheet.read_text().splitlines()[0] + "\n")
    out = _fails(work)
    assert "cohort sheet has a header (line 1) but no sessions" in out
    assert "No objects to concatenate" not in out


def test_comma_separated_sheet(work):
    sheet = work / "config/sessions.tsv"
    sheet.write_text(sheet.read_text().replace("\t", ","))
    assert "cohort sheet must be tab-separated, but line 1 (header) is comma-separated" in _fails(
        work
    )


def test_unknown_config_key_names_the_nearest(work, tmp_path):
    extra = tmp_path / "typo.yaml"
    extra.write_text("localizer: {epoch: 5}\nslurm: {gpu_partitions: spgpu}\n")
    out = _fails(work, "--configfile", "config/config.yaml", str(extra))
    assert "unknown key localizer.epoch (did you mean localizer.epochs?)" in out
    assert "unknown key slurm.gpu_partitions (did you mean slurm.gpu_partition?)" in out


def test_file_headers_are_checked_before_any_job(work):
    """What pose and video headers tell stops the dry run: a frame range past the recording
    (the pose h5 has 1,800 frames, its video 1,801), a sheet fps the video contradicts, a pose
    file without the setup's head keypoint."""
    data = work / "tests/data/dlc_openfield"
    renamed = data / "renamed.csv"
    lines = (data / "openfield_dlc_inference_example.csv").read_text().splitlines(True)
    lines[1] = lines[1].replace("snout", "muzzle")  # the bodyparts row
    renamed.write_text("".join(lines))
    sheet = work / "config/sessions.tsv"
    header, *rows = sheet.read_text().splitlines()
    rows = [r + "\t" for r in rows]
    rows[0] = rows[0].replace("\t0\t1200\t", "\t0\t2500\t")
    rows[2] = rows[2].replace("openfield_dlc_inference_example_missingdata.csv", "renamed.csv")
    rows[3] = rows[3] + "25"
    sheet.write_text("\n".join([header + "\tfps", *rows]) + "\n")
    out = _fails(work)
    where = "config/sessions.tsv, line"
    assert (
        f"{where} 2 (triplet1/part1), column end_frame: end_frame 2500 is beyond the recording "
        f"(1800 frames in the pose file tests/data/mabe22_triplet/EGS8X2MN4SSUGFWAV976.h5)"
    ) in out
    assert (
        f"{where} 4 (openfield1/part1), column pose: tests/data/dlc_openfield/renamed.csv: "
        "keypoint(s) of the skeleton missing from the file: ['snout']; among them the setup's "
        "'snout' (head)"
    ) in out
    assert "skeleton of setup 'openfield'" in out
    assert (
        f"{where} 5 (openfield1/part2), column fps: fps 25 but the video "
        "(tests/data/dlc_openfield/m3v1mp4.mp4) runs at 30.000 fps (beyond clips.fps_tolerance "
        "0.01)"
    ) in out
    assert "bad cohort sheet (3 problems)" in out
