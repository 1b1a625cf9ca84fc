"""Clip cutting on the real demo videos and a generated yuv420p one (video metadata:
test_video.py). References are a straight PyAV decode of every frame in order, never the
seeking reader itself."""

from pathlib import Path

import av
import h5py
import numpy as np
import pandas as pd
import pytest

import ethoflow.clips as clips_mod
from ethoflow.clips import assemble_clips, extract_clips, merge_spans, sample_indices
from ethoflow.errors import InputError
from ethoflow.results import read_clip_frames, read_clips
from ethoflow.video import open_video

DATA = Path(__file__).resolve().parents[2] / "tests/data"
MABE = DATA / "mabe22_triplet/EGS8X2MN4SSUGFWAV976.mp4"
OPENFIELD = DATA / "dlc_openfield/m3v1mp4.mp4"  # H.264 High 4:4:4


def straight_decode(path, size: int, keep) -> dict[int, np.ndarray]:
    """Frames ``keep`` of a PyAV decode of every frame from the first, resized like decord."""
    keep = {int(i) for i in np.ravel(keep)}
    out = {}
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for i, frame in enumerate(c.decode(stream)):
            if i in keep:
                out[i] = frame.to_ndarray(format="rgb24", width=size, height=size)
            if len(out) == len(keep):
                break
    return out


def mad(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def yuv420(tmp_path_factory):
    """4 s of 25 fps H.264 yuv420p with a moving square over a drifting gradient, a keyframe
    every 12 frames (so clip frames sit after a seek)."""
    path = tmp_path_factory.mktemp("video") / "moving.mp4"
    h, w = 144, 192
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = 12
        s.options = {"crf": "18", "bf": "2"}
        for t in range(100):
            img = np.stack([(xx + 3 * t) % 256, (yy + 2 * t) % 256, np.full_like(xx, 128)], -1)
            x0, y0 = (5 * t) % (w - 30), (3 * t) % (h - 30)
            img[y0 : y0 + 30, x0 : x0 + 30] = (255, 255, 255)
            for p in s.encode(av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_sampling_and_span_merging():
    idx = sample_indices(0, 150, 10)
    assert idx.tolist() == [7, 22, 37, 52, 67, 82, 97, 112, 127, 142]
    assert merge_spans(np.array([5, 10, 400, 410, 12]), gap=90) == [(5, 12), (400, 410)]


def test_assemble_clips_any_window_order():
    idx = np.array([[8, 9], [1, 3], [3, 8]])
    frames = ((i, np.full((1, 1, 3), i, np.uint8)) for i in [1, 3, 8, 9])
    got = [c[:, 0, 0, 0].tolist() for c in assemble_clips(idx, frames)]
    assert got == [[8, 9], [1, 3], [3, 8]]


@pytest.mark.parametrize(
    "video, windows",
    [
        ("openfield", [(0, 150), (400, 550), (1650, 1800), (2100, 2250)]),
        ("yuv420", [(0, 20), (13, 33), (40, 60), (75, 100)]),
    ],
)
def test_clip_frames_equal_a_straight_decode(video, windows, yuv420, tmp_path):
    path = OPENFIELD if video == "openfield" else yuv420
    w = pd.DataFrame(windows, columns=["start_frame", "end_frame"])
    out = tmp_path / "clips.h5"
    extract_clips(path, w, out, frames_per_clip=6, size=112, codec="raw")
    d = read_clips(out)
    assert d["decode_check"] == "exact" and d["decode_check_mad"] < 1.0
    assert d["decode_path"] == "seek" and len(d["decode_check_frames"]) == 4
    ref = straight_decode(path, 112, d["frame_index"])
    for clip, row in zip(d["frames"], d["frame_index"], strict=True):
        for frame, j in zip(clip, row, strict=True):
            assert mad(frame, ref[int(j)]) < 1.0, (video, int(j))


class BrokenSeeking:
    """A decord reader whose seek path returns grey smears (as decord on some 4:4:4 files)."""

    def __init__(self, vr):
        self.vr = vr

    def __len__(self):
        return len(self.vr)

    def __getattr__(self, name):
        return getattr(self.vr, name)

    def get_batch(self, indices):
        batch = self.vr.get_batch(indices).asnumpy()
        smear = ((batch.astype(np.int16) + 128) // 2).astype(np.uint8)

        class Arr:
            def asnumpy(self):
                return smear

        return Arr()


def test_inexact_seeking_falls_back_to_sequential(yuv420, tmp_path, monkeypatch):
    monkeypatch.setattr(clips_mod, "open_video", lambda *a, **k: BrokenSeeking(open_video(*a, **k)))
    w = pd.DataFrame({"start_frame": [5, 50], "end_frame": [25, 90]})
    out = tmp_path / "clips.h5"
    got = extract_clips(yuv420, w, out, frames_per_clip=4, size=64, codec="raw")
    assert got["decode_path"] == "sequential" and got["decode_check"] == "mismatch"
    d = read_clips(out)
    assert d["decode_path"] == "sequential" and d["decode_check_mad"] > 5
    ref = straight_decode(yuv420, 64, d["frame_index"])
    for clip, row in zip(d["frames"], d["frame_index"], strict=True):
        for frame, j in zip(clip, row, strict=True):
            assert mad(frame, ref[int(j)]) < 1.0


def test_forced_decode_paths_agree(yuv420, tmp_path):
    w = pd.DataFrame({"start_frame": [60, 0, 30], "end_frame": [100, 40, 70]})
    a, b = tmp_path / "seek.h5", tmp_path / "seq.h5"
    extract_clips(yuv420, w, a, frames_per_clip=8, size=64, codec="raw", decode="seek")
    extract_clips(yuv420, w, b, frames_per_clip=8, size=64, codec="raw", decode="sequential")
    da, db = read_clips(a), read_clips(b)
    assert (da["decode_path"], db["decode_path"]) == ("seek", "sequential")
    assert np.array_equal(da["frames"], db["frames"])


def test_openfield_clips_are_the_same_bytes_every_run(tmp_path):
    """The open-field file logs H.264 decode errors; with frame-threaded decoding (the
    workflow used to decode on its 2 threads) their concealment changed run to run, sought or
    not. Seek and sequential decode, and two runs, must give the same frames."""
    w = pd.DataFrame({"start_frame": [600, 765, 855, 1007], "end_frame": [750, 915, 1005, 1157]})
    runs = []
    for k, decode in enumerate(("seek", "sequential", "seek")):
        out = tmp_path / f"{k}.h5"
        extract_clips(OPENFIELD, w, out, frames_per_clip=10, size=224, decode=decode)
        runs.append(read_clips(out)["frames"])
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])
    assert (tmp_path / "0.h5").read_bytes() == (tmp_path / "2.h5").read_bytes()


def test_jpeg_clips_close_to_raw_and_smaller(tmp_path):
    w = pd.DataFrame({"start_frame": [0, 400, 1650], "end_frame": [150, 550, 1800]})
    raw, jpg = tmp_path / "raw.h5", tmp_path / "jpeg.h5"
    extract_clips(OPENFIELD, w, raw, frames_per_clip=4, size=224, codec="raw")
    extract_clips(OPENFIELD, w, jpg, frames_per_clip=4, size=224)  # default: jpeg, q90
    dr, dj = read_clips(raw), read_clips(jpg)
    assert (dr["frame_codec"], dj["frame_codec"], dj["jpeg_quality"]) == ("raw", "jpeg", 90)
    assert dj["frames"].shape == dr["frames"].shape == (3, 4, 224, 224, 3)
    assert dj["frames"].dtype == np.uint8
    assert mad(dj["frames"], dr["frames"]) < 3.0
    assert jpg.stat().st_size < raw.stat().st_size / 3
    for path, d in ((raw, dr), (jpg, dj)):
        assert np.array_equal(read_clip_frames(path, [2, 0]), d["frames"][[2, 0]])
        assert read_clip_frames(path, []).shape == (0,)


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
        assert f["frames_jpeg"].shape == (3, 10) and f.attrs["frame_codec"] == "jpeg"
    extract_clips(MABE, windows, out, frames_per_clip=10, size=112, codec="raw")
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
    d = read_clips(out)
    assert d["frames"].shape == (0, 10, 56, 56, 3) and d["decode_check"] == "skipped"
