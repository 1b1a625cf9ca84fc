"""The cohort sheet: read it, check it before any job runs.

The sheet is tab-separated text with one header line. Lines that start with ``#`` are comments
and blank lines are skipped; a ``#`` anywhere else is data (a group ``A#1``, a path with ``#``).
The allowed values of each column are those of ``workflow/schemas/sessions.schema.yaml``.

Nothing in a sheet may be silently misread: ``read_sheet`` stops on a sheet it cannot read as
meant (another separator, missing or unknown columns, no sessions, a line with more cells than
the header), and ``check_sheet`` reports every bad cell and file of every row at once, each
with the sheet's path, the line in the file, the subject/session and the column.
"""

from __future__ import annotations

import csv
import difflib
import os
import stat
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from .errors import InputError

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "sessions.schema.yaml"


@cache
def schema() -> dict:
    """The schema of one sheet row (parsed once; callers get a shared dict, do not modify it)."""
    with open(SCHEMA) as f:
        return yaml.safe_load(f)


COLUMNS: tuple[str, ...] = tuple(schema()["properties"])
REQUIRED: tuple[str, ...] = tuple(schema()["required"])
DEFAULTS = {"pose_format": "auto", "group": "all"}  # of a column left empty
FILE_COLUMNS = ("pose", "video", "annotations")
RULE_PREFIX = "rule:"
LABEL_RULES = ("kinematic",)
LINES = "sheet_lines"  # key of DataFrame.attrs: the line in the file of each row
PATTERN_HINTS = {
    "subject": "must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
    "session": "must start with a letter or digit and hold only letters, digits, '_', '.', '-'",
    "start_frame": "must be a frame number (0, 1, 2, ...) or empty",
    "end_frame": "must be a frame number (0, 1, 2, ...) or empty",
    "n_frames": "must be a number of frames or empty",
    "fps": "must be a number of frames per second (e.g. 30 or 29.97) or empty",
}


def _nearest(word: str, choices) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    if not close and word.lower() in {c.lower() for c in choices}:
        close = [c for c in choices if c.lower() == word.lower()]
    return close[0] if close else None


def _cells(line: str) -> list[str]:
    return next(csv.reader([line], delimiter="\t"))


def _report(path, problems: list[str]) -> InputError:
    n = len(problems)
    head = f"bad cohort sheet ({n} problem{'s' if n > 1 else ''}):"
    return InputError(path, "\n  ".join([head, *problems]))


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read the tab-separated sheet as strings; optional columns default to ''.

    ``df.attrs["sheet_lines"]`` holds the 1-based line in the file of each row.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "cohort sheet not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(path, f"cohort sheet is not UTF-8 text ({err})") from err
    except OSError as err:
        raise InputError(path, f"cannot read the cohort sheet ({err.strerror})") from err
    lines = [
        (n, line)
        for n, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)
        if line.strip() and not line.startswith("#")
    ]
    expected = "\t".join(COLUMNS)
    if not lines:
        raise InputError(
            path, f"cohort sheet is empty: no header line (the tab-separated columns: {expected})"
        )
    n_head, head = lines[0]
    where = f"{path}, line {n_head} (header)"
    if "\t" not in head:
        seps = {",": "comma", ";": "semicolon", " ": "space"}
        sep = max(seps, key=head.count)
        if head.count(sep):
            raise InputError(
                path,
                f"cohort sheet must be tab-separated, but line {n_head} (header) is "
                f"{seps[sep]}-separated ({head.strip()!r}); save it as tab-separated text",
            )
    names = [c.strip() for c in _cells(head)]
    problems = []
    for i, name in enumerate(names, 1):
        if not name:
            problems.append(f"{where}: column {i} has no name")
        elif names.index(name) != i - 1:
            problems.append(f"{where}: column {name!r} appears more than once")
        elif name not in COLUMNS:
            near = _nearest(name, COLUMNS)
            hint = f"did you mean {near!r}?" if near else f"the columns are: {', '.join(COLUMNS)}"
            problems.append(f"{where}: unknown column {name!r} ({hint})")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        problems.append(f"{where}: missing required column(s): {', '.join(missing)}")
    if problems:
        raise _report(path, problems)
    if len(lines) == 1:
        raise InputError(
            path,
            f"cohort sheet has a header (line {n_head}) but no sessions: add one tab-separated "
            "line per session",
        )
    rows, numbers = [], []
    for n, line in lines[1:]:
        cells = _cells(line)
        while len(cells) > len(names) and not cells[-1].strip():
            cells.pop()  # trailing empty cells
        if len(cells) > len(names):
            problems.append(
                f"{path}, line {n}: {len(cells)} tab-separated cells but the header has "
                f"{len(names)} columns"
            )
        elif len(cells) == 1 and len(names) > 1:
            problems.append(f"{path}, line {n}: no tab in this line (the sheet is tab-separated)")
        rows.append([c.strip() for c in cells] + [""] * (len(names) - len(cells)))
        numbers.append(n)
    if problems:
        raise _report(path, problems)
    df = pd.DataFrame(rows, columns=names, dtype=str)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = ""
    for col, default in DEFAULTS.items():
        df.loc[df[col] == "", col] = default
    df.attrs[LINES] = numbers
    return df


def _schema_problem(err, col: str, value: str) -> str:
    """A jsonschema error of one cell in words."""
    if value == "" and err.validator in ("pattern", "minLength"):
        return "is empty; every session needs one"
    if err.validator == "enum":
        near = _nearest(value, err.validator_value)
        hint = f"; did you mean {near!r}?" if near else ""
        return f"unknown {col} {value!r} (one of: {', '.join(err.validator_value)}{hint})"
    if err.validator == "pattern":
        return f"{value!r} {PATTERN_HINTS.get(col, f'does not match {err.validator_value}')}"
    return err.message


def _text(value) -> str:
    """A cell as text (a frame built in code may hold numbers or NaN)."""
    return "" if value is None or value != value else str(value)


def _file_problem(base: str, value: str) -> str | None:
    """Why the file ``value`` cannot be read, or None (one stat: cheap for 10,000 sessions)."""
    file = os.path.join(base, value)
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return f"file not found: {value}"
    except OSError as err:
        return f"file cannot be read ({err.strerror}): {value}"
    if stat.S_ISDIR(st.st_mode):
        return f"is a directory, not a file: {value}"
    if st.st_size == 0:
        return f"file is empty (0 bytes): {value}"
    if not os.access(file, os.R_OK):
        return f"file is not readable (permission denied): {value}"
    return None


def check_sheet(
    df: pd.DataFrame, path: str | os.PathLike, setups: dict, base: str | os.PathLike = "."
) -> pd.DataFrame:
    """Check every row; raise one InputError listing every problem of every row.

    Each cell is checked against the sheet schema, the setup against ``setups``, each file
    for existence, size and read permission (relative paths are resolved against ``base``, the
    working directory of the run), the frame range and the uniqueness of subject/session.
    Problems name the line of the file (``df.attrs["sheet_lines"]`` from ``read_sheet``; else
    the row, counting from 1) and the column. Returns the sheet indexed by ``subject/session``.
    """
    import jsonschema

    if df.empty:
        raise InputError(path, "cohort sheet has no sessions: add one line per session")
    base = os.fspath(base)
    lines = df.attrs.get(LINES)
    if lines is None or len(lines) != len(df):
        lines = None
    # The schema's "properties" check each cell on its own: run them once per distinct value
    # of a column (10,000 sessions share a few setups, formats, splits), the rest of the
    # schema (required, ...) on every row.
    row_schema = {k: v for k, v in schema().items() if k != "properties"}
    row_validator = jsonschema.Draft202012Validator(row_schema)
    cell_validators = {
        col: jsonschema.Draft202012Validator(sub) for col, sub in schema()["properties"].items()
    }
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(path, f"cohort sheet lacks the required column(s): {', '.join(missing)}")
    # plain lists (column access on the frame would copy its attrs, the line numbers, each time)
    given = dict(zip(df.columns, df.to_numpy(dtype=object).T.tolist(), strict=True))
    columns = {c: [_text(v) for v in given.get(c, [""] * len(df))] for c in COLUMNS}
    cell_errors: dict[str, dict[str, list]] = {
        col: {v: list(val.iter_errors(v)) for v in set(columns[col])}
        for col, val in cell_validators.items()
    }
    problems: list[str] = []
    ids = [f"{a}/{b}" for a, b in zip(columns["subject"], columns["session"], strict=True)]
    for i, values in enumerate(zip(*columns.values(), strict=True)):
        row = dict(zip(columns, values, strict=True))
        where = f"{path}, {f'line {lines[i]}' if lines else f'row {i + 1}'} ({ids[i]})"

        def add(col, problem, where=where):
            problems.append(f"{where}, column {col}: {problem}")

        for err in row_validator.iter_errors(row):
            col = str(err.path[0]) if err.path else "?"
            add(col, _schema_problem(err, col, row.get(col, "")))
        for col, errors in cell_errors.items():
            for err in errors[row[col]]:
                add(col, _schema_problem(err, col, row[col]))
        setup = row["setup"]
        if setup and setup not in setups:
            near = _nearest(setup, setups)
            hint = f"did you mean {near!r}? " if near else ""
            add("setup", f"unknown setup {setup!r} ({hint}the config has {', '.join(setups)})")
        elif not setup:
            add("setup", "is empty; every session needs one")
        for col in FILE_COLUMNS:
            value = row[col]
            if not value or (col == "annotations" and value.startswith(RULE_PREFIX)):
                continue
            why = _file_problem(base, value)
            if why:
                add(col, why)
        ann = row["annotations"]
        if ann.startswith(RULE_PREFIX) and ann[len(RULE_PREFIX) :] not in LABEL_RULES:
            known = ", ".join(RULE_PREFIX + r for r in LABEL_RULES)
            add("annotations", f"unknown label rule {ann!r} (known: {known})")
        start, end = row["start_frame"], row["end_frame"]
        if start.isdigit() and end.isdigit() and int(end) <= int(start):
            add("end_frame", f"end_frame {end} must be after start_frame {start}")
        # beyond the recording: known here only where the sheet gives its length (no file is
        # opened at DAG build); else the pose step stops on a start_frame past the pose's end
        n = row.get("n_frames", "")
        if n.isdigit() and start.isdigit() and int(start) >= int(n):
            add("start_frame", f"start_frame {start} is beyond the recording ({n} frames)")
        if n.isdigit() and end.isdigit() and int(end) > int(n):
            add("end_frame", f"end_frame {end} is beyond the recording ({n} frames)")
    seen: dict[str, list[int]] = {}
    for i, k in enumerate(ids):
        seen.setdefault(k, []).append(lines[i] if lines else i + 1)
    for k, at in seen.items():
        if len(at) > 1:
            what = "lines" if lines else "rows"
            problems.append(
                f"{path}, {what} {', '.join(map(str, at))}: subject/session {k} appears more "
                "than once"
            )
    if problems:
        raise _report(path, problems)
    out = df.copy()
    out.index = pd.Index(ids)
    return out
