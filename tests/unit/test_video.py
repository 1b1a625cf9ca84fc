from pathlib import Path

import pytest

from ethoflow.errors import InputError
from ethoflow.video import video_info

DATA = Path(__file__).resolve().parents[1] / "data"
MABE = DATA / "mabe22_triplet" / "EGS8X2MN4SSUGFWAV976.mp4"
DLC = DATA / "dlc_openfield" / "m3v1mp4.mp4"


def test_video_info_matches_provenance():
    info = video_info(MABE)
    assert (info.n_frames, info.width, info.height) == (1801, 512, 512)
    assert info.fps == pytest.approx(30.0)
    info = video_info(DLC)  # H.264 4:4:4
    assert (info.n_frames, info.width, info.height) == (2330, 640, 480)


def test_missing_empty_corrupt_truncated(tmp_path):
    with pytest.raises(InputError, match="not found"):
        video_info(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        video_info(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InputError) as err:
        video_info(junk)
    assert "junk.mp4" in str(err.value)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(MABE.read_bytes()[:2000])
    with pytest.raises(InputError) as err:
        video_info(cut)
    assert "cut.mp4" in str(err.value)
