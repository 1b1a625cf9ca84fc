"""DeepLabCut inference files: CSV (3 header rows ``scorer/bodyparts/coords``, or 4 with
``individuals`` for multi-animal projects) and h5 (the same table in pandas' HDF5 format).

LightningPose writes the DLC CSV layout and is read here too. Missing points: NaN, or
exactly ``(0, 0)`` (the MABe h5 encodes missing so); a file without likelihood gets
confidence 1 where a point exists and 0 where it is missing.
"""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..errors import InputError
from ._h5 import strings


def sniff_csv(head: bytes) -> bool:
    """Whether the start of a text file (leading whitespace stripped) is a DLC CSV header."""
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lower()
    return first.startswith("scorer")


def sniff_h5(f: h5py.File) -> bool:
    """Whether an open HDF5 file holds a pandas table (DLC writes its h5 with pandas)."""
    for key in f:
        obj = f[key]
        if isinstance(obj, h5py.Group) and (
            "pandas_type" in obj.attrs or "block0_values" in obj or "table" in obj
        ):
            return True
    return False


def _from_columns(
    path: Path, values: np.ndarray, index: np.ndarray | None, cols: list[tuple]
) -> tuple[np.ndarray, np.ndarray, list[str], list[str] | None]:
    """DLC columns ``(individual|None, bodypart, coord)`` -> keypoints, confidence, names."""
    animals: list[str] = []
    parts: list[str] = []
    for ind, bp, _ in cols:
        if ind not in animals:
            animals.append(ind)
        if bp not in parts:
            parts.append(bp)
    coords = {c for *_, c in cols}
    if not {"x", "y"} <= coords:
        raise InputError(path, f"DLC columns lack x/y coordinates (found {sorted(coords)})")
    t = values.shape[0]
    kp = np.full((t, len(animals), len(parts), 2), np.nan, np.float32)
    conf = np.full((t, len(animals), len(parts)), np.nan, np.float32)
    present = np.zeros((len(animals), len(parts)), bool)
    for j, (ind, bp, c) in enumerate(cols):
        a, k = animals.index(ind), parts.index(bp)
        if c == "x":
            kp[:, a, k, 0] = values[:, j]
            present[a, k] = True
        elif c == "y":
            kp[:, a, k, 1] = values[:, j]
        elif c == "likelihood":
            conf[:, a, k] = values[:, j]
    if index is not None and len(index) and np.issubdtype(index.dtype, np.integer):
        if index.min() >= 0 and np.all(np.diff(index) > 0) and index[-1] + 1 != t:
            n = int(index[-1]) + 1
            kp2 = np.full((n, *kp.shape[1:]), np.nan, np.float32)
            conf2 = np.full((n, *conf.shape[1:]), np.nan, np.float32)
            kp2[index], conf2[index] = kp, conf
            kp, conf = kp2, conf2
    zero = (kp[..., 0] == 0) & (kp[..., 1] == 0)
    missing = zero | ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf = np.where(np.isnan(conf), np.where(missing, 0.0, 1.0), conf).astype(np.float32)
    conf[missing] = 0.0
    ids = None if animals == [None] else [str(a) for a in animals]
    return kp, conf, [str(p) for p in parts], ids


def _csv_header(path: Path) -> tuple[int, list[str], list[int], list[tuple]]:
    """The header of a DLC CSV: its line count, the coords row, the data columns and their
    ``(individual|None, bodypart, coord)``."""
    header: list[list[str]] = []
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.reader(fh):
            header.append(row)
            if len(header) >= 6 or (row and row[0].strip().lower() == "coords"):
                break
    rows = {str(h[0]).strip().lower(): [str(v).strip() for v in h] for h in header}
    if not header or "bodyparts" not in rows or "coords" not in rows:
        raise InputError(path, "not a DLC CSV: expected header rows scorer/bodyparts/coords")
    coords = rows["coords"]
    data_cols = [j for j, c in enumerate(coords) if c in ("x", "y", "likelihood")]
    if not data_cols:
        raise InputError(path, "DLC CSV has no x/y/likelihood columns")
    inds = rows.get("individuals")
    if len(rows["bodyparts"]) < len(coords) or (inds and len(inds) < len(coords)):
        raise InputError(path, "DLC CSV header rows have fewer cells than the coords row")
    cols = [(inds[j] if inds else None, rows["bodyparts"][j], coords[j]) for j in data_cols]
    return len(header), coords, data_cols, cols


def read_dlc_csv(path: Path) -> tuple:
    """Keypoints, confidence, bodyparts and individuals (None: single animal) of a DLC CSV."""
    n_header, coords, data_cols, cols = _csv_header(path)
    n_index = data_cols[0]
    try:
        df = pd.read_csv(path, skiprows=n_header, header=None, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"unreadable DLC CSV body: {err}") from err
    if df.shape[1] != len(coords):
        raise InputError(path, f"DLC CSV rows have {df.shape[1]} columns, header {len(coords)}")
    try:
        values = df.iloc[:, data_cols].to_numpy(np.float32)
    except ValueError as err:
        raise InputError(path, f"non-numeric values in DLC CSV: {err}") from err
    index = df.iloc[:, 0].to_numpy() if n_index == 1 else None
    if index is not None and not np.issubdtype(index.dtype, np.integer):
        index = None
    return _from_columns(path, values, index, cols)


def read_dlc_h5(path: Path) -> tuple:
    """Keypoints, confidence, bodyparts and individuals (None: single animal) of a DLC h5."""
    try:
        df = pd.read_hdf(path)
    except (ValueError, KeyError, OSError, TypeError) as err:
        raise InputError(path, f"not a readable DLC h5 table: {err}") from err
    if not isinstance(df, pd.DataFrame) or not isinstance(df.columns, pd.MultiIndex):
        raise InputError(path, "DLC h5 must hold a DataFrame with scorer/bodyparts/coords columns")
    names = [str(n) if n else "" for n in df.columns.names]
    lvl = {n: i for i, n in enumerate(names)}
    nlev = df.columns.nlevels
    if "bodyparts" not in lvl or "coords" not in lvl:
        # unnamed levels: (scorer, [individuals,] bodyparts, coords)
        lvl = {"bodyparts": nlev - 2, "coords": nlev - 1}
        if nlev == 4:
            lvl["individuals"] = 1
    cols = [
        (
            c[lvl["individuals"]] if "individuals" in lvl else None,
            c[lvl["bodyparts"]],
            c[lvl["coords"]],
        )
        for c in df.columns
    ]
    keep = [j for j, c in enumerate(cols) if c[2] in ("x", "y", "likelihood")]
    values = df.iloc[:, keep].to_numpy(np.float32)
    index = df.index.to_numpy()
    if not np.issubdtype(index.dtype, np.integer):
        index = None
    return _from_columns(path, values, index, [cols[j] for j in keep])


def _unique(names) -> list[str]:
    return [str(n) for n in dict.fromkeys(names)]


def _table_header(g: h5py.Group) -> tuple[list[str] | None, int | None]:
    """Bodyparts and frame count of a DLC table in pandas' fixed format (the group ``g``) from
    its index arrays: the last two column levels (``bodyparts``, ``coords``: ``axis0_level*``,
    ``axis0_label*``) and the row index ``axis1``; ``(None, None)`` for another layout. A few
    small reads (h5py costs ~0.1 ms each), never the values."""
    nlev = 0
    while f"axis0_level{nlev}" in g:
        nlev += 1
    if nlev < 2 or "axis1" not in g or "block0_values" not in g:
        return None, None
    b, c = g[f"axis0_level{nlev - 2}"], g[f"axis0_level{nlev - 1}"]
    if strings([b.attrs.get("name", b""), c.attrs.get("name", b"")]) not in (
        ["bodyparts", "coords"],
        ["", ""],
    ):
        return None, None  # named otherwise: let the reader work it out
    coords = np.asarray(strings(c[()]), dtype=object)[g[f"axis0_label{nlev - 1}"][()]]
    parts = np.asarray(strings(b[()]), dtype=object)[g[f"axis0_label{nlev - 2}"][()]]
    parts = _unique(parts[np.isin(coords, ["x", "y", "likelihood"])])
    axis1 = g["axis1"]
    t = int(axis1.shape[0])
    if not t or not np.issubdtype(axis1.dtype, np.integer) or int(axis1[t - 1]) + 1 == t:
        return parts, t
    index = axis1[()]
    if index.min() >= 0 and np.all(np.diff(index) > 0):
        return parts, int(index[-1]) + 1
    return parts, t


def peek_dlc_csv(path: Path) -> tuple[list[str], None]:
    """The bodyparts of a DLC CSV from its header rows (the frame count is not cheaply known)."""
    return _unique(bp for _, bp, _ in _csv_header(path)[3]), None


def peek_dlc_h5(f: h5py.File) -> tuple[list[str] | None, int | None]:
    """Bodyparts and frame count of the one DLC table in an open h5 (:func:`_table_header`);
    ``(None, None)`` when the file holds several groups or another layout."""
    groups = [g for g in f.values() if isinstance(g, h5py.Group)]
    if len(groups) == 1:
        return _table_header(groups[0])
    return None, None
