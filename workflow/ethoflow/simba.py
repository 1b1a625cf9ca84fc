"""SimBA ``targets_inserted`` files: the per-frame behavior annotations of a SimBA project.

SimBA (Nilsson et al.) keeps the annotations of each video in
``project_folder/csv/targets_inserted/<video>.csv``: the features it extracted (pose columns
``<bodypart>_<animal>_x|_y|_p`` first, then computed features), then one column per
classifier, at the very end, holding 0 (absent) or 1 (present) in each frame (row i =
frame i; an unnamed first column is the frame index).

``read_targets(path, known)`` returns those trailing 0/1 columns (the behaviors) and the
frame index. Which columns are behaviors is not written in the file (SimBA's
project_config.ini names them): they are the run of 0/1 columns at the end, from the first
one named in ``known`` (the setup's behaviors and the keys of its ``behavior_map``) on. 0/1
feature columns just before the targets (a detection count that stays 0/1 in one video) are
thus not read as behaviors; they are logged. A column after the first known one that is not
known is an unknown behavior (the caller raises). A file without 0/1 columns at the end (a
``features_extracted`` file), without pose columns, or truncated raises :class:`InputError`
naming the file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

log = logging.getLogger("ethoflow")

_POSE = re.compile(r"_(x|y|p)$", re.IGNORECASE)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(path, "annotation file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    if path.suffix.lower() == ".parquet":
        raise InputError(path, "SimBA parquet files are not read: set SimBA's file type to csv")
    try:
        return pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable SimBA CSV: {err}") from err


def looks_like(columns) -> bool:
    """SimBA-like: x/y pose column pairs (``Nose_1_x``, ``Nose_1_y``)."""
    cols = [str(c) for c in columns]
    xs = {c[:-2].lower() for c in cols if c.lower().endswith("_x")}
    ys = {c[:-2].lower() for c in cols if c.lower().endswith("_y")}
    return len(xs & ys) >= 1


def _binary(col: pd.Series) -> bool:
    v = pd.to_numeric(col, errors="coerce")
    return bool(len(v)) and not v.isna().any() and v.isin([0, 1]).all()


def read_targets(
    path: str | os.PathLike, known: set[str] | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """``frames int64 [N]`` and the behavior columns ``[N, B]`` (bool) of a targets file;
    ``known``: lower-case names that are behaviors (None: the whole trailing 0/1 run)."""
    path = Path(path)
    df = _read(path)
    cols = [str(c) for c in df.columns]
    if not looks_like(cols):
        raise InputError(path, "not a SimBA targets_inserted file: no <bodypart>_x/_y pose columns")
    if len(df) == 0:
        raise InputError(path, "SimBA file has a header but no frames")
    first = cols[0]
    if first.startswith("Unnamed") or first in ("", "scorer", "frame", "index"):
        idx = pd.to_numeric(df[first], errors="coerce")
        if idx.isna().any():
            raise InputError(path, f"non-numeric frame index in column {first!r} (truncated?)")
        frames = idx.to_numpy(np.int64)
        data_cols = cols[1:]
    else:
        frames = np.arange(len(df), dtype=np.int64)
        data_cols = cols
    targets: list[str] = []
    for c in reversed(data_cols):
        if _POSE.search(c) or not _binary(df[c]):
            break
        targets.insert(0, c)
    if not targets:
        last = data_cols[-1]
        raise InputError(
            path,
            f"no behavior columns: the last column {last!r} is not 0/1 (a features_extracted "
            "file rather than targets_inserted, or a truncated one?)",
        )
    if known is not None:
        first_known = next((i for i, c in enumerate(targets) if c.strip().lower() in known), None)
        if first_known is None:
            raise InputError(
                path,
                f"none of the trailing 0/1 columns {targets} is a behavior of the setup (a "
                "features_extracted file rather than targets_inserted? else map the behavior "
                "columns in the setup's behavior_map)",
            )
        if first_known:
            log.info(
                "%s: 0/1 columns %s read as features, not behaviors", path, targets[:first_known]
            )
        targets = targets[first_known:]
    if len(frames) > 1 and (np.diff(frames) <= 0).any():
        raise InputError(path, "frame index is not increasing")
    return frames, df[targets].apply(pd.to_numeric).astype(bool)
