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


def test_stale_parts_of_a_killed_attempt_are_removed(tmp_path):
    out = tmp_path / "clips.h5"
    stale = tmp_path / ".clips.h5.abc123.part"  # what a SIGKILL'd job leaves
    stale.write_bytes(b"half")
    other = tmp_path / ".other.h5.x.part"
    other.write_bytes(b"not ours")
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"done")
    assert out.read_bytes() == b"done" and not stale.exists() and other.exists()


def test_torch_checkpoints_do_not_depend_on_the_file_name(tmp_path):
    import torch

    from ethoflow.atomic import save_torch

    obj = {"w": torch.arange(6.0).reshape(2, 3), "cfg": {"a": 1}}
    save_torch(obj, tmp_path / "a.pt")
    save_torch(obj, tmp_path / "b" / "other.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "other.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pt")["w"], obj["w"])
