"""Clip cutting on the real demo videos (video metadata: test_video.py)."""

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ethoflow.clips import decode_frames, extract_clips, merge_spans, sample_indices
from ethoflow.errors import InputError
from ethoflow.results import read_clips
from ethoflow.video import open_video

DATA = Path(__file__).resolve().parents[2] / "tests/data"
MABE = DATA / "mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4"
OPENFIELD = DATA / "dlc_openfield/m3v1mp4.mp4"


def test_sampling_and_span_merging():
    idx = sample_indices(0, 150, 10)
    assert idx.tolist() == [7, 22, 37, 52, 67, 82, 97, 112, 127, 142]
    assert merge_spans(np.array([5, 10, 400, 410, 12]), gap=90) == [(5, 12), (400, 410)]


def test_seek_decoding_equals_frame_by_frame_reading():
    vr = open_video(MABE, width=64, height=64)
    want = np.array([3, 40, 41, 900, 1500])
    got = decode_frames(vr, want)
    ref = open_video(MABE, width=64, height=64).get_batch(want.tolist()).asnumpy()
    for i, j in enumerate(want):
        assert np.abs(got[int(j)].astype(int) - ref[i].astype(int)).mean() < 2.0


def test_extract_clips_layout(tmp_path):
    windows = pd.DataFrame({"start_frame": [0, 100, 1650], "end_frame": [150, 250, 1800]})
    out = tmp_path / "clips.h5"
    extract_clips(MABE, windows, out, fps_out=2.0, frames_per_clip=10, size=112, pose_fps=30.0)
    d = read_clips(out)
    assert d["frames"].shape == (3, 10, 112, 112, 3) and d["frames"].dtype == np.uint8
    assert (d["frame_index"][:, 0] >= d["start_frame"]).all()
    assert (d["frame_index"][:, -1] < d["end_frame"]).all()
    assert d["fps_out"] == pytest.approx(2.0)
    assert d["frames"][1].std() > 5
    with h5py.File(out) as f:
        assert f["frames"].chunks == (1, 10, 112, 112, 3) and f["frames"].compression == "gzip"


def test_extract_clips_errors_leave_no_file(tmp_path):
    out = tmp_path / "clips.h5"
    windows = pd.DataFrame({"start_frame": [1700], "end_frame": [1850]})
    with pytest.raises(InputError, match="1850"):
        extract_clips(MABE, windows, out, size=56)
    with pytest.raises(InputError, match="fps"):
        extract_clips(MABE, windows.iloc[:0], out, size=56, pose_fps=50.0)
    assert not out.exists()
    extract_clips(MABE, windows.iloc[:0], out, size=56, pose_fps=30.0)
    assert read_clips(out)["frames"].shape[0] == 0
