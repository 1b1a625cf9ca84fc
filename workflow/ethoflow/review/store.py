"""What the review app reads from a run and writes back: the data side, no HTTP.

A run is a working directory with a config and a cohort sheet (as the workflow uses them) and
the ``results/`` the workflow wrote, finished or not. For each session the store reads the
behavior CSVs of every mode that has one, the stage-1 probabilities and the proposals, through
``ethoflow.results``; it writes one file per session, ``results/review/{subject}/{session}.csv``
(``results.write_review``), and nothing else besides its own cache
(``results/review/.index.json``).

The bouts under review of a session are its reviewed file's rows where it has one, else the
bouts of its *base* mode (``classifier.primary`` where the session has it, else the first mode
with a behavior CSV), all ``predicted``. A correction is an operation on frame ranges
(:func:`apply_op`), so an operation made on a stale copy can be replayed on the current one.
Every save names the version (``etag``: a hash of the file's bytes) it was made on; a save on
another version raises :class:`Conflict` and changes nothing.

Frames in the API are session frames (0 = the sheet row's ``start_frame``); the reviewed file
stores frames of the pose file (``+ frame_offset``), as every annotation file does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import results
from ..atomic import atomic_path
from ..errors import InputError
from ..vocab import classes

INDEX_VERSION = 1
NO_FILE = "none"
"""The etag of a session that has no reviewed file yet."""
OVERVIEW_BINS = 1200
"""Probabilities of the whole session are sent as at most this many bins (mean per bin)."""
WINDOW_MAX = 20000
"""At most this many frames per window request."""


class Conflict(Exception):
    """A save made on another version of the reviewed file than the current one."""

    def __init__(self, etag: str, bouts: list[dict]):
        super().__init__(f"the reviewed file changed (now {etag})")
        self.etag = etag
        self.bouts = bouts


class OpError(ValueError):
    """An operation that does not apply (no such bout, frames out of range, unknown label)."""


@dataclass
class SessionInfo:
    key: str
    subject: str
    session: str
    setup: str
    split: str
    group: str
    video: str
    annotations: str
    behaviors: list[str]


@dataclass
class Summary:
    """The per-session facts the session list and the queue need (cached in the index)."""

    signature: list
    fps: float = 0.0
    n_frames: int = 0
    offset: int = 0
    modes: list[str] = field(default_factory=list)
    base: str = ""
    # base-mode bouts: [start, stop, code, margin, disagreement]
    bouts: list[list] = field(default_factory=list)
    error: str = ""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, stop, code)`` of every run of a non-zero label (stop exclusive)."""
    y = np.asarray(labels)
    if not len(y):
        return []
    change = np.flatnonzero(np.diff(y)) + 1
    starts = np.r_[0, change]
    stops = np.r_[change, len(y)]
    return [(int(s), int(e), int(y[s])) for s, e in zip(starts, stops, strict=True) if y[s] > 0]


def margins(probs: np.ndarray) -> np.ndarray:
    """Per frame: the top probability minus the second (0 = undecided, 1 = certain)."""
    if probs.shape[1] < 2:
        return np.ones(len(probs))
    part = np.partition(probs, -2, axis=1)
    return part[:, -1] - part[:, -2]


def bout_stats(
    labels: np.ndarray, probs: np.ndarray, others: list[np.ndarray]
) -> list[list[float]]:
    """Bouts of one mode with their mean margin and their disagreement: the fraction of
    (other mode, frame) pairs of the bout whose label differs from the bout's (0 when the
    session has no other mode)."""
    m = margins(probs)
    cm = np.r_[0.0, np.cumsum(m)]
    diff = np.zeros(len(labels))
    for y in others:
        diff += np.asarray(y) != np.asarray(labels)
    cd = np.r_[0.0, np.cumsum(diff / max(len(others), 1))]
    out = []
    for s, e, c in runs(labels):
        n = e - s
        out.append([s, e, c, round((cm[e] - cm[s]) / n, 4), round((cd[e] - cd[s]) / n, 4)])
    return out


def _stat(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        return [str(path), 0, -1, 0]
    return [str(path), st.st_mtime_ns, st.st_size, st.st_ino]


# ---------------------------------------------------------------- operations
def _bout(start, stop, behavior, status, mode="", reviewer="", reviewed_at="") -> dict:
    return {
        "start": int(start),
        "stop": int(stop),
        "behavior": behavior,
        "status": status,
        "mode": mode,
        "reviewer": reviewer,
        "reviewed_at": reviewed_at,
    }


def _carve(bouts: list[dict], start: int, stop: int) -> list[dict]:
    """The bouts with the frames ``[start, stop)`` cut out (remnants keep their fields)."""
    out = []
    for b in bouts:
        if b["stop"] <= start or b["start"] >= stop:
            out.append(b)
            continue
        if b["start"] < start:
            out.append({**b, "stop": start})
        if b["stop"] > stop:
            out.append({**b, "start": stop})
    return out


def _find(bouts: list[dict], start, stop) -> int:
    for i, b in enumerate(bouts):
        if b["start"] == start and b["stop"] == stop:
            return i
    raise OpError(f"no bout [{start}, {stop}) in the current version of this session")


def apply_op(
    bouts: list[dict],
    op: dict,
    behaviors: list[str],
    n_frames: int,
    reviewer: str,
    when: str,
) -> list[dict]:
    """One correction applied to a session's bouts (session frames, stop exclusive); returns
    the new list sorted by start. Operations (``op`` key):

    - ``accept {start, stop}``: the bout is right (a ``predicted`` bout becomes ``accepted``);
    - ``relabel {start, stop, behavior}``: the bout is another behavior (``other``: rejected);
    - ``split {start, stop, at}``: the bout becomes ``[start, at)`` and ``[at, stop)``;
    - ``trim {start, stop, new_start, new_stop}``: the bout gets new bounds (frames it gives
      up become background; frames it takes are cut from its neighbours);
    - ``add {start, stop, behavior}``: a bout the model missed (cut out of any it overlaps).

    Every bout an operation touches is stamped with ``reviewer`` and ``when``.
    """
    vocab = classes(behaviors)
    if not isinstance(op, dict):
        raise OpError(f"an operation is an object with an 'op' key, not {op!r}")
    kind = op.get("op")
    try:
        start, stop = int(op["start"]), int(op["stop"])
    except (KeyError, TypeError, ValueError) as err:
        raise OpError(f"operation {kind!r} needs integer start and stop frames") from err
    stamp = {"reviewer": reviewer, "reviewed_at": when}

    def label(name) -> str:
        if name not in vocab:
            raise OpError(f"unknown behavior {name!r} (this setup has {vocab})")
        return name

    def frames(a, b) -> tuple[int, int]:
        a, b = int(a), int(b)
        if not 0 <= a < b <= n_frames:
            raise OpError(f"frames [{a}, {b}) are not a range inside the session's {n_frames}")
        return a, b

    out = [dict(b) for b in bouts]
    if kind == "add":
        start, stop = frames(start, stop)
        out = _carve(out, start, stop)
        out.append(_bout(start, stop, label(op.get("behavior")), "added", "", **stamp))
    elif kind in ("accept", "relabel", "split", "trim"):
        i = _find(out, start, stop)
        b = out[i]
        if kind == "accept":
            status = "accepted" if b["status"] == "predicted" else b["status"]
            out[i] = {**b, "status": status, **stamp}
        elif kind == "relabel":
            out[i] = {**b, "behavior": label(op.get("behavior")), "status": "relabeled", **stamp}
        elif kind == "split":
            try:
                at = int(op["at"])
            except (KeyError, TypeError, ValueError) as err:
                raise OpError("split needs an integer frame 'at'") from err
            if not start < at < stop:
                raise OpError(f"split frame {at} is not inside the bout [{start}, {stop})")
            out[i : i + 1] = [
                {**b, "stop": at, "status": "split", **stamp},
                {**b, "start": at, "status": "split", **stamp},
            ]
        else:
            try:
                a, z = frames(op["new_start"], op["new_stop"])
            except (KeyError, TypeError) as err:
                raise OpError("trim needs integer new_start and new_stop frames") from err
            del out[i]
            out = _carve(out, a, z)
            out.append({**b, "start": a, "stop": z, "status": "trimmed", **stamp})
    else:
        raise OpError(f"unknown operation {kind!r} (accept, relabel, split, trim, add)")
    return sorted(out, key=lambda b: b["start"])


# ---------------------------------------------------------------- the store
class ReviewStore:
    """A run's sessions, their predictions and their reviewed bouts.

    ``workdir``: the run's working directory (relative sheet paths and ``results/`` are
    resolved against it); ``config``: the validated config (``cli.load_config``);
    ``sheet``: ``sheet.read_sheet`` of ``config["sessions"]``.
    """

    def __init__(self, workdir, config: dict, sheet: pd.DataFrame, reviewer: str = ""):
        self.workdir = Path(workdir).resolve()
        self.results = self.workdir / "results"
        self.config = config
        self.reviewer = reviewer or "unknown"
        setups = config.get("setups", {})
        self.modes = list(config.get("classifier", {}).get("modes", []))
        self.primary = config.get("classifier", {}).get("primary", "")
        self.sessions: dict[str, SessionInfo] = {}
        for r in sheet.to_dict("records"):
            key = f"{r['subject']}/{r['session']}"
            setup = r.get("setup", "")
            if setup not in setups:
                raise InputError(config.get("sessions", "sheet"), f"{key}: unknown setup {setup!r}")
            self.sessions[key] = SessionInfo(
                key=key,
                subject=r["subject"],
                session=r["session"],
                setup=setup,
                split=r.get("split", ""),
                group=r.get("group", ""),
                video=r.get("video", ""),
                annotations=r.get("annotations", ""),
                behaviors=list(setups[setup]["behaviors"]),
            )
        self.summaries: dict[str, Summary] = {}
        self.index_done = 0
        self._lock = threading.Lock()
        self._session_locks: dict[str, threading.Lock] = {}
        self._reviews: dict[str, tuple[list, str, list[dict]]] = {}
        self._behavior_cache: OrderedDict = OrderedDict()

    # ------------------------------------------------------------ paths
    def path(self, kind: str, key: str, mode: str = "") -> Path:
        pattern = {
            "pose": "pose/{k}.h5",
            "stage1": "stage1/{k}.h5",
            "proposals": "proposals/{k}.tsv",
            "behavior": "behavior/{m}/{k}.csv",
            "review": "review/{k}.csv",
        }[kind]
        return self.results / pattern.format(k=key, m=mode)

    def info(self, key: str) -> SessionInfo:
        if key not in self.sessions:
            raise KeyError(key)
        return self.sessions[key]

    def video_path(self, key: str) -> Path | None:
        """The sheet's video of the session (the only video the app serves for it)."""
        video = self.info(key).video
        if not video:
            return None
        p = Path(video)
        p = p if p.is_absolute() else self.workdir / p
        return p if p.is_file() else None

    def results_file(self, rel: str) -> Path:
        """A file under ``results/`` named by a relative path; PermissionError for any path
        that is absolute, has ``..``, or resolves (symlinks followed) outside ``results/``."""
        parts = Path(rel).parts
        if not rel or Path(rel).is_absolute() or rel.startswith(("/", "\\")) or ".." in parts:
            raise PermissionError(rel)
        p = (self.results / rel).resolve()
        if not p.is_relative_to(self.results.resolve()):
            raise PermissionError(rel)
        if not p.is_file():
            raise FileNotFoundError(rel)
        return p

    def session_modes(self, key: str) -> list[str]:
        return [m for m in self.modes if self.path("behavior", key, m).is_file()]

    # ------------------------------------------------------------ index
    def signature(self, key: str) -> list:
        paths = [self.path("pose", key)] + [self.path("behavior", key, m) for m in self.modes]
        return [_stat(p) for p in paths]

    def _behavior(self, path: Path, behaviors: list[str]) -> dict:
        sig = tuple(_stat(path))
        hit = self._behavior_cache.get(path)
        if hit is not None and hit[0] == sig:
            self._behavior_cache.move_to_end(path)
            return hit[1]
        data = results.read_behavior(path, behaviors)
        self._behavior_cache[path] = (sig, data)
        while len(self._behavior_cache) > 32:
            self._behavior_cache.popitem(last=False)
        return data

    def summarize(self, key: str, signature: list | None = None) -> Summary:
        """Read one session's predictions into its summary (an error becomes ``error``)."""
        info = self.info(key)
        s = Summary(signature=signature or self.signature(key))
        try:
            modes = self.session_modes(key)
            pose = self.path("pose", key)
            if not modes or not pose.is_file():
                s.error = "no predictions yet" if not modes else "no pose file"
                return s
            attrs = results.read_pose_attrs(pose)
            s.fps = float(attrs["fps"])
            s.n_frames = int(attrs["n_frames"])
            s.offset = int(attrs.get("frame_offset", 0))
            labels = {}
            for m in modes:
                data = results.read_behavior(self.path("behavior", key, m), info.behaviors)
                if len(data["labels"]) != s.n_frames:
                    raise InputError(
                        self.path("behavior", key, m),
                        f"{len(data['labels'])} rows, the pose file has {s.n_frames} frames",
                    )
                labels[m] = data
            s.modes = modes
            s.base = self.primary if self.primary in modes else modes[0]
            others = [labels[m]["labels"] for m in modes if m != s.base]
            s.bouts = bout_stats(labels[s.base]["labels"], labels[s.base]["probs"], others)
        except (InputError, OSError, KeyError, ValueError) as err:
            s.error = self._failed(key) or str(err)
            s.modes, s.bouts = [], []
        return s

    def _failed(self, key: str) -> str | None:
        """The reason recorded where the session failed in the workflow (a failure record
        in place of its pose or behavior file), if this version of ethoflow writes them."""
        reader = getattr(results, "failed_reason", None)
        if reader is None:
            return None
        for p in [self.path("pose", key)] + [self.path("behavior", key, m) for m in self.modes]:
            reason = reader(p)
            if reason:
                return f"failed in the workflow: {reason}"
        return None

    def index_path(self) -> Path:
        return self.results / "review" / ".index.json"

    def load_index(self) -> None:
        """The cached summaries that are still current (their input files unchanged)."""
        try:
            data = json.loads(self.index_path().read_text())
        except (OSError, ValueError):
            return
        if data.get("version") != INDEX_VERSION:
            return
        for key, d in data.get("sessions", {}).items():
            if key in self.sessions:
                self.summaries[key] = Summary(**d)

    def save_index(self) -> None:
        with self._lock:
            data = {
                "version": INDEX_VERSION,
                "sessions": {k: s.__dict__ for k, s in self.summaries.items()},
            }
        with contextlib.suppress(OSError), atomic_path(self.index_path()) as tmp:
            tmp.write_text(json.dumps(data, separators=(",", ":")))

    def build_index(self, save_every: int = 200) -> None:
        """Summaries of every session whose inputs changed since the cached index."""
        self.load_index()
        changed = 0
        self.index_done = 0
        for key in self.sessions:
            sig = self.signature(key)
            old = self.summaries.get(key)
            if old is None or old.signature != sig:
                summary = self.summarize(key, sig)
                with self._lock:
                    self.summaries[key] = summary
                changed += 1
                if changed % save_every == 0:
                    self.save_index()
            self.index_done += 1
        if changed or not self.index_path().is_file():
            self.save_index()
        for key, s in list(self.summaries.items()):  # the reviewed files, into memory
            if not s.error:
                with contextlib.suppress(InputError, OSError, ValueError):
                    self._read_review(key, s)

    def summary(self, key: str) -> Summary | None:
        """The session's summary, refreshed when its input files changed since."""
        s = self.summaries.get(key)
        if s is not None and s.signature != self.signature(key):
            s = self.summarize(key)
            with self._lock:
                self.summaries[key] = s
        return s

    def _summary(self, key: str) -> Summary:
        s = self.summary(key)
        if s is None:
            s = self.summarize(key)
            with self._lock:
                self.summaries[key] = s
        return s

    # ------------------------------------------------------------ reviewed bouts
    def _session_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._session_locks.setdefault(key, threading.Lock())

    def _read_review(self, key: str, summary: Summary) -> tuple[str, list[dict] | None]:
        """``(etag, bouts)`` of the reviewed file (bouts None where there is none)."""
        path = self.path("review", key)
        sig = _stat(path)
        hit = self._reviews.get(key)
        if hit is not None and hit[0] == sig:
            return hit[1], hit[2]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._reviews.pop(key, None)
            return NO_FILE, None
        etag = hashlib.sha1(data).hexdigest()[:16]
        df = results.read_review(path)
        off = summary.offset
        bouts = [
            _bout(
                r.start_frame - off,
                r.stop_frame - off,
                r.behavior,
                r.status,
                r.mode,
                r.reviewer,
                r.reviewed_at,
            )
            for r in df.itertuples()
        ]
        self._reviews[key] = (sig, etag, bouts)
        return etag, bouts

    def _predicted(self, key: str, summary: Summary) -> list[dict]:
        vocab = classes(self.info(key).behaviors)
        return [_bout(b[0], b[1], vocab[b[2]], "predicted", summary.base) for b in summary.bouts]

    def state(self, key: str) -> dict:
        """``{etag, bouts, reviewed_file}``: the bouts under review of a session."""
        summary = self._summary(key)
        etag, bouts = self._read_review(key, summary)
        if bouts is None:
            bouts = self._predicted(key, summary)
        rel = self.path("review", key).relative_to(self.workdir)
        return {"etag": etag, "bouts": bouts, "reviewed_file": str(rel)}

    def save(self, key: str, etag: str, ops: list[dict]) -> dict:
        """Apply ``ops`` to the version ``etag`` and write the reviewed file at once
        (atomically); :class:`Conflict` when the file is at another version now."""
        info = self.info(key)
        with self._session_lock(key), _file_lock(self.path("review", key)):
            summary = self._summary(key)
            if summary.error:
                raise OpError(f"{key} cannot be reviewed: {summary.error}")
            self._reviews.pop(key, None)  # read the file itself, not the cache
            cur = self.state(key)
            if etag != cur["etag"]:
                raise Conflict(cur["etag"], cur["bouts"])
            bouts = cur["bouts"]
            when = now_iso()
            for op in ops:
                bouts = apply_op(bouts, op, info.behaviors, summary.n_frames, self.reviewer, when)
            df = pd.DataFrame(bouts, columns=[*_bout(0, 1, "", "").keys()])
            df = df.rename(columns={"start": "start_frame", "stop": "stop_frame"})
            df["start_frame"] += summary.offset
            df["stop_frame"] += summary.offset
            results.write_review(self.path("review", key), df, summary.fps)
            return self.state(key)

    # ------------------------------------------------------------ views
    def session_row(self, key: str) -> dict:
        info = self.info(key)
        s = self.summaries.get(key)
        row = {
            "key": key,
            "subject": info.subject,
            "session": info.session,
            "setup": info.setup,
            "split": info.split,
            "group": info.group,
            "has_video": bool(info.video),
            "indexed": s is not None,
        }
        if s is None:
            return row
        reviewed, total = self._progress(key, s)
        row.update(
            modes=s.modes,
            base=s.base,
            n_frames=s.n_frames,
            fps=s.fps,
            bouts=total,
            reviewed=reviewed,
            error=s.error,
        )
        return row

    def _bouts_now(self, key: str, s: Summary) -> list[dict] | None:
        """The reviewed file's bouts, or None where the session has none."""
        if s.error:
            return None
        return self._read_review(key, s)[1]

    def _progress(self, key: str, s: Summary) -> tuple[int, int]:
        bouts = self._bouts_now(key, s)
        if bouts is None:
            return 0, len(s.bouts)
        return sum(b["status"] != "predicted" for b in bouts), len(bouts)

    def session_list(self) -> dict:
        rows = [self.session_row(k) for k in self.sessions]
        return {
            "sessions": rows,
            "indexed": self.index_done,
            "total_sessions": len(self.sessions),
            "reviewer": self.reviewer,
        }

    def queue(self, order: str = "margin", limit: int = 200) -> dict:
        """Unreviewed bouts across the cohort, most doubtful first: lowest mean margin
        (``margin``) or most disagreement between the modes (``disagreement``, ties by
        margin); with the cohort's progress (reviewed bouts / all bouts)."""
        if order not in ("margin", "disagreement"):
            raise ValueError(f"unknown queue order {order!r} (margin, disagreement)")
        items = []
        reviewed = total = 0
        for key in self.sessions:
            s = self.summaries.get(key)
            if s is None or s.error:
                continue
            vocab = classes(self.info(key).behaviors)
            stats = {(b[0], b[1], vocab[b[2]]): b for b in s.bouts}
            current = self._bouts_now(key, s)
            if current is None:
                todo = s.bouts
                total += len(s.bouts)
            else:
                total += len(current)
                reviewed += sum(b["status"] != "predicted" for b in current)
                todo = [
                    stats[t]
                    for b in current
                    if b["status"] == "predicted"
                    and (t := (b["start"], b["stop"], b["behavior"])) in stats
                ]
            for b in todo:
                items.append((key, b[0], b[1], vocab[b[2]], b[3], b[4]))
        if order == "margin":
            items.sort(key=lambda t: (t[4], -t[5]))
        else:
            items.sort(key=lambda t: (-t[5], t[4]))
        fields = ("key", "start", "stop", "behavior", "margin", "disagreement")
        return {
            "order": order,
            "items": [dict(zip(fields, t, strict=True)) for t in items[: max(limit, 0)]],
            "unreviewed": len(items),
            "reviewed": reviewed,
            "total": total,
            "complete": self.index_done >= len(self.sessions),
        }

    def detail(self, key: str) -> dict:
        """Everything the page shows of one session: per mode its bouts and its binned
        probabilities, stage 1's p_action and proposals, the bouts under review."""
        info = self.info(key)
        s = self._summary(key)
        vocab = classes(info.behaviors)
        out = {
            **self.session_row(key),
            "behaviors": info.behaviors,
            "classes": vocab,
            "offset": s.offset,
            "video": f"/video/{key}" if self.video_path(key) else None,
            "modes_data": {},
            "stage1": None,
            "proposals": [],
            "error": s.error,
        }
        if s.error:
            return out
        bins = min(OVERVIEW_BINS, s.n_frames)
        edges = np.linspace(0, s.n_frames, bins + 1).astype(int)
        for m in s.modes:
            data = self._behavior(self.path("behavior", key, m), info.behaviors)
            out["modes_data"][m] = {
                "bouts": [[a, b, c] for a, b, c in runs(data["labels"])],
                "probs": _binned(data["probs"], edges),
            }
        stage1 = self.path("stage1", key)
        if stage1.is_file():
            with contextlib.suppress(OSError, KeyError):
                p = results.read_stage1(stage1)["p_action"]
                if len(p) == s.n_frames:
                    out["stage1"] = _binned(p[:, None], edges)[0]
        props = self.path("proposals", key)
        if props.is_file():
            with contextlib.suppress(InputError, OSError, ValueError):
                df = results.read_proposals(props)
                out["proposals"] = [
                    [int(a), int(b), round(float(c), 3)]
                    for a, b, c in df[["start_frame", "end_frame", "score"]].itertuples(False)
                ]
        out.update(self.state(key))
        out["bins"] = edges.tolist()
        return out

    def window(self, key: str, mode: str, start: int, stop: int) -> dict:
        """Per-frame probabilities ``[C+1][stop-start]`` (percent) of one mode."""
        info = self.info(key)
        if mode not in self.session_modes(key):
            raise KeyError(mode)
        data = self._behavior(self.path("behavior", key, mode), info.behaviors)
        n = len(data["labels"])
        start = max(0, int(start))
        stop = min(n, int(stop), start + WINDOW_MAX)
        p = data["probs"][start:stop]
        return {
            "mode": mode,
            "start": start,
            "stop": max(stop, start),
            "probs": np.round(p.T * 100).astype(int).tolist(),
        }


def _binned(probs: np.ndarray, edges: np.ndarray) -> list[list[int]]:
    """Mean of each column over the bins ``edges`` (percent, ints: small JSON)."""
    c = np.r_[np.zeros((1, probs.shape[1])), np.cumsum(probs, 0)]
    width = np.maximum(np.diff(edges), 1)[:, None]
    mean = (c[edges[1:]] - c[edges[:-1]]) / width
    return np.round(mean.T * 100).astype(int).tolist()


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock on a hidden sibling of ``path`` (two review servers on one run)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the in-process lock is all there is
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_run(config_path: str | os.PathLike, workdir=None, reviewer: str = "") -> ReviewStore:
    """The store of the run whose config is ``config_path`` (relative paths in the config and
    the sheet are relative to ``workdir``, default the current directory, as for snakemake)."""
    from ..cli import load_config
    from ..sheet import read_sheet

    workdir = Path(workdir or os.getcwd())
    cfg_path = Path(config_path)
    cfg = load_config(cfg_path if cfg_path.is_absolute() else workdir / cfg_path)
    sheet_path = Path(cfg["sessions"])
    sheet = read_sheet(sheet_path if sheet_path.is_absolute() else workdir / sheet_path)
    return ReviewStore(workdir, cfg, sheet, reviewer=reviewer)


__all__ = [
    "Conflict",
    "OpError",
    "ReviewStore",
    "apply_op",
    "bout_stats",
    "margins",
    "open_run",
    "runs",
]
