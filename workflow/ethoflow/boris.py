"""BORIS event exports: read them as events, write events BORIS imports.

BORIS (Friard & Gamba) exports the coded events of an observation two ways
(Observations > Export events / Export aggregated events, TSV or CSV):

- **tabular events**: one row per event occurrence, columns ``Observation id, ..., Subject,
  Behavior, Behavioral category, [Modifier #i], Behavior type, Time, ...``; the START / STOP /
  POINT status is in ``Behavior type`` (BORIS 8) or ``Status`` (older versions, whose files
  may also open with a few ``key<TAB>value`` lines before the table);
- **aggregated events**: one row per bout, ``Observation id, ..., Subject, Observation
  duration by subject by observation, Behavior, Behavioral category, Modifiers, Behavior type
  (STATE / POINT), Start (s), Stop (s), Duration (s), ...``.

``read_events(path)`` returns both as one table ``subject, behavior, start_s, stop_s, point``
(POINT events: ``stop_s == start_s``). A file with several observations needs the
observation id; unpaired START/STOP, missing columns, non-numeric times and empty files
raise :class:`InputError` naming the file and the row.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .errors import InputError

FORMATS = ("boris_tabular", "boris_aggregated")
NO_FOCAL = "No focal subject"
START, STOP, POINT, STATE = "START", "STOP", "POINT", "STATE"
AGGREGATED_COLUMNS = [
    "Observation id",
    "Observation date",
    "Description",
    "Observation type",
    "Source",
    "Total length",
    "FPS",
    "Subject",
    "Observation duration by subject by observation",
    "Behavior",
    "Behavioral category",
    "Modifiers",
    "Behavior type",
    "Start (s)",
    "Stop (s)",
    "Duration (s)",
    "Image index start",
    "Image index stop",
    "Image file path start",
    "Image file path stop",
    "Comment start",
    "Comment stop",
]
"""The aggregated-events header of BORIS 8 (``export_events.export_aggregated_events``)."""


def _rows(path: Path, limit: int | None = None) -> tuple[list[list[str]], str]:
    """The CSV/TSV rows of ``path`` (of its first ``limit`` bytes, whole lines only)."""
    if not path.is_file():
        raise InputError(path, "annotation file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    with open(path, "rb") as fh:
        raw = fh.read(limit) if limit else fh.read()
    if limit and len(raw) == limit:
        raw = raw[: raw.rfind(b"\n") + 1] or raw
    if raw[:2] == b"PK" or raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise InputError(
            path, "a spreadsheet (xlsx/ods/xls): export the BORIS events as TSV or CSV"
        )
    text = raw.decode("utf-8-sig", errors="replace")
    sep = "\t" if "\t" in text[:4096] else ","
    return list(csv.reader(io.StringIO(text), delimiter=sep)), sep


def _header_index(rows: list[list[str]]) -> int | None:
    """The table header: the first row holding ``Behavior`` and ``Time`` or ``Start (s)``."""
    for i, row in enumerate(rows[:200]):
        cells = {c.strip() for c in row}
        if "Behavior" in cells and ("Time" in cells or "Start (s)" in cells):
            return i
    return None


def sniff(path: str | os.PathLike) -> str | None:
    """``boris_tabular``, ``boris_aggregated`` or None (not a BORIS export)."""
    path = Path(path)
    try:
        rows, _ = _rows(path, limit=1 << 16)
    except InputError:
        return None
    i = _header_index(rows)
    if i is None:
        return None
    cells = {c.strip() for c in rows[i]}
    if not cells & {"Subject", "Observation id", "Behavioral category"}:
        return None  # a plain behavior,start,stop table: not BORIS
    return "boris_aggregated" if "Start (s)" in cells else "boris_tabular"


def _table(path: Path) -> tuple[pd.DataFrame, int]:
    rows, _ = _rows(path)
    i = _header_index(rows)
    if i is None:
        raise InputError(
            path, "not a BORIS export: no header row with 'Behavior' and 'Time' or 'Start (s)'"
        )
    head = [c.strip() for c in rows[i]]
    body = [r for r in rows[i + 1 :] if any(c.strip() for c in r)]
    if not body:
        raise InputError(path, f"BORIS export has a header (line {i + 1}) but no events")
    for j, r in enumerate(body):
        if len(r) < len(head) and len(r) != 1:
            line = i + 2 + j
            raise InputError(
                path, f"line {line} has {len(r)} cells, the header {len(head)} (truncated file?)"
            )
    body = [(r + [""] * len(head))[: len(head)] for r in body]
    return pd.DataFrame(body, columns=head), i + 2  # line number of the first body row


def _times(path: Path, col: pd.Series, what: str, first_line: int) -> np.ndarray:
    vals = pd.to_numeric(col.str.strip(), errors="coerce")
    bad = vals.isna().to_numpy()
    if bad.any():
        j = int(np.argmax(bad))
        raise InputError(
            path,
            f"line {first_line + j}: {what} {col.iloc[j]!r} is not a number of seconds "
            "(an observation from images? export one with timestamps)",
        )
    return vals.to_numpy(float)


def _observation(path: Path, df: pd.DataFrame, observation: str | None) -> pd.DataFrame:
    if "Observation id" not in df:
        return df
    ids = list(dict.fromkeys(df["Observation id"]))
    if observation is not None:
        if observation not in ids:
            raise InputError(path, f"no observation {observation!r} (has {ids[:5]})")
        return df[df["Observation id"] == observation]
    if len(ids) > 1:
        raise InputError(
            path, f"holds {len(ids)} observations ({ids[:5]}); name one or export one per file"
        )
    return df


def _subjects(df: pd.DataFrame) -> pd.Series:
    if "Subject" not in df:
        return pd.Series(NO_FOCAL, index=df.index)
    s = df["Subject"].str.strip()
    return s.where(s != "", NO_FOCAL)


def read_events(
    path: str | os.PathLike, fmt: str = "auto", *, observation: str | None = None
) -> pd.DataFrame:
    """Events of a BORIS export: ``subject, behavior, start_s, stop_s, point`` by start."""
    path = Path(path)
    sniffed = sniff(path)
    if fmt == "auto":
        if sniffed is None:
            _table(path)  # raises the precise reason
            raise InputError(path, "not a BORIS events export (no Subject/Observation id column)")
        fmt = sniffed
    elif fmt not in FORMATS:
        raise InputError(path, f"unknown BORIS format {fmt!r} (known: {FORMATS})")
    elif sniffed is not None and sniffed != fmt:
        raise InputError(path, f"labelled {fmt!r} but the content is {sniffed!r}")
    df, first = _table(path)
    df = _observation(path, df, observation)
    if "Behavior" not in df:
        raise InputError(path, f"BORIS export lacks a 'Behavior' column (has {list(df.columns)})")
    out = _aggregated(path, df, first) if fmt == "boris_aggregated" else _tabular(path, df, first)
    return out.sort_values(["start_s", "stop_s"], kind="stable").reset_index(drop=True)


def _aggregated(path: Path, df: pd.DataFrame, first: int) -> pd.DataFrame:
    for col in ("Start (s)", "Stop (s)"):
        if col not in df:
            raise InputError(
                path, f"BORIS aggregated export lacks {col!r} (has {list(df.columns)})"
            )
    kind = df["Behavior type"].str.strip().str.upper() if "Behavior type" in df else None
    point = (kind == POINT).to_numpy() if kind is not None else np.zeros(len(df), bool)
    start = _times(path, df["Start (s)"], "Start (s)", first)
    stop_col = df["Stop (s)"].where(~point, df["Start (s)"])
    stop_col = stop_col.where(stop_col.str.strip().str.upper() != "NA", df["Start (s)"])
    stop = _times(path, stop_col, "Stop (s)", first)
    bad = stop < start
    if bad.any():
        j = int(np.argmax(bad))
        raise InputError(path, f"line {first + j}: the event stops ({stop[j]}) before it starts")
    return pd.DataFrame(
        {
            "subject": _subjects(df).to_numpy(),
            "behavior": df["Behavior"].str.strip().to_numpy(),
            "start_s": start,
            "stop_s": np.where(point, start, stop),
            "point": point,
        }
    )


def _tabular(path: Path, df: pd.DataFrame, first: int) -> pd.DataFrame:
    status_col = next(
        (
            c
            for c in ("Status", "Behavior type")
            if c in df and df[c].str.strip().str.upper().isin([START, STOP, POINT]).all()
        ),
        None,
    )
    if status_col is None:
        raise InputError(
            path,
            "BORIS tabular export needs a START/STOP/POINT column ('Status' or 'Behavior "
            f"type'); has {list(df.columns)}",
        )
    if "Time" not in df:
        raise InputError(path, f"BORIS tabular export lacks 'Time' (has {list(df.columns)})")
    times = _times(path, df["Time"], "Time", first)
    status = df[status_col].str.strip().str.upper().to_numpy()
    subjects, behaviors = _subjects(df).to_numpy(), df["Behavior"].str.strip().to_numpy()
    order = np.argsort(times, kind="stable")
    open_: dict[tuple[str, str], tuple[float, int]] = {}
    rows = []
    for j in order:
        key, line = (subjects[j], behaviors[j]), first + int(df.index[j])
        if status[j] == POINT:
            rows.append((*key, times[j], times[j], True))
        elif status[j] == START:
            if key in open_:
                raise InputError(
                    path, f"line {line}: {key[1]!r} of {key[0]!r} starts again before it stops"
                )
            open_[key] = (times[j], line)
        else:
            if key not in open_:
                raise InputError(
                    path, f"line {line}: {key[1]!r} of {key[0]!r} stops but never started"
                )
            rows.append((*key, open_.pop(key)[0], times[j], False))
    if open_:
        (subj, beh), (_, line) = next(iter(open_.items()))
        raise InputError(
            path,
            f"{len(open_)} state event(s) never stop, e.g. {beh!r} of {subj!r} started at line "
            f"{line} (truncated file, or unpaired events in BORIS)",
        )
    return pd.DataFrame(rows, columns=["subject", "behavior", "start_s", "stop_s", "point"])


def pick_subjects(
    path: str | os.PathLike,
    events: pd.DataFrame,
    subjects: list[str] | None = None,
    subject: str | None = None,
    n_animals: int | None = None,
) -> np.ndarray:
    """Which rows of ``events`` (``read_events``) label a session, as a bool mask.

    ``subjects`` (the sheet's ``annotation_subjects``) names the BORIS subjects, ``["*"]``
    all of them; a name the file lacks is an error. Without it: a file with at most one focal
    subject (``No focal subject`` aside) is taken whole; of several, those of ``subject`` (the
    sheet's subject; exact, else case-insensitive) when one of them; else with ``n_animals ==
    1`` an InputError asks which (one animal, several subjects: taking all would mix animals);
    else all (a multi-animal session is labelled per recording)."""
    have = list(dict.fromkeys(events["subject"]))
    if subjects:
        if list(subjects) == ["*"]:
            return np.ones(len(events), bool)
        unknown = [s for s in subjects if s not in have]
        if unknown:
            raise InputError(
                path,
                f"no events of subject(s) {unknown} (annotation_subjects; the file has {have})",
            )
        return events["subject"].isin(list(subjects)).to_numpy()
    focal = [s for s in have if s != NO_FOCAL]
    if len(focal) < 2:
        return np.ones(len(events), bool)
    if subject:
        hit = [s for s in focal if s == subject] or [
            s for s in focal if s.strip().lower() == subject.strip().lower()
        ]
        if hit:
            return (events["subject"] == hit[0]).to_numpy()
    if n_animals == 1:
        raise InputError(
            path,
            f"holds the events of {len(focal)} subjects {sorted(focal)}, none named like the "
            f"session's subject {subject!r}: name the ones of this session in the sheet's "
            "annotation_subjects column (';'-separated, '*' for all)",
        )
    return np.ones(len(events), bool)


# ---------------------------------------------------------------- writing
def write_aggregated(
    events: pd.DataFrame,
    path: str | os.PathLike,
    *,
    observation: str,
    subject: str = NO_FOCAL,
    media: str = "",
    fps: float | None = None,
    total_length: float | None = None,
    category: str = "",
) -> None:
    """``behavior, start_s, stop_s`` events (``results.read_events``) as a BORIS
    aggregated-events CSV with BORIS 8's header, one STATE row per bout: the table BORIS
    writes and its "Import events from file" reads (``Subject, Behavior, Start (s), Stop (s)``)
    and that :func:`read_events` reads back."""
    ev = events.sort_values(["start_s", "stop_s"], kind="stable")
    dur = (ev["stop_s"] - ev["start_s"]).to_numpy(float)
    n = len(ev)
    fmt3 = np.vectorize(lambda v: f"{v:.3f}", otypes=[object])
    table = {c: [""] * n for c in AGGREGATED_COLUMNS}
    table.update(
        {
            "Observation id": [observation] * n,
            "Observation type": ["Media file"] * n,
            "Source": [f"player #1:{media}" if media else ""] * n,
            "Total length": [f"{total_length:.3f}" if total_length else ""] * n,
            "FPS": [f"{fps:.3f}" if fps else ""] * n,
            "Subject": [subject] * n,
            "Observation duration by subject by observation": [f"{dur.sum():.3f}"] * n,
            "Behavior": ev["behavior"].astype(str).tolist(),
            "Behavioral category": [category] * n,
            "Behavior type": [STATE] * n,
            "Start (s)": list(fmt3(ev["start_s"].to_numpy(float))) if n else [],
            "Stop (s)": list(fmt3(ev["stop_s"].to_numpy(float))) if n else [],
            "Duration (s)": list(fmt3(dur)) if n else [],
        }
    )
    with atomic_path(path) as tmp:
        pd.DataFrame(table, columns=AGGREGATED_COLUMNS).to_csv(tmp, index=False)
