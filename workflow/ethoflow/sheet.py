"""The cohort sheet: read it, check it before any job runs."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .errors import InputError
from .vocab import POSE_FORMATS, SPLITS

COLUMNS = (
    "subject",
    "session",
    "setup",
    "video",
    "pose",
    "pose_format",
    "annotations",
    "split",
    "group",
    "start_frame",
    "end_frame",
)
RULE_PREFIX = "rule:"
LABEL_RULES = ("kinematic",)


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read the tab-separated sheet as strings; optional columns default to ''."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "cohort sheet not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, comment="#", keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable tab-separated sheet ({err})") from err
    df.columns = [c.strip() for c in df.columns]
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = ""
    df = df.apply(lambda c: c.str.strip())
    if (df["pose_format"] == "").any():
        df.loc[df["pose_format"] == "", "pose_format"] = "auto"
    if (df["group"] == "").any():
        df.loc[df["group"] == "", "group"] = "all"
    return df


def check_sheet(
    df: pd.DataFrame, path: str | os.PathLike, setups: dict, base: str | os.PathLike = "."
) -> pd.DataFrame:
    """Check every row; raise one InputError listing each bad row and file.

    Relative paths are resolved against ``base`` (the working directory of the run).
    Returns the sheet indexed by ``subject/session``.
    """
    base = Path(base)
    problems: list[str] = []
    for i, row in df.iterrows():
        where = f"row {i + 2} ({row['subject']}/{row['session']})"
        if row["setup"] not in setups:
            problems.append(
                f"{where}: unknown setup {row['setup']!r} (config has {sorted(setups)})"
            )
        if row["pose_format"] not in POSE_FORMATS:
            problems.append(
                f"{where}: unknown pose_format {row['pose_format']!r} for {row['pose']} "
                f"(known: {', '.join(POSE_FORMATS)})"
            )
        if row["split"] not in SPLITS:
            problems.append(f"{where}: split must be one of {SPLITS}, got {row['split']!r}")
        for col in ("pose", "video", "annotations"):
            value = row[col]
            if not value or (col == "annotations" and value.startswith(RULE_PREFIX)):
                continue
            if not (base / value).is_file():
                problems.append(f"{where}: {col} file not found: {value}")
        ann = row["annotations"]
        if ann.startswith(RULE_PREFIX) and ann[len(RULE_PREFIX) :] not in LABEL_RULES:
            problems.append(f"{where}: unknown label rule {ann!r} (known: rule:kinematic)")
        start, end = row["start_frame"], row["end_frame"]
        if start and end and int(end) <= int(start):
            problems.append(f"{where}: end_frame {end} must be after start_frame {start}")
    ids = df["subject"] + "/" + df["session"]
    for dup in sorted(set(ids[ids.duplicated()])):
        problems.append(f"subject/session {dup} appears more than once")
    if problems:
        raise InputError(path, "bad cohort sheet:\n  " + "\n  ".join(problems))
    out = df.copy()
    out.index = ids
    return out
