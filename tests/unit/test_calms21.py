import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ethoflow.annotations import load_annotations
from ethoflow.calms21 import SHEET_COLUMNS, calms21_to_cohort, main
from ethoflow.errors import InputError
from ethoflow.pose_io import load_pose
from ethoflow.sheet import check_sheet, read_sheet

VOCAB = {"attack": 0, "investigation": 1, "mount": 2, "other": 3}


def _sequence(rng, n):
    """Two mice (resident, intruder), 7 keypoints, CalMS21 task-1 layout [T, 2, 2, 7]."""
    body = np.array([[12, 0], [8, 4], [8, -4], [5, 0], [-5, 4], [-5, -4], [-12, 0]], float).T
    centers = np.stack(
        [[300.0, 250.0] + np.cumsum(rng.normal(0, 2, (n, 2)), 0) for _ in range(2)], 1
    )
    kp = centers[:, :, :, None] + body[None, None]  # [T, 2, 2, 7]
    ann = np.full(n, 3)
    ann[n // 4 : n // 2] = 1
    ann[n // 2 : n // 2 + 10] = 0
    return (
        {
            "keypoints": kp.round(2).tolist(),
            "scores": rng.uniform(0.5, 1, (n, 2, 7)).round(3).tolist(),
            "annotations": ann.tolist(),
            "metadata": {"annotator-id": 0, "vocab": VOCAB},
        },
        kp,
        ann,
    )


def _write(path, seqs):
    Path(path).write_text(json.dumps({"annotator-id_0": seqs}))


def test_cohort_from_train_and_test_files(tmp_path):
    rng = np.random.default_rng(0)
    s1, kp1, ann1 = _sequence(rng, 120)
    s2, _, _ = _sequence(rng, 90)
    s3, kp3, ann3 = _sequence(rng, 60)
    train = tmp_path / "calms21_task1_train.json"
    test = tmp_path / "calms21_task1_test.json"
    _write(
        train,
        {"task1/train/mouse001_task1_annotator1": s1, "task1/train/mouse002_task1_annotator1": s2},
    )
    _write(test, {"task1/test/mouse001_task1_annotator1": s3})
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "mouse002_task1_annotator1.mp4").write_bytes(b"\x00")
    out = tmp_path / "cohort"
    assert main([str(train), str(test), str(out), "--video-dir", str(videos)]) == 0
    sheet = pd.read_csv(out / "sessions.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(sheet.columns) == SHEET_COLUMNS and len(sheet) == 3
    assert sheet["split"].tolist() == ["train", "train", "test"]
    assert sheet["subject"].tolist()[0] == "mouse001_task1_annotator1"
    assert sheet["video"].tolist() == ["", str(videos / "mouse002_task1_annotator1.mp4"), ""]
    assert (sheet["pose_format"] == "calms21_json").all() and (sheet["setup"] == "calms21").all()
    setup = yaml.safe_load((out / "setup.yaml").read_text())["setups"]["calms21"]
    assert setup["behaviors"] == ["attack", "investigation", "mount"]
    assert setup["animals"] == ["resident", "intruder"] and len(setup["skeleton"]) == 7
    checked = check_sheet(
        read_sheet(out / "sessions.tsv"), out / "sessions.tsv", {"calms21": setup}
    )
    assert len(checked) == 3
    row = sheet.iloc[2]
    pose = load_pose(
        row["pose"], row["pose_format"], skeleton=setup["skeleton"], animals=setup["animals"]
    )
    assert pose.keypoints.shape == (60, 2, 7, 2) and pose.fps == 30
    np.testing.assert_allclose(pose.keypoints[:, 1, 6], kp3[:, 1, :, 6], atol=0.01)
    y = load_annotations(row["annotations"], 60, setup["behaviors"], pose.fps)
    expected = np.where(ann3 == 3, 0, ann3 + 1)  # vocab index i -> behaviors[i] -> code i + 1
    np.testing.assert_array_equal(y, expected)
    first = load_pose(sheet.iloc[0]["pose"], skeleton=setup["skeleton"])
    np.testing.assert_allclose(first.keypoints[:, 0, 0], kp1[:, 0, :, 0], atol=0.01)


def test_sequences_without_annotations_are_predict(tmp_path):
    rng = np.random.default_rng(1)
    s, _, _ = _sequence(rng, 30)
    del s["annotations"]
    src = tmp_path / "calms21_task1_test.json"
    _write(src, {"task1/test/mouse009_task1_annotator1": s})
    sheet = pd.read_csv(calms21_to_cohort(src, tmp_path / "o"), sep="\t", keep_default_na=False)
    assert sheet["split"].tolist() == ["predict"] and sheet["annotations"].tolist() == [""]


def test_bad_json(tmp_path):
    bad = tmp_path / "calms21_task1_train.json"
    bad.write_text('{"annotator-id_0": {"task1/train/x": {"keypoints": [[')
    with pytest.raises(InputError, match="not valid JSON"):
        calms21_to_cohort(bad, tmp_path / "o")
    assert main([str(bad), str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o" / "sessions.tsv").exists()
