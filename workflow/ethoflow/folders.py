"""A lab's folders -> a cohort sheet: pair every video with its tracking file.

``build_sheet(dirs, ...)`` walks the folders once (``os.scandir``, no globbing), pairs each
video (``.mp4 .avi .mov .mkv``) with the pose file of the same recording by the naming
conventions of the pose tools, optionally reads fps and frame count from the video headers,
joins a metadata CSV and returns the sheet plus a :class:`Report` of every file it could not
place. ``ethoflow sheet DIR... -o sessions.tsv`` is the command line around it.

Naming conventions (``key`` = the video's file name without extension):

- DeepLabCut: ``<key>DLC_<scorer>[_el|_bx|_sk][_filtered].h5|.csv`` (``dlc_h5``/``dlc_csv``).
  The ``.h5`` and ``.csv`` of one analysis (same name) are one output: the h5 is used.
  DLC's labelled videos (``...DLC_..._labeled.mp4``) and pickles are not sessions.
- SLEAP: ``<key>.slp`` (``sleap_slp``), ``<key>.predictions.slp`` and ``<key>.analysis.h5``
  (``sleap_h5``); ``sleap-track``'s ``<key>.mp4.predictions.slp`` and the default analysis
  export ``<labels>.000_<key>.analysis.h5`` too. Rendered ``<key>.slp.mp4`` are skipped.
- LightningPose: ``<key>.csv`` in a ``video_preds`` or ``predictions`` folder, or any
  ``<key>.csv`` whose first line starts with ``scorer`` (LightningPose writes DLC-style
  3-row headers, read as ``dlc_csv``); its metric files (``<key>_temporal_norm.csv``,
  ``<key>_pca_*_error.csv``) and rendered ``labeled_videos/`` are skipped.
- NWB: ``<key>.nwb`` (``nwb``, ndx-pose).

A video with two or more candidate pose files is an error (``Report.ambiguous``), never a
silent pick, unless ``prefer`` names the kind to take (``dlc``, ``dlc_filtered``,
``sleap_predictions``, ``sleap_analysis``, ``sleap_labels``, ``lightning_pose``, ``nwb``:
the first kind in ``prefer`` held by exactly one candidate wins). When the same key occurs in
several folders, a video takes the candidates closest to it in the tree (same folder first).
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from .annotations import read_delimited
from .errors import InputError
from .sheet import COLUMNS as SHEET_COLUMNS

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
KINDS = (
    "dlc",
    "dlc_filtered",
    "sleap_predictions",
    "sleap_analysis",
    "sleap_labels",
    "lightning_pose",
    "nwb",
)
EXTRA_COLUMNS = ("fps", "n_frames", "px_per_cm", "annotation_subjects")
COLUMNS = tuple(c for c in SHEET_COLUMNS if c not in EXTRA_COLUMNS)
"""The sheet columns in ``sheet.COLUMNS`` order; ``fps``/``n_frames`` (optional) follow."""
LP_FOLDERS = ("video_preds", "predictions")
DERIVED = ("labeled_videos",)  # LightningPose's rendered videos
_DLC = re.compile(
    r"^(?P<key>.+?)DLC_(?P<scorer>.+?)(?P<ma>_el|_bx|_sk)?(?P<filt>_filtered)?\.(?P<ext>h5|csv)$",
    re.IGNORECASE,
)
_DLC_DERIVED = re.compile(r"DLC_.*labeled$", re.IGNORECASE)
_SLEAP_ANALYSIS_DEFAULT = re.compile(r"^.+\.\d{3}_(?P<key>.+)\.analysis\.h5$", re.IGNORECASE)
_LP_METRICS = re.compile(r"_(temporal_norm|pca_singleview_error|pca_multiview_error)$")
_BAD_ID = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One pose file that names a video key."""

    path: str
    key: str
    kind: str
    fmt: str  # ethoflow pose_format
    group: str = ""  # files of one output (DLC h5 + csv) share a group


@dataclasses.dataclass
class Report:
    """Everything ``build_sheet`` could not turn into a row, plus counts."""

    n_files: int = 0
    n_videos: int = 0
    n_pose: int = 0
    unpaired_videos: list[str] = dataclasses.field(default_factory=list)
    unpaired_pose: list[str] = dataclasses.field(default_factory=list)
    ambiguous: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    shared_pose: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    skipped: list[str] = dataclasses.field(default_factory=list)
    bad_videos: dict[str, str] = dataclasses.field(default_factory=dict)
    metadata_unmatched: list[str] = dataclasses.field(default_factory=list)
    no_metadata: list[str] = dataclasses.field(default_factory=list)
    duplicates: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def errors(self) -> bool:
        """Ambiguous pairs and duplicate sessions make the sheet unusable."""
        return bool(self.ambiguous or self.shared_pose or self.duplicates)

    def lines(self) -> list[str]:
        out = [
            f"{self.n_files} files: {self.n_videos} videos, {self.n_pose} pose files, "
            f"{len(self.skipped)} skipped (derived videos, metrics, pickles)"
        ]
        for video, cands in sorted(self.ambiguous.items()):
            out.append(f"ERROR ambiguous: {video} has {len(cands)} pose files: {', '.join(cands)}")
        for pose, videos in sorted(self.shared_pose.items()):
            out.append(f"ERROR ambiguous: {pose} matches {len(videos)} videos: {', '.join(videos)}")
        for sid, videos in sorted(self.duplicates.items()):
            out.append(f"ERROR duplicate subject/session {sid}: {', '.join(videos)}")
        out += [f"unpaired video (no pose file): {v}" for v in self.unpaired_videos]
        out += [f"unpaired pose file (no video): {p}" for p in self.unpaired_pose]
        out += [f"unreadable video: {v}: {why}" for v, why in sorted(self.bad_videos.items())]
        out += [f"metadata row matches no video: {m}" for m in self.metadata_unmatched]
        out += [f"no metadata row for video: {v}" for v in self.no_metadata]
        out += self.notes
        return out


# ---------------------------------------------------------------- walking
def walk(dirs: list[str | os.PathLike]) -> list[str]:
    """Every file under ``dirs`` (hidden files and folders skipped), one scandir per folder."""
    files: list[str] = []
    for d in dirs:
        d = os.fspath(d)
        if not os.path.isdir(d):
            raise InputError(d, "not a folder")
        stack = [d]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    for e in it:
                        if e.name.startswith("."):
                            continue
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file():
                            files.append(e.path)
            except PermissionError as err:
                raise InputError(folder, f"cannot list folder: {err}") from err
    return files


def _strip_video_ext(key: str) -> str:
    low = key.lower()
    for ext in VIDEO_EXTS:
        if low.endswith(ext):
            return key[: -len(ext)]
    return key


def _first_line(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.readline(256).decode("utf-8", "replace").strip().lower()
    except OSError:
        return ""


def classify(path: str, video_keys: set[str]) -> Candidate | str | None:
    """A pose :class:`Candidate`, ``"skip"`` for a known non-session file, else None."""
    name = os.path.basename(path)
    low = name.lower()
    if low.endswith((".pickle", ".pkl")) and "dlc_" in low:
        return "skip"
    m = _DLC.match(name)
    if m:
        kind = "dlc_filtered" if m["filt"] else "dlc"
        fmt = "dlc_h5" if m["ext"].lower() == "h5" else "dlc_csv"
        group = os.path.join(os.path.dirname(path), name.rsplit(".", 1)[0])
        return Candidate(path, _strip_video_ext(m["key"]), kind, fmt, group)
    if low.endswith(".analysis.h5"):
        m = _SLEAP_ANALYSIS_DEFAULT.match(name)
        key = m["key"] if m else name[: -len(".analysis.h5")]
        if key.lower().endswith(".predictions"):
            key = key[: -len(".predictions")]
        return Candidate(path, _strip_video_ext(key), "sleap_analysis", "sleap_h5")
    if low.endswith(".predictions.slp"):
        return Candidate(
            path,
            _strip_video_ext(name[: -len(".predictions.slp")]),
            "sleap_predictions",
            "sleap_slp",
        )
    if low.endswith(".slp"):
        return Candidate(path, _strip_video_ext(name[:-4]), "sleap_labels", "sleap_slp")
    if low.endswith(".nwb"):
        return Candidate(path, _strip_video_ext(name[:-4]), "nwb", "nwb")
    if low.endswith(".csv"):
        stem = name[:-4]
        parent = os.path.basename(os.path.dirname(path)).lower()
        if _LP_METRICS.search(stem) and _LP_METRICS.sub("", stem) in video_keys:
            return "skip"
        if stem in video_keys:
            first = _first_line(path)
            if first.startswith("scorer"):
                return Candidate(path, stem, "lightning_pose", "dlc_csv")
            if parent in LP_FOLDERS:
                return Candidate(path, stem, "lightning_pose", "auto")
    return None


def _closeness(video: str, pose: str) -> int:
    """Number of leading folders shared by the two paths (higher = closer)."""
    a = os.path.dirname(os.path.abspath(video)).split(os.sep)
    b = os.path.dirname(os.path.abspath(pose)).split(os.sep)
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _resolve(cands: list[Candidate], prefer: tuple[str, ...]) -> tuple[Candidate | None, str]:
    """One candidate, or None and why: one output's copies collapse, ``prefer`` breaks ties."""
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        groups[c.group or c.path].append(c)
    outputs = [sorted(g, key=lambda c: c.fmt != "dlc_h5")[0] for g in groups.values()]
    if len(outputs) == 1:
        return outputs[0], ""
    for kind in prefer:
        hits = [c for c in outputs if c.kind == kind]
        if len(hits) == 1:
            return hits[0], ""
    return None, "ambiguous"


def pair(
    files: list[str], prefer: tuple[str, ...] = ()
) -> tuple[list[tuple[str, Candidate]], Report]:
    """Videos paired with their pose file (video, candidate), and the report."""
    bad = [k for k in prefer if k not in KINDS]
    if bad:
        raise InputError(None, f"unknown --prefer kind(s) {bad} (known: {', '.join(KINDS)})")
    rep = Report(n_files=len(files))
    videos: list[str] = []
    others: list[str] = []
    for f in files:
        low = f.lower()
        if low.endswith(VIDEO_EXTS):
            stem = os.path.basename(f).rsplit(".", 1)[0]
            parent = os.path.basename(os.path.dirname(f)).lower()
            if _DLC_DERIVED.search(stem) or stem.lower().endswith(".slp") or parent in DERIVED:
                rep.skipped.append(f)
            else:
                videos.append(f)
        else:
            others.append(f)
    video_keys = {os.path.basename(v).rsplit(".", 1)[0] for v in videos}
    by_key: dict[str, list[Candidate]] = defaultdict(list)
    for f in others:
        c = classify(f, video_keys)
        if c == "skip":
            rep.skipped.append(f)
        elif isinstance(c, Candidate):
            by_key[c.key].append(c)
            rep.n_pose += 1
    rep.n_videos = len(videos)
    pairs: list[tuple[str, Candidate]] = []
    claimed: dict[str, list[str]] = defaultdict(list)
    for v in sorted(videos):
        cands = by_key.get(os.path.basename(v).rsplit(".", 1)[0], [])
        if not cands:
            rep.unpaired_videos.append(v)
            continue
        best = max(_closeness(v, c.path) for c in cands)
        near = [c for c in cands if _closeness(v, c.path) == best]
        chosen, _ = _resolve(near, tuple(prefer))
        if chosen is None:
            rep.ambiguous[v] = sorted(c.path for c in near)
            for c in near:
                claimed[c.path].append(v)
            continue
        for c in near:  # the copies of the chosen output are used too
            if (c.group or c.path) == (chosen.group or chosen.path):
                claimed[c.path].append(v)
        pairs.append((v, chosen))
    for path, vids in claimed.items():
        if len(vids) > 1:
            rep.shared_pose[path] = sorted(vids)
    if rep.shared_pose:
        shared = set(rep.shared_pose)
        pairs = [(v, c) for v, c in pairs if c.path not in shared]
    used = set(claimed)
    rep.unpaired_pose = sorted(c.path for cs in by_key.values() for c in cs if c.path not in used)
    return pairs, rep


# ---------------------------------------------------------------- video headers
def _boxes(fh, start: int, end: int):
    """(type, payload start, payload end) of the ISO-BMFF boxes in ``[start, end)``."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head)
        off = 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            off = 16
        elif size == 0:
            size = end - pos
        if size < off:
            return
        yield kind, pos + off, min(pos + size, end)
        pos += size


def _child(fh, start: int, end: int, kind: bytes):
    return next(((a, b) for k, a, b in _boxes(fh, start, end) if k == kind), None)


def mp4_header(path: str) -> tuple[float, int] | None:
    """fps and frame count of the first video track of an MP4/MOV from its ``moov`` box alone
    (sample count of ``stsz``, durations of ``stts``, timescale of ``mdhd``): a few small reads
    wherever the ``moov`` sits. None when the file is not such a container."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        moov = _child(fh, 0, fh.tell(), b"moov")
        if moov is None:
            return None
        for kind, a, b in _boxes(fh, *moov):
            if kind != b"trak" or (mdia := _child(fh, a, b, b"mdia")) is None:
                continue
            hdlr = _child(fh, *mdia, b"hdlr")
            if hdlr is None:
                continue
            fh.seek(hdlr[0] + 8)
            if fh.read(4) != b"vide":
                continue
            mdhd = _child(fh, *mdia, b"mdhd")
            minf = _child(fh, *mdia, b"minf")
            stbl = minf and _child(fh, *minf, b"stbl")
            stts = stbl and _child(fh, *stbl, b"stts")
            if mdhd is None or stts is None:
                return None
            fh.seek(mdhd[0])
            version = fh.read(4)[0]
            fh.seek(mdhd[0] + (20 if version == 1 else 12))
            timescale = struct.unpack(">I", fh.read(4))[0]
            fh.seek(stts[0] + 4)
            (n_entries,) = struct.unpack(">I", fh.read(4))
            table = fh.read(8 * n_entries)
            if len(table) < 8 * n_entries:
                return None
            pairs = struct.unpack(f">{2 * n_entries}I", table)
            frames = sum(pairs[0::2])
            ticks = sum(c * d for c, d in zip(pairs[0::2], pairs[1::2], strict=True))
            if frames <= 0 or ticks <= 0 or timescale <= 0:
                return None
            return frames * timescale / ticks, frames
    return None


def video_header(path: str) -> tuple[float, int]:
    """fps and frame count from the container header, no decoding: the MP4/MOV ``moov`` box
    read directly, else PyAV's header; falls back to decoding with ``video.video_info`` when
    the header has no frame count (some mkv/avi)."""
    import av

    if path.lower().endswith((".mp4", ".mov")):
        try:
            got = mp4_header(path)
        except (OSError, struct.error, IndexError):
            got = None
        if got is not None:
            return got
    try:
        with av.open(path) as c:
            if not c.streams.video:
                raise InputError(path, "no video stream")
            s = c.streams.video[0]
            rate = s.average_rate or s.guessed_rate
            fps, n = (float(rate) if rate else 0.0), int(s.frames or 0)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - PyAV raises many types on bad files
        raise InputError(path, f"cannot read the video header ({err})") from err
    if n <= 0 or fps <= 0:
        from .video import video_info

        info = video_info(path)
        fps, n = info.fps, info.n_frames
    return fps, n


def read_headers(videos: list[str], threads: int = 8) -> dict[str, tuple[float, int] | str]:
    """``video_header`` of every video (a thread pool: PyAV releases the GIL); errors as text."""

    def one(v):
        try:
            return v, video_header(v)
        except InputError as err:
            return v, err.problem

    with ThreadPoolExecutor(max(1, threads)) as ex:
        return dict(ex.map(one, videos))


# ---------------------------------------------------------------- metadata
META_COLUMNS = ("subject", "session", "setup", "group", "split", "annotations")
META_COLUMNS += ("start_frame", "end_frame")


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """The metadata CSV/TSV: a ``video`` column (stem, file name or path) plus any sheet column."""
    path = Path(path)
    df = read_delimited(path, "metadata", "metadata table")
    df.columns = [c.strip().lower() for c in df.columns]
    key = next((c for c in ("video", "stem", "file") if c in df.columns), None)
    if key is None:
        raise InputError(
            path, f"metadata needs a 'video' column (stem or path), has {list(df.columns)}"
        )
    if not set(META_COLUMNS) & set(df.columns):
        raise InputError(path, f"metadata has none of the columns {list(META_COLUMNS)}")
    df = df.rename(columns={key: "video"}).apply(lambda c: c.str.strip())
    keys = df["video"]
    dup = sorted(set(keys[keys.duplicated()]))
    if dup:
        raise InputError(path, f"metadata names a video more than once: {dup[:5]}")
    return df


def _meta_lookup(meta: pd.DataFrame) -> dict[str, dict]:
    out = {}
    for row in meta.to_dict("records"):
        v = row["video"]
        out[os.path.normpath(v)] = row
        out.setdefault(os.path.basename(v), row)
        out.setdefault(_strip_video_ext(os.path.basename(v)), row)
    return out


def _ident(text: str) -> str:
    s = _BAD_ID.sub("_", text).strip("_.-")
    return s or "x"


# ---------------------------------------------------------------- the sheet
def build_sheet(
    dirs: list[str | os.PathLike],
    *,
    metadata: str | os.PathLike | None = None,
    setup: str = "",
    split: str = "predict",
    prefer: tuple[str, ...] = (),
    video_info: bool = True,
    threads: int = 8,
) -> tuple[pd.DataFrame, Report]:
    """The cohort sheet of ``dirs`` (``sheet.COLUMNS`` then ``fps, n_frames``) and the report.

    Without metadata, ``subject`` is the video key and ``session`` its folder's name; the
    metadata CSV (see :func:`read_metadata`) overrides any sheet column per video, keyed by
    path, file name or key. ``setup`` and ``split`` fill rows the metadata leaves empty.
    ``video_info=False`` leaves ``fps``/``n_frames`` empty (no video is opened).
    """
    files = walk(dirs)
    pairs, rep = pair(files, prefer)
    lookup = _meta_lookup(read_metadata(metadata)) if metadata is not None else None
    used_meta: set[str] = set()
    headers = read_headers([v for v, _ in pairs], threads) if video_info else {}
    rows = []
    for video, cand in pairs:
        key = os.path.basename(video).rsplit(".", 1)[0]
        row = dict.fromkeys(COLUMNS, "")
        row.update(
            subject=_ident(key),
            session=_ident(os.path.basename(os.path.dirname(os.path.abspath(video)))),
            setup=setup,
            video=video,
            pose=cand.path,
            pose_format=cand.fmt,
            split=split,
            group="all",
        )
        if lookup is not None:
            m = next(
                (
                    lookup[k]
                    for k in (os.path.normpath(video), os.path.basename(video), key)
                    if k in lookup
                ),
                None,
            )
            if m is None:
                rep.no_metadata.append(video)
            else:
                used_meta.add(m["video"])
                row.update({c: m[c] for c in META_COLUMNS if c in m and m[c] != ""})
        fps = n = ""
        if video in headers:
            h = headers[video]
            if isinstance(h, str):
                rep.bad_videos[video] = h
            else:
                fps, n = f"{h[0]:.4f}".rstrip("0").rstrip("."), str(h[1])
        row.update(fps=fps, n_frames=n)
        rows.append(row)
    if lookup is not None:
        all_keys = {r["video"] for r in lookup.values()}
        rep.metadata_unmatched = sorted(all_keys - used_meta)
    df = pd.DataFrame(rows, columns=[*COLUMNS, *EXTRA_COLUMNS])
    if len(df):
        missing = df.loc[df["setup"] == "", "video"].tolist()
        if missing:
            raise InputError(
                metadata or dirs[0],
                f"{len(missing)} session(s) have no setup (give --setup or a metadata 'setup' "
                f"column), e.g. {missing[0]}",
            )
        ids = df["subject"] + "/" + df["session"]
        for sid in sorted(set(ids[ids.duplicated()])):
            rep.duplicates[sid] = df.loc[ids == sid, "video"].tolist()
    if not video_info:
        rep.notes.append("video headers not read (--no-video-info): fps/n_frames left empty")
    return df, rep


def write_sheet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """The sheet as tab-separated text; ``fps``/``n_frames`` only when any row has them."""
    from .atomic import atomic_path

    cols = list(COLUMNS) + [c for c in EXTRA_COLUMNS if c in df and (df[c] != "").any()]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        df[cols].to_csv(tmp, sep="\t", index=False)
