"""The cohort sheet: read it, check it before any job runs.

The sheet is tab-separated text with one header line. Lines that start with ``#`` are comments
and blank lines are skipped; a ``#`` anywhere else is data (a group ``A#1``, a path with ``#``).
The allowed values of each column are those of ``workflow/schemas/sessions.schema.yaml``.

Nothing in a sheet may be silently misread: ``read_sheet`` stops on a sheet it cannot read as
meant (another separator, missing or unknown columns, no sessions, a line with more cells than
the header), and ``check_sheet`` reports every bad cell and file of every row at once, each
with the sheet's path, the line in the file, the subject/session and the column.

``check_sheet`` also reads what file headers tell cheaply (``pose_io.peek_pose``: the format,
the keypoint names of DLC CSV/h5 and SLEAP files, the frame count of DLC and SLEAP h5; the
``moov`` box of MP4/MOV videos: fps and frame count), at about 1 ms a file and never a frame,
each file once per run (keyed by path, size and mtime; optionally kept in a cache file across
runs). So these stop the run before any job: a pose file whose format is not what the sheet
says, a skeleton keypoint (the setup's head/tail named) the pose file lacks, a frame range past
the recording, pose and video lengths apart by more than ``pose.length_tolerance_frames``, a
sheet ``fps`` the video contradicts (beyond ``clips.fps_tolerance``). What headers do not tell
(the length of a CSV, the fps of an NWB file, annotations running past the pose) the jobs check,
naming the file.

Per session (``session_params``): fps is the video's, else the sheet's ``fps``, else the
setup's; ``px_per_cm`` the sheet's, else the setup's, else unknown. ``annotation_params``:
the subject and the ``annotation_subjects`` that pick the BORIS subjects labelling a session.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import json
import os
import re
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
    "px_per_cm": "must be a number of pixels per cm (e.g. 12.5) or empty",
}
ALL_SUBJECTS = "*"


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


def _file_problem(base: str, value: str) -> tuple[str | None, os.stat_result | None]:
    """Why the file ``value`` cannot be read (or None) and its stat (one stat: cheap for
    10,000 sessions)."""
    file = os.path.join(base, value)
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return f"file not found: {value}", None
    except OSError as err:
        return f"file cannot be read ({err.strerror}): {value}", None
    if stat.S_ISDIR(st.st_mode):
        return f"is a directory, not a file: {value}", None
    if st.st_size == 0:
        return f"file is empty (0 bytes): {value}", None
    if not os.access(file, os.R_OK):
        return f"file is not readable (permission denied): {value}", None
    return None, st


# ---------------------------------------------------------------- file headers
_MEMO: dict[tuple, object] = {}
"""Header reads of this process: (kind, path, fmt, size, mtime) -> result."""


class _Headers:
    """Header reads keyed by path, size and mtime: once per process, and across runs when a
    cache file is given (JSON; a stale or unreadable one is ignored, it is rewritten whole)."""

    def __init__(self, cache_file: str | os.PathLike | None):
        self.file = cache_file
        self.disk: dict = {}
        self.dirty = False
        if cache_file:
            try:
                with open(cache_file) as f:
                    data = json.load(f)
                if isinstance(data, dict) and data.get("version") == 1:
                    self.disk = data.get("entries", {})
            except (OSError, ValueError):
                self.disk = {}

    def get(self, kind: str, file: str, fmt: str, st: os.stat_result, read):
        full = os.path.abspath(file)
        stamp = [st.st_size, st.st_mtime_ns]
        key = (kind, full, fmt, *stamp)
        if key in _MEMO:
            return _MEMO[key]
        dkey = f"{kind}|{fmt}|{full}"
        hit = self.disk.get(dkey)
        if hit is not None and hit[0] == stamp:
            value = hit[1]
        else:
            value = read(file, fmt)
            self.disk[dkey] = [stamp, value]
            self.dirty = True
        _MEMO[key] = value
        return value

    def save(self) -> None:
        if not (self.file and self.dirty):
            return
        tmp = f"{self.file}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.file)), exist_ok=True)
            with open(tmp, "w") as f:
                json.dump({"version": 1, "entries": self.disk}, f)
            os.replace(tmp, self.file)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _read_pose_header(file: str, fmt: str) -> dict:
    """``{"keypoints": [...] | None, "n_frames": int | None}`` or ``{"problem": ...}``."""
    from .pose_io import peek_pose

    try:
        h = peek_pose(file, fmt)
    except InputError as err:
        return {"problem": err.problem}
    except Exception:  # noqa: BLE001 - an unusual file: the job reads it and says what is wrong
        return {"keypoints": None, "n_frames": None}
    return {"keypoints": h.keypoint_names, "n_frames": h.n_frames}


def _read_video_header(file: str, fmt: str) -> list | None:
    """``[fps, n_frames]`` from an MP4/MOV ``moov`` box; None where that is not cheap (other
    containers, a file without the box: the job decodes it and says what is wrong)."""
    if not file.lower().endswith((".mp4", ".mov", ".m4v")):
        return None
    from .folders import mp4_header

    try:
        got = mp4_header(file)
    except (OSError, ValueError, IndexError, Exception):  # noqa: BLE001 - the job will say
        return None
    return [float(got[0]), int(got[1])] if got else None


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def fps_differ(fps: float, reference: float, tolerance: float) -> bool:
    """Whether ``fps`` is more than ``tolerance`` (relative, ``clips.fps_tolerance``) away
    from ``reference`` (the video's)."""
    return abs(float(fps) - float(reference)) > float(tolerance) * float(reference)


def head_tail(setup: dict) -> dict[str, str]:
    """The setup's configured head/tail keypoints: ``{keypoint: "head" | "tail"}``."""
    return {setup[r]: r for r in ("tail", "head") if setup.get(r)}


def _setup_problems(setups: dict, used) -> list[str]:
    """Head/tail keypoints of a used setup that its skeleton lacks."""
    out = []
    for name in sorted(used):
        cfg = setups.get(name) or {}
        skeleton = list(cfg.get("skeleton") or [])
        for role in ("head", "tail"):
            kp = cfg.get(role)
            if kp and kp not in skeleton:
                out.append(
                    f"setup {name!r} (config setups.{name}.{role}): {role} keypoint {kp!r} is "
                    f"not in the setup's skeleton {skeleton}"
                )
    return out


def session_params(row: dict, setup_name: str, setup: dict) -> dict:
    """What the pose step takes of a sheet row beyond its files: the setup's name, subject
    and session, the sheet's ``fps`` (None when empty: the video's, else the setup's applies)
    and ``px_per_cm`` (the sheet's, else the setup's, else None)."""
    px = _number(_text(row.get("px_per_cm"))) or setup.get("px_per_cm")
    return {
        "setup": setup_name,
        "subject": _text(row.get("subject")),
        "session": _text(row.get("session")),
        "fps": _number(_text(row.get("fps"))) or None,
        "px_per_cm": float(px) if px else None,
    }


def annotation_params(row: dict) -> dict:
    """What the labels step takes of a sheet row beyond its files: the ``subject`` and the
    BORIS ``annotation_subjects`` (a list, ``["*"]`` for all, or None: the subject decides)."""
    subjects = [s.strip() for s in _text(row.get("annotation_subjects")).split(";") if s.strip()]
    return {"subject": _text(row.get("subject")), "annotation_subjects": subjects or None}


def _line_of(problem: str) -> int:
    m = re.search(r", (?:line|row)s? (\d+)", problem)
    return int(m.group(1)) if m else 0


def check_sheet(
    df: pd.DataFrame,
    path: str | os.PathLike,
    setups: dict,
    base: str | os.PathLike = ".",
    *,
    fps_tolerance: float | None = None,
    length_tolerance: int | None = None,
    headers: bool = True,
    cache: str | os.PathLike | None = None,
    excluded: dict | None = None,
) -> pd.DataFrame:
    """Check every row; raise one InputError listing every problem of every row.

    With ``excluded`` (a dict), a row whose files exist but are bad (empty, unreadable, not
    the stated format, lacking skeleton keypoints, shorter than the frame range or than the
    video) is left out of the returned sheet instead, its problems stored as
    ``excluded[subject/session]`` (the workflow does so with ``on_bad_session: skip``). Errors
    of the sheet itself (cells, columns, setups, paths that do not exist, duplicates) still
    raise.

    Each cell is checked against the sheet schema, the setup against ``setups`` (and each
    used setup's head/tail against its skeleton), each file for existence, size and read
    permission (relative paths are resolved against ``base``, the working directory of the
    run), the frame range and the uniqueness of subject/session. With ``headers`` the pose and
    video headers are read where that is cheap (see the module docstring): the pose format,
    the setup's skeleton keypoints in the pose file, the frame range against the frame counts,
    the pose length against the video's (when ``length_tolerance``, frames, is given) and the
    sheet's ``fps`` against the video's (``fps_tolerance``, relative; default
    ``clips.fps_tolerance``'s). ``cache``: a JSON file keeping the header reads across runs.
    Problems name the line of the file (``df.attrs["sheet_lines"]`` from ``read_sheet``; else
    the row, counting from 1) and the column. Returns the sheet indexed by ``subject/session``.
    """
    import jsonschema

    if df.empty:
        raise InputError(path, "cohort sheet has no sessions: add one line per session")
    if fps_tolerance is None:
        from .config import defaults

        fps_tolerance = float(defaults("clips")["fps_tolerance"])
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
    problems: list[str] = _setup_problems(setups, set(columns["setup"]) & set(setups))
    cache_ = _Headers(cache if headers else None)
    keypoint_checks: dict[tuple, str | None] = {}
    ids = [f"{a}/{b}" for a, b in zip(columns["subject"], columns["session"], strict=True)]
    row_problems: dict[int, list[str]] = {}  # problems of a session's files (excluded mode)
    for i, values in enumerate(zip(*columns.values(), strict=True)):
        row = dict(zip(columns, values, strict=True))
        where = f"{path}, {f'line {lines[i]}' if lines else f'row {i + 1}'} ({ids[i]})"

        def add(col, problem, where=where, i=i):
            problems.append(f"{where}, column {col}: {problem}")

        def bad_file(col, problem, where=where, i=i):
            """A problem of what a session's file holds (it exists): with ``excluded`` the
            session is left out rather than the run stopped."""
            if excluded is None:
                add(col, problem)
            else:
                row_problems.setdefault(i, []).append(f"{where}, column {col}: {problem}")

        for err in row_validator.iter_errors(row):
            col = str(err.path[0]) if err.path else "?"
            add(col, _schema_problem(err, col, row.get(col, "")))
        bad_cells = set()
        for col, errors in cell_errors.items():
            for err in errors[row[col]]:
                add(col, _schema_problem(err, col, row[col]))
                bad_cells.add(col)
        setup = row["setup"]
        if setup and setup not in setups:
            near = _nearest(setup, setups)
            hint = f"did you mean {near!r}? " if near else ""
            add("setup", f"unknown setup {setup!r} ({hint}the config has {', '.join(setups)})")
        elif not setup:
            add("setup", "is empty; every session needs one")
        stats = {}
        for col in FILE_COLUMNS:
            value = row[col]
            if not value or (col == "annotations" and value.startswith(RULE_PREFIX)):
                continue
            why, stats[col] = _file_problem(base, value)
            if why:  # a wrong path is the sheet's error; an empty/unreadable file the session's
                (add if why.startswith("file not found") else bad_file)(col, why)
        ann = row["annotations"]
        if ann.startswith(RULE_PREFIX) and ann[len(RULE_PREFIX) :] not in LABEL_RULES:
            known = ", ".join(RULE_PREFIX + r for r in LABEL_RULES)
            add("annotations", f"unknown label rule {ann!r} (known: {known})")
        for col in ("fps", "px_per_cm"):
            if col not in bad_cells and row[col] and not _number(row[col]):
                add(col, f"{row[col]!r} must be above 0")
        sheet_fps = _number(row["fps"]) if "fps" not in bad_cells else None
        # what the headers tell (cheap reads only, each file once)
        lengths: list[tuple[int, str]] = []  # (frames, where the count comes from)
        n = row.get("n_frames", "")
        if n.isdigit():
            lengths.append((int(n), ""))
        n_pose = n_video = None
        if headers and stats.get("pose") and "pose_format" not in bad_cells:
            file = os.path.join(base, row["pose"])
            fmt = row["pose_format"] or "auto"
            got = cache_.get("pose", file, fmt, stats["pose"], _read_pose_header)
            if "problem" in got:
                bad_file("pose", f"{row['pose']}: {got['problem']}")
            else:
                n_pose = got["n_frames"]
                if got["keypoints"] is not None and setup in setups:
                    k = (setup, *got["keypoints"])  # files of one tracker share names
                    if k not in keypoint_checks:
                        keypoint_checks[k] = _keypoint_problem(
                            got["keypoints"], setup, setups[setup]
                        )
                    if keypoint_checks[k]:
                        bad_file("pose", f"{row['pose']}: {keypoint_checks[k]}")
        if headers and stats.get("video"):
            file = os.path.join(base, row["video"])
            got = cache_.get("video", file, "", stats["video"], _read_video_header)
            if got is not None:
                video_fps, n_video = got
                if sheet_fps and fps_differ(sheet_fps, video_fps, fps_tolerance):
                    add(
                        "fps",
                        f"fps {row['fps']} but the video ({row['video']}) runs at "
                        f"{video_fps:.3f} fps (beyond clips.fps_tolerance {fps_tolerance:g})",
                    )
        if n_video is not None:
            lengths.append((n_video, f" in the video {row['video']}"))
        if n_pose is not None:
            lengths.append((n_pose, f" in the pose file {row['pose']}"))
        if n_pose is not None and n_video is not None and length_tolerance is not None:
            diff = n_video - n_pose
            if abs(diff) > int(length_tolerance):
                side = "shorter" if diff > 0 else "longer"
                bad_file(
                    "pose",
                    f"{row['pose']}: pose has {n_pose} frames, video {n_video}: pose is "
                    f"{abs(diff)} frames {side} than the video (tolerance {length_tolerance}, "
                    "pose.length_tolerance_frames)",
                )
        start, end = row["start_frame"], row["end_frame"]
        if start.isdigit() and end.isdigit() and int(end) <= int(start):
            add("end_frame", f"end_frame {end} must be after start_frame {start}")
        # beyond the recording: the shortest length known here (the sheet's n_frames, the
        # video's and the pose file's headers); else the pose step stops on it
        if lengths:
            n_rec, src = min(lengths, key=lambda x: x[0])
            if start.isdigit() and int(start) >= n_rec:
                bad_file(
                    "start_frame",
                    f"start_frame {start} is beyond the recording ({n_rec} frames{src})",
                )
            if end.isdigit() and int(end) > n_rec:
                bad_file(
                    "end_frame", f"end_frame {end} is beyond the recording ({n_rec} frames{src})"
                )
    cache_.save()
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
    if problems:  # the sheet must be fixed: list its sessions' file problems too, in order
        if row_problems:
            every = problems + [p for found in row_problems.values() for p in found]
            problems = sorted(every, key=_line_of)
        raise _report(path, problems)
    out = df.copy()
    out.index = pd.Index(ids)
    if row_problems:
        for i, found in row_problems.items():
            excluded[ids[i]] = "; ".join(found)
        out = out.drop(index=[ids[i] for i in row_problems])
        if out.empty:
            raise _report(path, [p for found in row_problems.values() for p in found])
    return out


def _keypoint_problem(have: list[str], name: str, setup: dict) -> str | None:
    """Why the pose file's keypoints ``have`` do not give the setup's skeleton, or None."""
    from .skeleton import map_keypoints

    skeleton = setup.get("skeleton")
    if not skeleton:
        return None
    try:
        map_keypoints(
            None,
            list(have),
            list(skeleton),
            setup.get("keypoint_aliases") or {},
            setup=name,
            roles=head_tail(setup),
        )
    except InputError as err:
        return err.problem
    return None
