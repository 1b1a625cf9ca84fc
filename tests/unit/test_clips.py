from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ethoflow.clips import cut_clips, merge_spans, read_clips, sample_indices
from ethoflow.errors import InputError
from ethoflow.video import open_video, video_info

DATA = Path(__file__).resolve().parents[1] / "data"
MABE = DATA / "mabe22_triplet" / "EGS8X2MN4SSUGFWAV976.mp4"


def test_sample_indices_and_spans():
    idx = sample_indices(100, 130, 10)
    assert idx.tolist() == [101, 104, 107, 110, 113, 116, 119, 122, 125, 128]
    assert merge_spans(np.array([5, 1, 3, 50, 52]), gap=10) == [(1, 5), (50, 52)]
    assert merge_spans(np.array([], np.int64), gap=10) == []


def test_cut_clips_layout_and_frames(tmp_path):
    info = video_info(MABE)
    windows = pd.DataFrame(
        {"start_frame": [0, 20, 300], "end_frame": [60, 80, 360], "score": [0.9, 0.5, 0.7]}
    )
    out = tmp_path / "clips.h5"
    cut_clips(MABE, windows, out, fps_out=2.0, frames_per_clip=4, size=64)
    c = read_clips(out)
    assert c["frames"].shape == (3, 4, 64, 64, 3) and c["frames"].dtype == np.uint8
    assert c["start_frame"].tolist() == [0, 20, 300]
    assert c["end_frame"].tolist() == [60, 80, 360]
    assert c["frame_index"].shape == (3, 4)
    assert np.all(c["frame_index"] >= c["start_frame"][:, None])
    assert np.all(c["frame_index"] < c["end_frame"][:, None])
    assert c["video_fps"] == pytest.approx(info.fps)
    with h5py.File(out) as f:
        assert f["frames"].chunks == (1, 4, 64, 64, 3)
        assert f["frames"].compression == "gzip"
    # the stored frames are the decoder's frames at those indices (random access reference)
    vr = open_video(MABE, width=64, height=64)
    ref = vr.get_batch(c["frame_index"][2].tolist()).asnumpy()
    assert np.abs(ref.astype(int) - c["frames"][2].astype(int)).mean() < 2.0
    assert c["frames"][0].std() > 1  # real image content, not zeros


def test_zero_windows_and_bad_input(tmp_path):
    empty = pd.DataFrame({"start_frame": [], "end_frame": []}, dtype=np.int64)
    out = tmp_path / "none.h5"
    cut_clips(MABE, empty, out, frames_per_clip=4, size=32)
    assert read_clips(out)["frames"].shape == (0, 4, 32, 32, 3)
    n = video_info(MABE).n_frames
    too_long = pd.DataFrame({"start_frame": [n - 10], "end_frame": [n + 50]})
    with pytest.raises(InputError, match="frames"):
        cut_clips(MABE, too_long, tmp_path / "x.h5", frames_per_clip=4, size=32)
    ok = pd.DataFrame({"start_frame": [0], "end_frame": [30]})
    with pytest.raises(InputError, match="fps"):
        cut_clips(MABE, ok, tmp_path / "y.h5", frames_per_clip=4, size=32, pose_fps=25.0)
    with pytest.raises(InputError, match="not found"):
        cut_clips(tmp_path / "missing.mp4", ok, tmp_path / "z.h5", frames_per_clip=4, size=32)
    with pytest.raises(ValueError):
        cut_clips(MABE, ok, tmp_path / "w.h5", frames_per_clip=3, size=32)
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()
