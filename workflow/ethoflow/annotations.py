"""Behavior annotations in any supported format -> one per-frame label vector.

Labels are ``int64 [T]``: 0 = other (background), ``i`` = ``behaviors[i - 1]``. Formats:

- ``frame_csv``: ``frame,behavior`` rows (frame optional: then row i = frame i);
- ``onehot_csv``: a column per behavior holding 0/1 (optional ``frame`` column); a frame with
  several behaviors gets the one listed first in ``behaviors``;
- ``events_csv``: BORIS-like ``behavior,start_s,stop_s`` (also ``start``/``stop`` or BORIS
  ``Behavior,Start (s),Stop (s)``); frames ``round(start_s*fps)`` to ``round(stop_s*fps)``
  (exclusive); later rows overwrite earlier ones where events overlap;
- ``calms21_json``: per-frame integers mapped through the file's ``vocab``;
- ``boris_tabular`` / ``boris_aggregated``: BORIS event exports (``ethoflow.boris``): START/STOP
  pairs or bouts, POINT events as one frame; ``sequence`` names the observation of a file
  holding several. Whose events: ``subjects`` names them (``["*"]``: all); else, where the
  file has several (focal) subjects, those of ``subject`` (the sheet's subject) when the file
  has it; else, with ``n_animals == 1``, an error (several subjects, none of them the
  session's: which one is it?); else every subject's (a multi-animal session's labels are per
  recording, not per animal);
- ``simba_csv``: SimBA ``targets_inserted`` CSVs (``ethoflow.simba``): the trailing 0/1
  column of each behavior.

Where behaviors overlap in a frame (BORIS, SimBA, one-hot) the one listed first in
``behaviors`` wins. ``behavior_map`` (the setup's ``behavior_map``) renames the file's
behaviors first (``{"Attack": "attack", "Sniffing": "other"}``); names are matched
case-insensitively. ``other``/``none``/``background`` (and empty cells)
mean 0; any other name that is not in ``behaviors`` raises InputError naming the file and the
label. Frames not annotated are 0. Annotations beyond ``n_frames`` are cut with a warning;
with ``overhang_s`` set (the workflow uses ``OVERHANG_S``, 1 s), annotations reaching more
than that many seconds past ``n_frames`` raise InputError: they belong to a longer recording,
or were timed at another fps. Within it they are the slack of event times rounded to frames
and of a few trailing video frames without pose (``pose.length_tolerance_frames``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .vocab import BACKGROUND

log = logging.getLogger("ethoflow")

BACKGROUND_NAMES = (BACKGROUND, "none", "background", "")
"""Names other tools give the background; all read as code 0."""
ANN_FORMATS = ("frame_csv", "onehot_csv", "events_csv", "calms21_json")
ANN_FORMATS += ("boris_tabular", "boris_aggregated", "simba_csv")
OVERHANG_S = 1.0
"""Seconds annotations may reach past the pose before that is an error (see the module doc)."""
_START = ("start_s", "start", "start (s)", "start_time", "onset")
_STOP = ("stop_s", "stop", "stop (s)", "end_s", "end", "stop_time", "offset")


def _codes(path: Path, names, behaviors: list[str], behavior_map: dict | None = None) -> np.ndarray:
    """Behavior names -> label codes (after ``behavior_map``); unknown names raise InputError."""
    lookup = {b.lower(): i + 1 for i, b in enumerate(behaviors)}
    for b in BACKGROUND_NAMES:
        lookup.setdefault(b, 0)
    labels = pd.Series(names, dtype=object).fillna("").astype(str).str.strip().str.lower()
    if behavior_map:
        rename = {str(k).strip().lower(): str(v).strip().lower() for k, v in behavior_map.items()}
        labels = labels.map(lambda n: rename.get(n, n))
    codes = labels.map(lookup)
    bad = labels[codes.isna()]
    if len(bad):
        raise InputError(
            path,
            f"label {bad.iloc[0]!r} is not in the behavior vocabulary {behaviors} "
            f"({bad.nunique()} unknown label(s): {sorted(bad.unique())[:5]}; map them in the "
            "setup's behavior_map, to 'other' to ignore them)",
        )
    return codes.to_numpy(np.int64)


def check_overhang(
    path: Path, end: int, n_frames: int, fps: float, overhang_s: float | None
) -> None:
    """InputError when annotations ending at frame ``end`` (exclusive) reach more than
    ``overhang_s`` seconds past the ``n_frames`` of the pose (None: no limit)."""
    over = int(end) - int(n_frames)
    if overhang_s is None or over <= 0 or over <= overhang_s * fps:
        return
    raise InputError(
        path,
        f"annotations reach frame {int(end)} but the pose has {n_frames} frames: {over} frames "
        f"({over / fps:.1f} s at {fps:g} fps) longer than the pose, beyond the tolerance of "
        f"{overhang_s:g} s (annotations of another recording, or timed at another fps?)",
    )


def _place(
    path: Path,
    frames: np.ndarray,
    codes: np.ndarray,
    n_frames: int,
    fps: float = 1.0,
    overhang_s: float | None = None,
) -> np.ndarray:
    if len(frames) and frames.min() < 0:
        raise InputError(path, f"negative frame index {int(frames.min())}")
    if len(frames):
        check_overhang(path, int(frames.max()) + 1, n_frames, fps, overhang_s)
    keep = frames < n_frames
    if not keep.all():
        log.warning("%s: %d annotated frames beyond %d dropped", path, (~keep).sum(), n_frames)
    out = np.zeros(n_frames, np.int64)
    out[frames[keep]] = codes[keep]
    return out


def _find(cols: list[str], options: tuple) -> str | None:
    low = {c.strip().lower(): c for c in cols}
    return next((low[o] for o in options if o in low), None)


def _detect(path: Path, df: pd.DataFrame | None) -> str:
    if path.suffix.lower() == ".json":
        return "calms21_json"
    cols = list(df.columns)
    if _find(cols, ("behavior",)) and _find(cols, _START) and _find(cols, _STOP):
        return "events_csv"
    if _find(cols, ("behavior", "label")):
        return "frame_csv"
    return "onehot_csv"


def read_delimited(path: str | os.PathLike, what: str, kind: str) -> pd.DataFrame:
    """A small CSV or TSV (the separator sniffed from its first line) as strings, or an
    InputError naming the file: ``{what} file not found``, ``empty file`` or
    ``not a readable {kind}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    with open(path, encoding="utf-8", errors="replace") as fh:
        sep = "\t" if "\t" in fh.readline() else ","
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable {kind}: {err}") from err


def _read_csv(path: Path) -> pd.DataFrame:
    return read_delimited(path, "annotation", "annotation CSV")


def _int_col(path: Path, series: pd.Series, what: str) -> np.ndarray:
    try:
        return pd.to_numeric(series).to_numpy()
    except ValueError as err:
        raise InputError(path, f"non-numeric {what} column: {err}") from err


def load_annotations(
    path: str | os.PathLike,
    n_frames: int,
    behaviors: list[str],
    fps: float,
    fmt: str = "auto",
    *,
    sequence: str | None = None,
    behavior_map: dict | None = None,
    subjects: list[str] | None = None,
    subject: str | None = None,
    n_animals: int | None = None,
    overhang_s: float | None = None,
) -> np.ndarray:
    """Per-frame labels ``int64 [n_frames]`` from an annotation file (see module docstring)."""
    from . import boris, simba

    path = Path(path)
    behaviors = list(behaviors)
    if fmt not in ("auto", *ANN_FORMATS):
        raise InputError(path, f"unknown annotation format {fmt!r} (known: {ANN_FORMATS})")
    over = {"fps": fps, "overhang_s": overhang_s}
    if fmt == "calms21_json" or (fmt == "auto" and path.suffix.lower() == ".json"):
        return _load_calms21(path, n_frames, behaviors, sequence, behavior_map, **over)
    if fmt in boris.FORMATS or (fmt == "auto" and boris.sniff(path)):
        ev = boris.read_events(path, fmt, observation=sequence)
        ev = ev[boris.pick_subjects(path, ev, subjects, subject, n_animals)]
        return _from_boris(path, ev, n_frames, behaviors, fps, behavior_map, overhang_s)
    df = _read_csv(path)
    if fmt == "simba_csv" or (fmt == "auto" and simba.looks_like(df.columns)):
        known = {b.lower() for b in behaviors}
        known |= {str(k).strip().lower() for k in behavior_map or {}}
        frames, targets = simba.read_targets(path, known | set(BACKGROUND_NAMES) - {""})
        return _from_columns(path, frames, targets, n_frames, behaviors, behavior_map, **over)
    if fmt == "auto":
        fmt = _detect(path, df)
    cols = list(df.columns)
    frame_col = _find(cols, ("frame", "frame_index", "frames"))
    if fmt == "events_csv":
        beh, start, stop = _find(cols, ("behavior",)), _find(cols, _START), _find(cols, _STOP)
        if not (beh and start and stop):
            raise InputError(path, f"event CSV needs behavior,start_s,stop_s columns, has {cols}")
        codes = _codes(path, df[beh], behaviors, behavior_map)
        s = np.round(_int_col(path, df[start], "start") * fps).astype(np.int64)
        e = np.round(_int_col(path, df[stop], "stop") * fps).astype(np.int64)
        if (e < s).any():
            raise InputError(path, f"event stops before it starts (row {int(np.argmax(e < s))})")
        if len(e):
            check_overhang(path, int(e.max()), n_frames, fps, overhang_s)
        out = np.zeros(n_frames, np.int64)
        for c, a, b in zip(codes, np.clip(s, 0, n_frames), np.clip(e, 0, n_frames), strict=True):
            out[a:b] = c
        if (e > n_frames).any():
            log.warning("%s: events beyond frame %d cut", path, n_frames)
        return out
    frames = (
        _int_col(path, df[frame_col], "frame").astype(np.int64)
        if frame_col
        else np.arange(len(df), dtype=np.int64)
    )
    if fmt == "frame_csv":
        beh = _find(cols, ("behavior", "label"))
        if beh is None:
            raise InputError(path, f"per-frame CSV needs a behavior column, has {cols}")
        codes = _codes(path, df[beh], behaviors, behavior_map)
        return _place(path, frames, codes, n_frames, **over)
    names = [c for c in cols if c != frame_col and c.strip().lower() not in ("time", "time_s")]
    if not names:
        raise InputError(path, "one-hot CSV has no behavior columns")
    onehot = pd.DataFrame({c: _int_col(path, df[c], c) > 0 for c in names})
    return _from_columns(path, frames, onehot, n_frames, behaviors, behavior_map, **over)


def _from_columns(
    path: Path,
    frames: np.ndarray,
    onehot: pd.DataFrame,
    n_frames: int,
    behaviors: list[str],
    behavior_map: dict | None,
    fps: float = 1.0,
    overhang_s: float | None = None,
) -> np.ndarray:
    """One bool column per behavior name -> codes; the first listed behavior wins a frame."""
    col_codes = _codes(path, list(onehot.columns), behaviors, behavior_map)  # unknown raise
    codes = np.zeros(len(onehot), np.int64)
    for code in sorted({int(c) for c in col_codes if c > 0}, reverse=True):
        hit = onehot.iloc[:, np.flatnonzero(col_codes == code)].to_numpy(bool).any(1)
        codes[hit] = code
    return _place(path, np.asarray(frames, np.int64), codes, n_frames, fps, overhang_s)


def _from_boris(
    path: Path,
    ev: pd.DataFrame,
    n_frames: int,
    behaviors: list[str],
    fps: float,
    behavior_map: dict | None,
    overhang_s: float | None = None,
) -> np.ndarray:
    """BORIS events (of the chosen subjects) -> codes: bouts ``[round(start*fps),
    round(stop*fps))``, POINT events one frame; the first listed behavior wins where events
    overlap."""
    codes = _codes(path, ev["behavior"], behaviors, behavior_map)
    s = np.round(ev["start_s"].to_numpy(float) * fps).astype(np.int64)
    e = np.round(ev["stop_s"].to_numpy(float) * fps).astype(np.int64)
    e = np.where(ev["point"].to_numpy(bool), s + 1, np.maximum(e, s))
    if len(e):
        check_overhang(path, int(e.max()), n_frames, fps, overhang_s)
    if (e > n_frames).any():
        log.warning("%s: events beyond frame %d cut", path, n_frames)
    out = np.zeros(n_frames, np.int64)
    for code in sorted({int(c) for c in codes if c > 0}, reverse=True):
        for a, b in zip(s[codes == code], e[codes == code], strict=True):
            out[max(a, 0) : min(b, n_frames)] = code
    return out


def _load_calms21(
    path: Path,
    n_frames: int,
    behaviors: list[str],
    sequence: str | None,
    behavior_map=None,
    fps: float = 1.0,
    overhang_s: float | None = None,
):
    from .formats.calms21 import calms21_sequences, pick_sequence

    if not path.is_file():
        raise InputError(path, "annotation file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    key, seq = pick_sequence(path, calms21_sequences(path), sequence)
    if "annotations" not in seq:
        raise InputError(path, f"CalMS21 sequence {key!r} has no annotations")
    vocab = (seq.get("metadata") or {}).get("vocab")
    if not isinstance(vocab, dict):
        raise InputError(path, f"CalMS21 sequence {key!r} has no metadata.vocab")
    inverse = {int(v): str(k) for k, v in vocab.items()}
    ints = np.asarray(seq["annotations"], dtype=np.int64)
    unknown = sorted(set(np.unique(ints).tolist()) - set(inverse))
    if unknown:
        raise InputError(path, f"annotation codes {unknown} are not in the vocab {vocab}")
    table = np.zeros(max(inverse) + 1, np.int64)
    keys = sorted(inverse)
    table[keys] = _codes(path, [inverse[k] for k in keys], behaviors, behavior_map)
    return _place(path, np.arange(len(ints)), table[ints], n_frames, fps, overhang_s)


def read_frame_csv(path: str | os.PathLike, behaviors: list[str]) -> np.ndarray:
    """Label codes of a ``frame,behavior`` file (``results.write_labels`` writes them)."""
    path = Path(path)
    df = _read_csv(path)
    frame_col = _find(list(df.columns), ("frame",))
    n = int(_int_col(path, df[frame_col], "frame").max()) + 1 if frame_col and len(df) else len(df)
    return load_annotations(path, n, behaviors, fps=1.0, fmt="frame_csv")
