import pytest

from ethoflow.atomic import atomic_path


def test_success_moves_into_place(tmp_path):
    out = tmp_path / "sub" / "a.txt"
    with atomic_path(out) as tmp:
        tmp.write_text("x")
        assert not out.exists()
    assert out.read_text() == "x"
    assert list(out.parent.iterdir()) == [out]


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "a.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_directories_and_missing_output(tmp_path):
    out = tmp_path / "model"
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "w.bin").write_bytes(b"1")
    assert (out / "w.bin").read_bytes() == b"1"
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "b.txt"):
            pass
