"""Write outputs atomically so a failed step never leaves a partial file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it onto ``path`` only on success.

    Works for files and directories: whatever the block creates at the temporary
    path is renamed onto ``path`` when the block exits without an exception and
    removed otherwise.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{final}: step finished without writing its output")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _remove_stale(final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _remove_stale(final: Path) -> None:
    """Temporary siblings of ``final`` that a killed earlier attempt left behind (SIGKILL
    skips the cleanup above); Snakemake runs one job per output, so none is in use."""
    for stale in final.parent.glob(f".{glob_escape(final.name)}.*.part"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def save_torch(obj, path: str | os.PathLike) -> None:
    """``torch.save`` atomically, with bytes that do not depend on the temporary file name
    (torch names the archive's records after the file it writes to)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
