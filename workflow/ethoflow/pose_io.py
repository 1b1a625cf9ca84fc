"""Pose files in any supported format -> one canonical array, and the canonical pose h5.

Formats (``vocab.READABLE_POSE_FORMATS``):
DeepLabCut inference CSV/h5 (single animal, 3 header rows; multi-animal,
4 header rows with ``individuals``), SLEAP ``.slp`` (via sleap-io) and analysis h5, CalMS21
task-1 json and NWB (ndx-pose). Every reader returns a :class:`Pose` with ``keypoints``
``[T, A, K, 2]`` (NaN = missing) and ``confidence`` ``[T, A, K]``.

Missing points: NaN, or exactly ``(0, 0)`` in DLC files (the MABe h5 encodes missing so).
Files without a likelihood get confidence 1 where a point exists and 0 where it is missing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .errors import InputError
from .vocab import READABLE_POSE_FORMATS

log = logging.getLogger("ethoflow")

CALMS21_KEYPOINTS = ["nose", "left_ear", "right_ear", "neck", "left_hip", "right_hip", "tail_base"]
CALMS21_ANIMALS = ["resident", "intruder"]
CALMS21_FPS = 30.0


@dataclasses.dataclass
class Pose:
    """Pose of every animal in every frame of one recording."""

    keypoints: np.ndarray  # f4 [T, A, K, 2], NaN = missing
    confidence: np.ndarray  # f4 [T, A, K]
    fps: float
    keypoint_names: list[str]
    animal_ids: list[str]
    source_format: str = ""
    source_path: str = ""
    dropped_keypoints: list[str] = dataclasses.field(default_factory=list)
    """Keypoints of the file beyond the configured skeleton, dropped by ``load_pose``."""

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        t, a, k, two = self.keypoints.shape
        if two != 2 or self.confidence.shape != (t, a, k):
            raise ValueError(
                f"keypoints {self.keypoints.shape} and confidence {self.confidence.shape} "
                "must be [T, A, K, 2] and [T, A, K]"
            )
        if len(self.keypoint_names) != k or len(self.animal_ids) != a:
            raise ValueError("keypoint_names / animal_ids do not match the keypoint array")
        self.keypoint_names = [str(n) for n in self.keypoint_names]
        self.animal_ids = [str(n) for n in self.animal_ids]
        self.fps = float(self.fps)

    @property
    def n_frames(self) -> int:
        return int(self.keypoints.shape[0])


# ---------------------------------------------------------------- detection
def _sniff_h5_file(f: h5py.File) -> str | None:
    if "nwb_version" in f.attrs or ("general" in f and "acquisition" in f):
        return "nwb"
    if "tracks" in f and "node_names" in f:
        return "sleap_h5"
    if "metadata" in f and ("frames" in f or "instances" in f):
        return "sleap_slp"
    for key in f:
        obj = f[key]
        if isinstance(obj, h5py.Group) and (
            "pandas_type" in obj.attrs or "block0_values" in obj or "table" in obj
        ):
            return "dlc_h5"
    if "keypoints" in f and "confidence" in f:
        return "canonical"
    return None


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputError(path, f"not a readable HDF5 file (truncated or corrupt?): {err}") from err


def _sniff_h5(path: Path) -> str | None:
    with _open_h5(path) as f:
        return _sniff_h5_file(f)


def _sniff_text(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"{"):
        return "calms21_json"
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lower()
    if first.startswith("scorer"):
        return "dlc_csv"
    return None


def _h5_format(path: Path, fmt: str | None) -> str:
    if fmt == "canonical":
        raise InputError(path, "this is an ethoflow pose h5; read it with results.read_pose")
    if fmt is None:
        raise InputError(path, "HDF5 file is neither a DLC, SLEAP nor NWB pose file")
    return fmt


def _is_h5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file (its magic bytes); InputError for a missing or empty
    file."""
    if not path.is_file():
        raise InputError(path, "pose file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _text_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".slp", ".nwb"):
        raise InputError(path, f"a {suffix} file but not HDF5 (truncated or corrupt?)")
    fmt = _sniff_text(path)
    if fmt is None:
        raise InputError(path, f"unknown pose format (known: {', '.join(READABLE_POSE_FORMATS)})")
    return fmt


def detect_format(path: str | os.PathLike) -> str:
    """The pose format of ``path`` from its content (and extension where content is ambiguous)."""
    path = Path(path)
    if _is_h5(path):
        return _h5_format(path, _sniff_h5(path))
    return _text_format(path)


# ---------------------------------------------------------------- DLC
def _dlc_from_columns(
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


def _dlc_csv_header(path: Path) -> tuple[int, list[str], list[int], list[tuple]]:
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


def _read_dlc_csv(path: Path) -> tuple:
    n_header, coords, data_cols, cols = _dlc_csv_header(path)
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
    return _dlc_from_columns(path, values, index, cols)


def _read_dlc_h5(path: Path) -> tuple:
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
    return _dlc_from_columns(path, values, index, [cols[j] for j in keep])


# ---------------------------------------------------------------- SLEAP
def _pick_tracks(
    path: Path, occupancy: np.ndarray, names: list[str], animals: list[str] | None
) -> list[int]:
    """Tracks to keep: the configured names, else those present in >= half the max occupancy.

    SLEAP's tracker leaves short spurious tracks (the fly pair: 25 tracks holding 74 of 2274
    instances); their instances are dropped with a warning, not merged into the main tracks.
    """
    if animals is not None and all(a in names for a in animals):
        return [names.index(a) for a in animals]
    occ = occupancy.sum(0)
    if occ.size == 0 or occ.max() == 0:
        raise InputError(path, "no tracked instances in the file")
    keep = [i for i in range(len(names)) if occ[i] >= 0.5 * occ.max()]
    dropped = int(occ.sum() - occ[keep].sum())
    if dropped:
        log.warning(
            "%s: dropped %d instances on %d short spurious tracks (kept %s)",
            path,
            dropped,
            len(names) - len(keep),
            [names[i] for i in keep],
        )
    return keep


def _read_slp(path: Path, animals: list[str] | None = None) -> tuple:
    import sleap_io as sio

    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as err:  # noqa: BLE001 - sleap-io raises many types on bad files
        raise InputError(path, f"not a readable SLEAP .slp file: {err}") from err
    if not labels.labeled_frames:
        raise InputError(path, "SLEAP file has no labeled frames")
    if len(labels.videos) > 1:
        log.warning("%s: %d videos; reading the first", path, len(labels.videos))
    parts = [n.name for n in labels.skeletons[0].nodes]
    if labels.tracks:
        arr = labels.numpy(video=0, return_confidence=True)
        names = [tr.name for tr in labels.tracks]
        occ = np.isfinite(arr[..., :2]).all(-1).any(-1)
        keep = _pick_tracks(path, occ, names, animals)
        arr, ids = arr[:, keep], [names[i] for i in keep]
    else:
        per_frame = [len(lf.instances) for lf in labels.labeled_frames]
        if max(per_frame) > 1:
            raise InputError(path, "SLEAP file has several untracked instances per frame")
        arr, ids = labels.numpy(video=0, untracked=True, return_confidence=True), None
    arr = np.asarray(arr, np.float32)
    kp = arr[..., :2].copy()
    conf = np.nan_to_num(arr[..., 2], nan=0.0)
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf[missing] = 0.0
    return kp, conf.astype(np.float32), parts, ids


def _strings(ds) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(ds).ravel()]


def _read_sleap_h5(path: Path, animals: list[str] | None = None) -> tuple:
    with h5py.File(path, "r") as f:
        tracks = f["tracks"][()]
        dims = json.loads(f["tracks"].attrs.get("dims", '["track", "xy", "node", "frame"]'))
        parts = _strings(f["node_names"][()])
        names = _strings(f["track_names"][()]) if "track_names" in f else []
        scores = f["point_scores"][()] if "point_scores" in f else None
        sdims = (
            json.loads(f["point_scores"].attrs.get("dims", '["track", "node", "frame"]'))
            if scores is not None
            else None
        )
    order = [dims.index(d) for d in ("frame", "track", "node", "xy")]
    kp = np.transpose(tracks, order).astype(np.float32)
    if scores is not None:
        conf = np.transpose(scores, [sdims.index(d) for d in ("frame", "track", "node")])
        conf = conf.astype(np.float32)
    else:
        conf = np.ones(kp.shape[:3], np.float32)
    named = len(names) == kp.shape[1]
    if not named:
        names = [f"track_{i}" for i in range(kp.shape[1])]
    occ = np.isfinite(kp).all(-1).any(-1)
    keep = _pick_tracks(path, occ, names, animals) if kp.shape[1] > 1 else [0]
    kp, conf = kp[:, keep], conf[:, keep]
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf = np.where(missing, 0.0, np.nan_to_num(conf, nan=1.0)).astype(np.float32)
    return kp, conf, parts, [names[i] for i in keep] if named else None


# ---------------------------------------------------------------- CalMS21
def calms21_sequences(path: str | os.PathLike) -> dict[str, dict]:
    """All sequences of a CalMS21 json: ``{sequence_id: {keypoints, scores, annotations, ...}}``."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"not valid JSON (truncated?): {err}") from err
    if not isinstance(data, dict):
        raise InputError(path, "CalMS21 json must be an object of annotator groups")
    seqs: dict[str, dict] = {}
    for group in data.values():
        if not isinstance(group, dict):
            raise InputError(path, "CalMS21 json: annotator group is not an object")
        for key, seq in group.items():
            if not isinstance(seq, dict) or "keypoints" not in seq:
                raise InputError(path, f"CalMS21 sequence {key!r} has no 'keypoints'")
            seqs[str(key)] = seq
    if not seqs:
        raise InputError(path, "CalMS21 json holds no sequences")
    return seqs


def pick_sequence(path: Path, seqs: dict[str, dict], sequence: str | None) -> tuple[str, dict]:
    """The sequence named ``sequence`` (full id or its last path part), or the only one."""
    if sequence is None:
        if len(seqs) != 1:
            raise InputError(
                path, f"holds {len(seqs)} sequences; name one (e.g. {next(iter(seqs))!r})"
            )
        return next(iter(seqs.items()))
    for key, seq in seqs.items():
        if sequence in (key, key.rsplit("/", 1)[-1]):
            return key, seq
    raise InputError(path, f"no sequence {sequence!r} (has {len(seqs)}, e.g. {next(iter(seqs))!r})")


def _read_calms21(path: Path, sequence: str | None) -> tuple:
    _, seq = pick_sequence(path, calms21_sequences(path), sequence)
    kp = np.asarray(seq["keypoints"], dtype=np.float32)
    if kp.ndim != 4 or kp.shape[2] != 2:
        raise InputError(path, f"CalMS21 keypoints must be [T, mice, 2, K], got {kp.shape}")
    kp = np.ascontiguousarray(np.transpose(kp, (0, 1, 3, 2)))
    if "scores" in seq:
        conf = np.asarray(seq["scores"], dtype=np.float32)
        if conf.shape != kp.shape[:3]:
            raise InputError(path, f"CalMS21 scores {conf.shape} do not match keypoints")
    else:
        conf = np.ones(kp.shape[:3], np.float32)
    k = kp.shape[2]
    parts = CALMS21_KEYPOINTS if k == len(CALMS21_KEYPOINTS) else [f"kp{i}" for i in range(k)]
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf[missing] = 0.0
    return kp, conf, list(parts), None


# ---------------------------------------------------------------- NWB
def _read_nwb(path: Path) -> tuple:
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as err:  # noqa: BLE001 - pynwb raises many types on bad files
        raise InputError(path, f"not a readable NWB file: {err}") from err
    try:
        found = []
        for mod in nwb.processing.values():
            for name, obj in mod.data_interfaces.items():
                if type(obj).__name__ == "PoseEstimation":
                    found.append((name, obj))
        if not found:
            raise InputError(path, "NWB file has no ndx-pose PoseEstimation")
        ids, kps, confs, parts, fps = [], [], [], None, None
        for name, pe in found:
            series = pe.pose_estimation_series
            order = list(series)
            skel = getattr(pe, "skeleton", None)
            if skel is not None and set(map(str, skel.nodes[:])) == set(order):
                order = [str(n) for n in skel.nodes[:]]
            if parts is None:
                parts = order
            elif set(order) != set(parts):
                raise InputError(
                    path, f"PoseEstimation {name!r} has other keypoints than the first"
                )
            xy = [np.asarray(series[n].data[:], np.float32)[:, :2] for n in parts]
            cf = [
                np.asarray(series[n].confidence[:], np.float32)
                if series[n].confidence is not None
                else np.ones(len(xy[i]), np.float32)
                for i, n in enumerate(parts)
            ]
            kps.append(np.stack(xy, 1))
            confs.append(np.stack(cf, 1))
            s0 = series[parts[0]]
            if s0.rate:
                fps = float(s0.rate)
            elif s0.timestamps is not None and len(s0.timestamps) > 1:
                fps = float(1.0 / np.median(np.diff(s0.timestamps[:])))
            subject = getattr(skel, "subject", None) if skel is not None else None
            ids.append(getattr(subject, "subject_id", None) or name)
    finally:
        io.close()
    t = max(len(k) for k in kps)
    kp = np.full((t, len(kps), len(parts), 2), np.nan, np.float32)
    conf = np.zeros((t, len(kps), len(parts)), np.float32)
    for a, (k, c) in enumerate(zip(kps, confs, strict=True)):
        kp[: len(k), a], conf[: len(c), a] = k, c
    missing = ~np.isfinite(kp).all(-1)
    kp[missing] = np.nan
    conf[missing] = 0.0
    return kp, conf, parts, ids, fps


# ---------------------------------------------------------------- mapping
def _norm(name: str) -> str:
    """Case- and separator-insensitive form: ``Mid-Back`` = ``mid_back`` = ``midback``."""
    return re.sub(r"[\s_\-.]+", "", str(name).lower())


def _alias_table(want: list[str], aliases: dict | None) -> dict[str, set[str]]:
    """Normalized names that stand for each wanted name: itself and its aliases."""
    aliases = aliases or {}
    by_norm = {_norm(k): v for k, v in aliases.items()}
    table = {}
    for w in want:
        extra = aliases.get(w, by_norm.get(_norm(w), []))
        if isinstance(extra, str):
            extra = [extra]
        table[w] = {_norm(w), *(_norm(a) for a in extra)}
    return table


def map_keypoints(
    path: Path,
    have: list[str],
    want: list[str],
    aliases: dict | None = None,
    *,
    setup: str | None = None,
    roles: dict[str, str] | None = None,
) -> tuple[list[int], list[str]]:
    """Indices into ``have`` in the order of ``want`` and the names of ``have`` left over.

    A wanted keypoint matches a file keypoint of the same name, else of the same name up to
    case and separators (spaces, ``_ - .``), else one of its ``aliases`` (compared the same
    way). File keypoints beyond the skeleton are returned (the caller drops them); a wanted
    keypoint the file lacks, or that several file keypoints match, raises InputError; its
    message names the ``setup`` (when given) and which missing keypoints have a role in it
    (``roles``: keypoint -> ``head`` / ``tail``).
    """
    table = _alias_table(want, aliases)
    idx, missing, multiple = [], [], []
    for w in want:
        if w in have:
            idx.append(have.index(w))
            continue
        hits = [i for i, h in enumerate(have) if _norm(h) in table[w]]
        if len(hits) == 1:
            idx.append(hits[0])
        elif hits:
            multiple.append(f"{w!r} <- {[have[i] for i in hits]}")
        else:
            missing.append(w)
    problems = []
    if missing:
        problems.append(f"keypoint(s) of the skeleton missing from the file: {missing}")
        roled = [f"{w!r} ({roles[w]})" for w in missing if w in (roles or {})]
        if roled:
            problems.append(f"among them the setup's {', '.join(roled)}")
    if multiple:
        problems.append(f"several file keypoints match one skeleton keypoint: {multiple}")
    if len(set(idx)) != len(idx):
        dup = sorted({have[i] for i in idx if idx.count(i) > 1})
        problems.append(f"file keypoint(s) {dup} match several skeleton keypoints")
    if problems:
        of = f" of setup {setup!r}" if setup else ""
        raise InputError(
            path,
            "; ".join(problems)
            + f" (file has {have}, skeleton{of} {want}; add names to the setup's "
            "keypoint_aliases)",
        )
    return idx, [h for i, h in enumerate(have) if i not in idx]


def _map_names(path: Path, have: list[str], want: list[str], what: str) -> list[int]:
    """Indices into ``have`` in the order of ``want``; exact, else case/space-insensitive."""
    idx, missing = [], []
    normed = {}
    for i, h in enumerate(have):
        normed.setdefault(_norm(h), i)
    for w in want:
        if w in have:
            idx.append(have.index(w))
        elif _norm(w) in normed:
            idx.append(normed[_norm(w)])
        else:
            missing.append(w)
    unknown = [h for i, h in enumerate(have) if i not in idx]
    if missing or unknown:
        parts = []
        if unknown:
            parts.append(f"{what} names not in the configured list: {unknown}")
        if missing:
            parts.append(f"configured {what} names missing from the file: {missing}")
        raise InputError(path, "; ".join(parts) + f" (file has {have}, config has {want})")
    if len(set(idx)) != len(idx):
        raise InputError(path, f"configured {what} names map onto the same {what} twice: {want}")
    return idx


def resolve_format(path: Path, fmt: str | None = "auto", sniffed: str | None = None) -> str:
    """The format of ``path``: sniffed from its content (unless given, ``sniffed``); a given
    ``fmt`` must agree."""
    sniffed = sniffed or detect_format(path)
    if fmt in ("auto", "", None):
        return sniffed
    if fmt not in READABLE_POSE_FORMATS:
        known = ", ".join(READABLE_POSE_FORMATS)
        raise InputError(path, f"unknown pose format {fmt!r} (known: {known})")
    if fmt != sniffed:
        raise InputError(path, f"labelled {fmt!r} but the content is {sniffed!r}")
    return fmt


@dataclasses.dataclass(frozen=True)
class PoseHeader:
    """What a pose file says about itself without its frames being read (:func:`peek_pose`)."""

    format: str
    keypoint_names: list[str] | None = None  # None: not cheaply known
    n_frames: int | None = None  # None: not cheaply known


def _unique(names) -> list[str]:
    return [str(n) for n in dict.fromkeys(names)]


def _dlc_h5_header(g: h5py.Group) -> tuple[list[str] | None, int | None]:
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
    if _strings([b.attrs.get("name", b""), c.attrs.get("name", b"")]) not in (
        ["bodyparts", "coords"],
        ["", ""],
    ):
        return None, None  # named otherwise: let the reader work it out
    coords = np.asarray(_strings(c[()]), dtype=object)[g[f"axis0_label{nlev - 1}"][()]]
    parts = np.asarray(_strings(b[()]), dtype=object)[g[f"axis0_label{nlev - 2}"][()]]
    parts = _unique(parts[np.isin(coords, ["x", "y", "likelihood"])])
    axis1 = g["axis1"]
    t = int(axis1.shape[0])
    if not t or not np.issubdtype(axis1.dtype, np.integer) or int(axis1[t - 1]) + 1 == t:
        return parts, t
    index = axis1[()]
    if index.min() >= 0 and np.all(np.diff(index) > 0):
        return parts, int(index[-1]) + 1
    return parts, t


def _peek_h5(path: Path, fmt: str | None) -> PoseHeader:
    with _open_h5(path) as f:
        fmt = resolve_format(path, fmt, _h5_format(path, _sniff_h5_file(f)))
        if fmt == "dlc_h5":
            groups = [g for g in f.values() if isinstance(g, h5py.Group)]
            if len(groups) == 1:
                return PoseHeader(fmt, *_dlc_h5_header(groups[0]))
        elif fmt == "sleap_h5":
            tracks = f["tracks"]
            dims = json.loads(tracks.attrs.get("dims", '["track", "xy", "node", "frame"]'))
            return PoseHeader(
                fmt, _strings(f["node_names"][()]), int(tracks.shape[dims.index("frame")])
            )
    if fmt == "sleap_slp":
        from sleap_io.io.slp import read_skeletons

        skeletons = read_skeletons(str(path))
        return PoseHeader(fmt, [str(n.name) for n in skeletons[0].nodes] if skeletons else None)
    return PoseHeader(fmt)


def peek_pose(path: str | os.PathLike, fmt: str | None = "auto") -> PoseHeader:
    """The format of a pose file and, where its header tells them cheaply, its keypoint names
    and frame count: the header rows of a DLC CSV (names only), the index arrays of a DLC h5
    (pandas fixed format), ``node_names`` and the track array's shape of a SLEAP analysis h5,
    the skeleton in the metadata of a SLEAP ``.slp`` (names only); nothing more for NWB and
    CalMS21. No frame is read (about 1 ms a file), so the sheet check runs it at DAG build. A
    file that is not a readable pose file of the format it is labelled raises InputError, as
    :func:`load_pose` would."""
    path = Path(path)
    if not _is_h5(path):
        fmt = resolve_format(path, fmt, _text_format(path))
        if fmt == "dlc_csv":
            return PoseHeader(fmt, _unique(bp for _, bp, _ in _dlc_csv_header(path)[3]))
        return PoseHeader(fmt)
    try:
        return _peek_h5(path, fmt)
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - an unusual layout: the job reads the file and says
        return PoseHeader(resolve_format(path, fmt))


def load_pose(
    path: str | os.PathLike,
    fmt: str = "auto",
    *,
    fps: float | None = None,
    skeleton: list[str] | None = None,
    animals: list[str] | None = None,
    sequence: str | None = None,
    keypoint_aliases: dict[str, list[str]] | None = None,
    setup: str | None = None,
    roles: dict[str, str] | None = None,
) -> Pose:
    """Read a pose file into a :class:`Pose`.

    ``skeleton``/``animals`` reorder keypoints/animals to the configured names. Keypoints are
    matched by :func:`map_keypoints` (exact, case/separator-insensitive, then
    ``keypoint_aliases``); keypoints the file has beyond the skeleton are dropped and listed in
    ``Pose.dropped_keypoints``; a skeleton keypoint the file lacks raises InputError naming the
    file and the keypoints. An animal name without a partner raises InputError. Files without
    animal names (single-animal DLC, CalMS21, untracked SLEAP) take the configured names in
    order when the counts match.
    ``fps`` is used where the file carries none (all but NWB); ``sequence`` picks a CalMS21
    sequence. ``setup`` and ``roles`` name the setup and its head/tail keypoints in the
    message of a missing keypoint (:func:`map_keypoints`).
    """
    path = Path(path)
    fmt = resolve_format(path, fmt)
    file_fps = None
    if fmt == "dlc_csv":
        kp, conf, parts, ids = _read_dlc_csv(path)
    elif fmt == "dlc_h5":
        kp, conf, parts, ids = _read_dlc_h5(path)
    elif fmt == "sleap_slp":
        kp, conf, parts, ids = _read_slp(path, animals)
    elif fmt == "sleap_h5":
        kp, conf, parts, ids = _read_sleap_h5(path, animals)
    elif fmt == "calms21_json":
        kp, conf, parts, ids = _read_calms21(path, sequence)
        file_fps = CALMS21_FPS
    else:
        kp, conf, parts, ids, file_fps = _read_nwb(path)
    if kp.shape[0] == 0:
        raise InputError(path, "pose file has no frames")
    if ids is None:
        if animals is not None and len(animals) == kp.shape[1]:
            ids = list(animals)
        elif fmt == "calms21_json" and kp.shape[1] == 2:
            ids = list(CALMS21_ANIMALS)
        else:
            ids = ["mouse"] if kp.shape[1] == 1 else [f"animal{i + 1}" for i in range(kp.shape[1])]
    if animals is not None:
        a_idx = _map_names(path, ids, list(animals), "animal")
        kp, conf, ids = kp[:, a_idx], conf[:, a_idx], list(animals)
    if skeleton is not None:
        k_idx, dropped = map_keypoints(
            path, list(parts), list(skeleton), keypoint_aliases, setup=setup, roles=roles
        )
        if dropped:
            log.info("%s: keypoints beyond the skeleton dropped: %s", path, dropped)
        kp, conf, parts = kp[:, :, k_idx], conf[:, :, k_idx], list(skeleton)
    else:
        dropped = []
    empty = ~np.isfinite(kp).any(axis=(0, 2, 3))
    if empty.any():
        bad = [ids[i] for i in np.flatnonzero(empty)]
        raise InputError(path, f"animal(s) {bad} have no keypoints in any frame (NaN throughout)")
    rate = file_fps or fps
    if not rate or rate <= 0:
        raise InputError(path, "frame rate unknown: pass fps (the setup's fps)")
    if fps and file_fps and fps != file_fps:  # callers compare with their tolerance
        log.info(
            "%s: the file says %.3f fps, %.3f given; Pose.fps is the file's", path, file_fps, fps
        )
    return Pose(
        keypoints=kp,
        confidence=conf,
        fps=float(rate),
        keypoint_names=list(parts),
        animal_ids=list(ids),
        source_format=fmt,
        source_path=str(path),
        dropped_keypoints=list(dropped),
    )


def check_length(
    n_pose: int, n_video: int, tolerance: int, path: str | os.PathLike | None = None
) -> int:
    """Check pose rows against video frames; return ``n_video - n_pose``.

    Pose row i is video frame i. A positive result means the video has that many trailing
    frames without pose (the MABe clip: 1801 frames, 1800 rows -> 1); negative, the pose has
    extra rows. The workflow keeps the pose length: labels and outputs follow the pose frames,
    trailing video frames have no label. Beyond ``tolerance`` frames it raises InputError.
    """
    diff = int(n_video) - int(n_pose)
    if abs(diff) > int(tolerance):
        side = "shorter" if diff > 0 else "longer"
        raise InputError(
            path,
            f"pose has {n_pose} frames, video {n_video}: pose is {abs(diff)} frames {side} "
            f"than the video (tolerance {tolerance})",
        )
    return diff
