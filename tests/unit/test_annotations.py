import json
from pathlib import Path

import numpy as np
import pytest

from ethoflow.annotations import OVERHANG_S, load_annotations
from ethoflow.errors import InputError
from ethoflow.results import read_labels, write_labels

DATA = Path(__file__).resolve().parents[1] / "data"
DEPOT_LABELS = DATA / "behaviordepot_freezing" / "demo1_freezing_labels.csv"


def test_behaviordepot_per_frame_labels():
    y = load_annotations(DEPOT_LABELS, 6000, ["freezing"], fps=50)
    assert y.dtype == np.int64 and y.shape == (6000,)
    # PROVENANCE.md: 1368 freezing frames in 20 bouts
    assert (y == 1).sum() == 1368 and (np.diff(np.r_[0, y]) == 1).sum() == 20


def test_vocabulary_order_and_unknown_labels(tmp_path):
    p = tmp_path / "lab.csv"
    p.write_text("frame,behavior\n0,attack\n1,Mount\n2,none\n3,background\n4,other\n5,\n")
    y = load_annotations(p, 8, ["mount", "attack"], fps=30)
    assert y.tolist() == [2, 1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(InputError, match="'attack'") as err:
        load_annotations(p, 8, ["mount", "sniff"], fps=30)
    assert str(p) in str(err.value)


def test_frames_beyond_length_dropped_and_tsv(tmp_path):
    p = tmp_path / "lab.tsv"
    p.write_text("frame\tbehavior\n3\tgroom\n9\tgroom\n")
    y = load_annotations(p, 5, ["groom"], fps=30)
    assert y.tolist() == [0, 0, 0, 1, 0]


def test_events_csv_boris_like(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("behavior,start_s,stop_s\nattack,1.0,2.0\nmount,3.5,3.6\n")
    y = load_annotations(p, 150, ["attack", "mount"], fps=30)
    assert np.flatnonzero(y == 1).tolist() == list(range(30, 60))
    assert np.flatnonzero(y == 2).tolist() == list(range(105, 108))
    boris = tmp_path / "boris.csv"
    boris.write_text("Behavior,Start (s),Stop (s)\nattack,4.9,10.0\n")
    y = load_annotations(boris, 150, ["attack", "mount"], fps=30)
    assert np.flatnonzero(y).tolist() == list(range(147, 150))
    bad = tmp_path / "bad.csv"
    bad.write_text("behavior,start_s,stop_s\nchase,1,2\n")
    with pytest.raises(InputError, match="chase"):
        load_annotations(bad, 150, ["attack"], fps=30)


def test_onehot_csv(tmp_path):
    p = tmp_path / "onehot.csv"
    p.write_text("frame,walk,rear,other\n0,1,0,0\n1,0,1,0\n2,1,1,0\n3,0,0,1\n")
    assert load_annotations(p, 4, ["rear", "walk"], fps=30).tolist() == [2, 1, 1, 0]
    assert load_annotations(p, 4, ["walk", "rear"], fps=30).tolist() == [1, 2, 1, 0]
    with pytest.raises(InputError, match="walk"):
        load_annotations(p, 4, ["rear"], fps=30)


def test_calms21_json_vocabulary_mapping(tmp_path):
    ann = [3, 3, 1, 1, 0, 2, 3]
    seq = {
        "keypoints": np.zeros((7, 2, 2, 7)).tolist(),
        "annotations": ann,
        "metadata": {"vocab": {"attack": 0, "investigation": 1, "mount": 2, "other": 3}},
    }
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"annotator-id_0": {"task1/test/mouse001_task1_annotator1": seq}}))
    y = load_annotations(p, 7, ["investigation", "attack", "mount"], fps=30)
    assert y.tolist() == [0, 0, 1, 1, 2, 3, 0]
    with pytest.raises(InputError, match="'mount'"):
        load_annotations(p, 7, ["investigation", "attack"], fps=30)


def test_empty_and_missing_files(tmp_path):
    e = tmp_path / "e.csv"
    e.write_text("")
    with pytest.raises(InputError, match="empty"):
        load_annotations(e, 5, ["a"], fps=30)
    with pytest.raises(InputError, match="not found"):
        load_annotations(tmp_path / "nope.csv", 5, ["a"], fps=30)


def test_write_read_roundtrip(tmp_path):
    behaviors = ["freezing", "grooming"]
    y = np.random.default_rng(0).integers(0, 3, 500)
    out = tmp_path / "labels" / "s.csv"
    write_labels(out, y, behaviors)
    assert out.read_text().splitlines()[0] == "frame,behavior"
    assert set(out.read_text().split()[1:4]) <= {
        f"{i},{b}" for i in range(3) for b in ("other", *behaviors)
    }
    np.testing.assert_array_equal(read_labels(out, behaviors), y)
    with pytest.raises(ValueError):
        write_labels(tmp_path / "labels" / "bad.csv", np.array([0, 3]), behaviors)
    assert [p.name for p in out.parent.iterdir()] == ["s.csv"]


@pytest.mark.parametrize("kind", ["frame_csv", "events_csv", "onehot_csv"])
def test_annotations_past_the_pose_beyond_one_second_are_an_error(tmp_path, kind):
    """At 10 fps, 1 s = 10 frames of slack past a 100-frame pose; 15 frames is an error."""
    p = tmp_path / "lab.csv"
    for last, fails in ((109, False), (114, True)):
        if kind == "frame_csv":
            p.write_text(f"frame,behavior\n3,groom\n{last},groom\n")
        elif kind == "events_csv":
            p.write_text(f"behavior,start_s,stop_s\ngroom,0.3,{(last + 1) / 10}\n")
        else:
            p.write_text(f"frame,groom\n3,1\n{last},1\n")
        if not fails:
            y = load_annotations(p, 100, ["groom"], fps=10, overhang_s=OVERHANG_S)
            assert y[3] == 1 and len(y) == 100
            continue
        with pytest.raises(InputError) as err:
            load_annotations(p, 100, ["groom"], fps=10, overhang_s=OVERHANG_S)
        assert str(err.value).startswith(
            f"{p}: annotations reach frame 115 but the pose has 100 frames: 15 frames (1.5 s at "
            "10 fps) longer than the pose, beyond the tolerance of 1 s"
        )
        # without a limit (direct callers) they are cut, as before
        assert len(load_annotations(p, 100, ["groom"], fps=10)) == 100
