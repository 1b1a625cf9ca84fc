"""The workflow's results files: one reader and one writer for each, used everywhere.

``FILES`` lists every file of the contract in ``workflow/README.md`` (a test keeps the two
equal). Writers are atomic (``atomic.atomic_path``): a failed job leaves no partial file.
Frames of the stage-1, proposal, behavior and label files are session frames (0 = the
first frame of the sheet row's range); clips and embeddings keep video frames, and
:func:`read_clip_windows` maps them back onto the session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .atomic import atomic_path
from .errors import InputError
from .vocab import classes

PathLike = str | os.PathLike

FILES = {
    "results/pose/{subject}/{session}.h5": ("pose_preprocess", "write_pose", "read_pose"),
    "results/qc/{subject}/{session}.tsv": ("pose_preprocess", "write_table", "read_table"),
    "results/labels/{subject}/{session}.csv": ("labels", "write_labels", "read_labels"),
    "results/stage1/{subject}/{session}.h5": ("localize", "write_stage1", "read_stage1"),
    "results/proposals/{subject}/{session}.tsv": (
        "localize",
        "write_proposals",
        "read_proposals",
    ),
    "results/clips/{subject}/{session}.h5": ("cut_clips", "write_clips", "read_clips"),
    "results/embeddings/{subject}/{session}.h5": (
        "vlm_embed",
        "write_embeddings",
        "read_embeddings",
    ),
    "results/descriptions/{subject}/{session}.jsonl": (
        "vlm_describe",
        "write_descriptions",
        "read_descriptions",
    ),
    "results/models/{setup}/icl_exemplars.h5": (
        "icl_exemplars",
        "write_icl_exemplars",
        "read_icl_exemplars",
    ),
    "results/icl/{subject}/{session}.h5": ("vlm_icl", "write_icl_scores", "read_icl_scores"),
    "results/behavior/{mode}/{subject}/{session}.csv": (
        "classify",
        "write_behavior",
        "read_behavior",
    ),
    "results/behavior/{mode}/{subject}/{session}.events.csv": (
        "classify",
        "write_events",
        "read_events",
    ),
    "results/behavior/{mode}/{subject}/{session}.boris.csv": (
        "classify",
        "write_boris",
        "read_boris",
    ),
    "results/review/{subject}/{session}.csv": ("ethoflow review", "write_review", "read_review"),
    "results/metrics/{setup}/{mode}.tsv": ("evaluate", "write_table", "read_table"),
    "results/metrics/{setup}/stage1.tsv": ("evaluate_stage1", "write_table", "read_table"),
    "results/metrics/comparison.tsv": ("compare", "write_table", "read_table"),
    "results/summary/time_budget.tsv": ("summarize", "write_table", "read_table"),
    "results/summary/bouts.tsv": ("summarize", "write_table", "read_table"),
    "results/failed_sessions.tsv": ("failed_sessions", "write_table", "read_table"),
    "results/budget/selection.tsv": ("clip_budget", "write_selection", "read_selection"),
    "results/budget/tradeoff.tsv": ("clip_budget", "write_table", "read_table"),
    "results/shards/{rule}/{shard}.tsv": (
        "each per-session rule",
        "write_manifest",
        "read_manifest",
    ),
}
"""path pattern -> (writing rule, writer, reader) of this module."""


def _scalar(v):
    return v.item() if isinstance(v, np.generic) or getattr(v, "size", 0) == 1 else v


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# ---------------------------------------------------------------- tables
def write_table(df: pd.DataFrame, path: PathLike) -> None:
    """A tab-separated table (metrics, QC, summaries)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def read_table(path: PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


# ---------------------------------------------------------------- canonical pose
def write_pose(
    path: PathLike,
    pose,
    features: np.ndarray,
    feature_names: list[str],
    extra_attrs: dict | None = None,
) -> None:
    """The canonical pose h5: keypoints, confidence, features and their attrs."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != pose.n_frames:
        raise ValueError(f"features {features.shape} do not match {pose.n_frames} frames")
    if len(feature_names) != features.shape[1]:
        raise ValueError("feature_names do not match the feature columns")
    sdt = h5py.string_dtype()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        opts = {"compression": "gzip", "compression_opts": 1}
        f.create_dataset("keypoints", data=pose.keypoints, **opts)
        f.create_dataset("confidence", data=pose.confidence, **opts)
        f.create_dataset("features", data=features, **opts)
        f.attrs["fps"] = float(pose.fps)
        f.attrs.create("keypoint_names", np.array(pose.keypoint_names, dtype=object), dtype=sdt)
        f.attrs.create("animal_ids", np.array(pose.animal_ids, dtype=object), dtype=sdt)
        f.attrs.create("feature_names", np.array(list(feature_names), dtype=object), dtype=sdt)
        f.attrs["source_format"] = pose.source_format
        f.attrs["source_path"] = pose.source_path
        for key, value in (extra_attrs or {}).items():
            f.attrs[key] = value


def read_pose(path: PathLike):
    """``(Pose, features [T, F], feature_names)`` of a canonical pose h5."""
    from .pose_io import Pose

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            kp = f["keypoints"][()]
            conf = f["confidence"][()]
            feats = f["features"][()] if "features" in f else np.zeros((len(kp), 0), np.float32)
            a = f.attrs
            pose = Pose(
                keypoints=kp,
                confidence=conf,
                fps=float(a["fps"]),
                keypoint_names=[_text(s) for s in a["keypoint_names"]],
                animal_ids=[_text(s) for s in a["animal_ids"]],
                source_format=str(a.get("source_format", "")),
                source_path=str(a.get("source_path", "")),
            )
            names = [_text(s) for s in a["feature_names"]] if "feature_names" in a else []
    except (OSError, KeyError) as err:
        raise InputError(path, f"not a readable ethoflow pose h5: {err}") from err
    return pose, feats, names


def read_pose_attrs(path: PathLike) -> dict:
    """The attrs of a pose h5 (``fps``, ``frame_offset``, ...) and its frame count."""
    with h5py.File(path, "r") as f:
        attrs = {k: _scalar(v) for k, v in f.attrs.items()}
        attrs["n_frames"] = int(f["keypoints"].shape[0])
    return attrs


def read_features(path: PathLike) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["features"][()]


# ---------------------------------------------------------------- labels
def write_labels(path: PathLike, labels: np.ndarray, behaviors: list[str]) -> None:
    """``frame,behavior`` per frame, by name (code 0 = the background)."""
    labels = np.asarray(labels, dtype=np.int64)
    names = np.array(classes(behaviors), dtype=object)
    if len(labels) and (labels.min() < 0 or labels.max() > len(behaviors)):
        raise ValueError(f"label codes outside 0..{len(behaviors)}")
    df = pd.DataFrame({"frame": np.arange(len(labels)), "behavior": names[labels]})
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def read_labels(path: PathLike, behaviors: list[str]) -> np.ndarray:
    """Label codes ``int64 [T]`` of a file written by :func:`write_labels`."""
    from .annotations import read_frame_csv

    return read_frame_csv(path, behaviors)


# ---------------------------------------------------------------- stage 1
def write_stage1(
    path: PathLike, p_action: np.ndarray, p_class: np.ndarray, fps: float, model: str
) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("p_action", data=np.asarray(p_action, np.float32))
        f.create_dataset("p_class", data=np.asarray(p_class, np.float32))
        f.attrs["fps"] = float(fps)
        f.attrs["model"] = str(model)


def read_stage1(path: PathLike) -> dict:
    """``p_action [T]``, ``p_class [T, C+1]`` and ``fps``."""
    with h5py.File(path, "r") as f:
        return {
            "p_action": f["p_action"][()],
            "p_class": f["p_class"][()],
            "fps": float(f.attrs["fps"]),
        }


# ---------------------------------------------------------------- proposals
PROPOSAL_COLUMNS = ["start_frame", "end_frame", "score"]


def write_proposals(df: pd.DataFrame, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        df[PROPOSAL_COLUMNS].to_csv(tmp, sep="\t", index=False, float_format="%.6f")


def read_proposals(path: PathLike) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in PROPOSAL_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"proposals table lacks columns {missing}")
    if ((df.end_frame - df.start_frame) <= 0).any():
        raise InputError(path, "a proposal ends before it starts (end_frame is exclusive)")
    return df


# ---------------------------------------------------------------- GPU budget
SELECTION_COLUMNS = ["subject", "session", "clip", "start_frame", "end_frame", "chosen", "mass"]


def write_selection(df: pd.DataFrame, path: PathLike) -> None:
    """The cohort's clip selection under the GPU budget (``budget.selection_table``): one
    row per proposed clip, ``subject, session, clip, start_frame, end_frame, chosen, mass``."""
    with atomic_path(path) as tmp:
        df[SELECTION_COLUMNS].to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def read_selection(path: PathLike) -> pd.DataFrame:
    """The table :func:`write_selection` writes (subject and session as str)."""
    df = pd.read_csv(path, sep="\t", dtype={"subject": str, "session": str})
    missing = [c for c in SELECTION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"budget selection lacks columns {missing}")
    if not df["chosen"].isin([0, 1]).all():
        raise InputError(path, "budget selection: chosen must be 0 or 1")
    return df[SELECTION_COLUMNS]


# ---------------------------------------------------------------- clips
CLIP_CODECS = ("jpeg", "raw")


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> np.ndarray:
    """One ``[H, W, 3]`` uint8 frame as JPEG bytes (a uint8 array; Pillow, 4:2:0)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, "JPEG", quality=int(quality))
    return np.frombuffer(buf.getvalue(), np.uint8)


def decode_jpeg(data: np.ndarray) -> np.ndarray:
    """JPEG bytes -> ``[H, W, 3]`` uint8."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(np.asarray(data, np.uint8).tobytes())) as im:
        return np.asarray(im.convert("RGB"))


def write_clips(
    path: PathLike,
    clips,
    start_frame: np.ndarray,
    end_frame: np.ndarray,
    frame_index: np.ndarray,
    frame_shape: tuple[int, int, int, int],
    attrs: dict,
    codec: str = "raw",
    jpeg_quality: int = 90,
) -> None:
    """One h5 per session: ``clips`` yields ``[F, H, W, 3]`` uint8 arrays, one per window,
    written one at a time so no session is ever held in memory whole.

    ``codec="raw"``: ``/frames`` u1 ``[N,F,H,W,3]``, one gzip chunk per clip.
    ``codec="jpeg"``: ``/frames_jpeg`` variable-length u1 ``[N, F]``, one JPEG per frame;
    attrs ``frame_codec`` (absent in older files = raw), ``jpeg_quality``, ``frame_shape``.
    """
    if codec not in CLIP_CODECS:
        raise ValueError(f"clip codec must be one of {CLIP_CODECS}, got {codec!r}")
    n = len(start_frame)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if codec == "raw":
            ds = f.create_dataset(
                "frames",
                shape=(n, *frame_shape),
                dtype=np.uint8,
                chunks=(1, *frame_shape) if n else None,
                compression="gzip" if n else None,
                compression_opts=1 if n else None,
            )
        else:
            ds = f.create_dataset(
                "frames_jpeg",
                shape=(n, frame_shape[0]),
                dtype=h5py.vlen_dtype(np.uint8),
                chunks=(min(n, 64), frame_shape[0]) if n else None,
            )
        for i, frames in enumerate(clips):
            if codec == "raw":
                ds[i] = frames
            else:
                row = np.empty(len(frames), dtype=object)
                row[:] = [encode_jpeg(fr, jpeg_quality) for fr in frames]
                ds[i] = row
        f.create_dataset("start_frame", data=np.asarray(start_frame, np.int64))
        f.create_dataset("end_frame", data=np.asarray(end_frame, np.int64))
        f.create_dataset("frame_index", data=np.asarray(frame_index, np.int64))
        f.attrs.update(attrs)
        f.attrs["frame_codec"] = codec
        f.attrs["frame_shape"] = np.asarray(frame_shape, np.int64)
        if codec == "jpeg":
            f.attrs["jpeg_quality"] = int(jpeg_quality)


def _clip_frames(f: h5py.File, index) -> np.ndarray:
    """Frames ``[len(index), F, H, W, 3]`` u1 of the clips ``index`` of an open clips h5."""
    if f.attrs.get("frame_codec", "raw") == "raw":
        ds = f["frames"]
        if isinstance(index, range) and len(index) == ds.shape[0]:
            return ds[()]
        return np.stack([ds[int(i)] for i in index]) if len(index) else ds[:0]
    ds = f["frames_jpeg"]
    shape = tuple(int(x) for x in f.attrs["frame_shape"])
    out = np.empty((len(index), *shape), np.uint8)
    for k, i in enumerate(index):
        for j, data in enumerate(ds[int(i)]):
            out[k, j] = decode_jpeg(data)
    return out


def _n_clips(f: h5py.File) -> int:
    return int((f["frames"] if "frames" in f else f["frames_jpeg"]).shape[0])


def read_clips(path: PathLike, frames: bool = True) -> dict:
    """``frames [N,F,H,W,3]`` u1 (unless ``frames=False``; JPEG decoded back), windows, frame
    indices and attrs (``frame_codec`` is ``raw`` for files written before it existed)."""
    with h5py.File(path, "r") as f:
        n = _n_clips(f)
        out = {
            "start_frame": f["start_frame"][()],
            "end_frame": f["end_frame"][()],
            "frame_index": f["frame_index"][()],
            "n_clips": n,
            "frame_codec": "raw",
            **{k: _scalar(f.attrs[k]) for k in f.attrs},
        }
        if frames:
            out["frames"] = _clip_frames(f, range(n))
    return out


def read_clip_frames(path: PathLike, index: list[int]) -> np.ndarray:
    """The frames of a few clips of a session, ``[len(index), F, H, W, 3]``."""
    with h5py.File(path, "r") as f:
        return _clip_frames(f, list(index)) if len(index) else np.zeros((0,), np.uint8)


def read_clip_windows(path: PathLike, pose_h5: PathLike) -> pd.DataFrame:
    """Clip windows of a clips or embeddings h5 in session frames (they store video frames)."""
    offset = int(read_pose_attrs(pose_h5).get("frame_offset", 0))
    with h5py.File(path, "r") as f:
        start = f["start_frame"][()] - offset
        end = f["end_frame"][()] - offset
    return pd.DataFrame({"start_frame": start, "end_frame": end})


# ---------------------------------------------------------------- embeddings
def write_embeddings(
    path: PathLike,
    embeddings: np.ndarray,
    start_frame: np.ndarray,
    end_frame: np.ndarray,
    attrs: dict,
) -> None:
    """float16 ``/embeddings [N, D]`` with the clip windows; ``complete`` marks a whole file."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("embeddings", data=np.asarray(embeddings).astype(np.float16))
        f.create_dataset("start_frame", data=start_frame)
        f.create_dataset("end_frame", data=end_frame)
        f.attrs.update(attrs)
        f.attrs["complete"] = True


def read_embeddings(path: PathLike) -> dict:
    """``embeddings [N, D]`` float32, the clip windows and attrs."""
    with h5py.File(path, "r") as f:
        return {
            "embeddings": f["embeddings"][()].astype(np.float32),
            "start_frame": f["start_frame"][()],
            "end_frame": f["end_frame"][()],
            **{k: _scalar(f.attrs[k]) for k in f.attrs},
        }


# ---------------------------------------------------------------- descriptions
def write_descriptions(path: PathLike, records: list[dict]) -> None:
    """One JSON object per clip and line."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")


def read_descriptions(path: PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- in-context learning
def write_icl_exemplars(
    path: PathLike, frames: np.ndarray, labels: list[str], source: list
) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("frames", data=frames)
        f.create_dataset("label", data=np.array(labels, dtype=h5py.string_dtype()))
        f.attrs["source"] = json.dumps(source)


def read_icl_exemplars(path: PathLike) -> tuple[np.ndarray, list[str]]:
    """``(frames [E,F,H,W,3], label names)``."""
    with h5py.File(path, "r") as f:
        return f["frames"][()], [_text(s) for s in f["label"][()]]


def write_icl_scores(path: PathLike, scores: np.ndarray, attrs: dict) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("scores", data=np.asarray(scores, np.float32))
        f.attrs.update(attrs)


def read_icl_scores(path: PathLike) -> np.ndarray:
    """Label log-likelihoods ``[N, C+1]`` (column 0 = the background)."""
    with h5py.File(path, "r") as f:
        return f["scores"][()]


# ---------------------------------------------------------------- behavior
def write_behavior(path: PathLike, probs: np.ndarray, fps: float, behaviors: list[str]) -> None:
    """``frame, time_s, label, p_<class>...``: one row per session frame."""
    vocab = classes(behaviors)
    probs = np.asarray(probs)
    n = len(probs)
    df = pd.DataFrame({"frame": np.arange(n), "time_s": np.arange(n) / fps})
    df["label"] = np.asarray(vocab)[probs.argmax(1)] if n else []
    for i, b in enumerate(vocab):
        df[f"p_{b}"] = probs[:, i] if n else []
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")


def read_behavior(path: PathLike, behaviors: list[str]) -> dict:
    """``labels [T]`` codes, ``probs [T, C+1]`` and ``fps`` of a behavior CSV.

    fps is read from the frame times the one way: frames per second of ``time_s``
    (1.0 for a session of fewer than two frames).
    """
    vocab = classes(behaviors)
    df = pd.read_csv(path)
    missing = [c for c in ["label", "time_s", *(f"p_{b}" for b in vocab)] if c not in df]
    if missing:
        raise InputError(path, f"behavior table lacks columns {missing}")
    codes = df["label"].map({b: i for i, b in enumerate(vocab)})
    if codes.isna().any():
        raise InputError(path, f"labels outside the setup's vocabulary {vocab}")
    t = df["time_s"].to_numpy(float)
    fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 1.0
    return {
        "labels": codes.to_numpy(np.int64),
        "probs": df[[f"p_{b}" for b in vocab]].to_numpy(),
        "fps": float(fps),
    }


def write_events(df: pd.DataFrame, path: PathLike) -> None:
    """Bouts ``behavior, start_s, stop_s``."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")


def read_events(path: PathLike) -> pd.DataFrame:
    return pd.read_csv(path)


def write_boris(events: pd.DataFrame, path: PathLike, **observation) -> None:
    """The events as a BORIS aggregated-events CSV (``boris.write_aggregated``)."""
    from .boris import write_aggregated

    write_aggregated(events, path, **observation)


def read_boris(path: PathLike) -> pd.DataFrame:
    """``subject, behavior, start_s, stop_s, point`` of a BORIS events export."""
    from .boris import read_events as read_boris_events

    return read_boris_events(path)


# ---------------------------------------------------------------- reviewed annotations
REVIEW_COLUMNS = [
    "behavior",
    "start_s",
    "stop_s",
    "start_frame",
    "stop_frame",
    "status",
    "mode",
    "reviewer",
    "reviewed_at",
]
REVIEW_STATUSES = ("predicted", "accepted", "relabeled", "split", "trimmed", "added")
"""``predicted``: a bout of ``mode`` not yet looked at; the others: what the reviewer did."""


def write_review(path: PathLike, bouts: pd.DataFrame, fps: float) -> None:
    """The reviewed bouts of one session (``ethoflow review``): an event CSV that
    ``annotations.load_annotations`` reads as annotations (``behavior, start_s, stop_s``),
    plus the exact frames (``start_frame``, ``stop_frame`` exclusive: frames of the pose file,
    i.e. with the sheet row's ``start_frame`` added, like any annotation file), ``status``
    (:data:`REVIEW_STATUSES`), the ``mode`` a bout was predicted by, ``reviewer`` and
    ``reviewed_at`` (ISO 8601, UTC; both empty for a ``predicted`` bout). Sorted by start;
    bouts do not overlap; ``other`` marks a bout the reviewer rejected."""
    df = bouts.reindex(columns=REVIEW_COLUMNS).copy()
    df["start_frame"] = df["start_frame"].astype(np.int64)
    df["stop_frame"] = df["stop_frame"].astype(np.int64)
    if ((df.stop_frame - df.start_frame) <= 0).any():
        raise ValueError("a reviewed bout ends before it starts (stop_frame is exclusive)")
    bad = sorted(set(df["status"]) - set(REVIEW_STATUSES))
    if bad:
        raise ValueError(f"unknown review status(es) {bad} (known: {REVIEW_STATUSES})")
    df = df.sort_values("start_frame", kind="stable")
    if (df.start_frame.to_numpy()[1:] < df.stop_frame.to_numpy()[:-1]).any():
        raise ValueError("reviewed bouts overlap")
    df["start_s"] = df["start_frame"] / float(fps)
    df["stop_s"] = df["stop_frame"] / float(fps)
    df = df.fillna({c: "" for c in ("mode", "reviewer", "reviewed_at")})
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6f")


def read_review(path: PathLike) -> pd.DataFrame:
    """The table :func:`write_review` writes (frames as int64, text columns as str)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REVIEW_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"review table lacks columns {missing}")
    try:
        for c in ("start_frame", "stop_frame"):
            df[c] = df[c].astype(np.int64)
        for c in ("start_s", "stop_s"):
            df[c] = df[c].astype(float)
    except ValueError as err:
        raise InputError(path, f"non-numeric frame or time in the review table: {err}") from err
    return df[REVIEW_COLUMNS]


# ---------------------------------------------------------------- shard manifests
MANIFEST_COLUMNS = ("key", "stamp", "status", "seconds")


def read_manifest(path: PathLike) -> dict[str, dict]:
    """``{key: row}`` of a shard manifest (``ethoflow.shards``); empty when there is none, or
    it is not one (a job then computes every session of its shard)."""
    rows: dict[str, dict] = {}
    try:
        with open(path) as f:
            header = f.readline().rstrip("\n").split("\t")
            if tuple(header) != MANIFEST_COLUMNS:
                return {}
            for line in f:
                values = line.rstrip("\n").split("\t")
                if len(values) == len(header):
                    row = dict(zip(header, values, strict=True))
                    rows[row["key"]] = row
    except (OSError, UnicodeDecodeError):
        return {}
    return rows


def write_manifest(path: PathLike, rows: dict[str, dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write("\t".join(MANIFEST_COLUMNS) + "\n")
        for row in rows.values():
            f.write("\t".join(str(row[c]) for c in MANIFEST_COLUMNS) + "\n")


# ---------------------------------------------------------------- failed sessions
FAILED_MAGIC = b"ethoflow: failed session\n"
"""First bytes of a failure record: what a per-session step writes in place of each of its
outputs when the session's input is bad (:class:`~ethoflow.errors.InputError`), so that the
rest of the cohort goes on. Every later step of that session passes the record on; cohort
steps leave the session out and ``results/failed_sessions.tsv`` names it with the reason."""


def write_failed(path: PathLike, reason: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(FAILED_MAGIC + reason.strip().encode() + b"\n")


def failed_reason(path: PathLike) -> str | None:
    """The reason recorded in a failure record, or None for any other file (or none)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(FAILED_MAGIC) + 65536)
    except OSError:
        return None
    if not head.startswith(FAILED_MAGIC):
        return None
    return head[len(FAILED_MAGIC) :].decode(errors="replace").strip()


def drop_failed(*columns: list) -> tuple[list[list], list[tuple[int, str]]]:
    """Leave out the rows of aligned per-session columns (lists of paths or other values)
    in which any path is a failure record: ``(kept columns, [(row, reason), ...])``."""
    n = len(columns[0]) if columns else 0
    if any(len(c) != n for c in columns):
        raise ValueError("drop_failed: the columns are not aligned")
    kept_rows, dropped = [], []
    for i in range(n):
        reason = next(
            (
                r
                for c in columns
                if isinstance(c[i], str | os.PathLike) and (r := failed_reason(c[i])) is not None
            ),
            None,
        )
        if reason is None:
            kept_rows.append(i)
        else:
            dropped.append((i, reason))
    return [[c[i] for i in kept_rows] for c in columns], dropped


def usable(*columns: list) -> list[list]:
    """:func:`drop_failed`, logging each left-out row with its reason: the aligned input
    columns of a cohort step without the sessions that failed."""
    import logging

    kept, dropped = drop_failed(*columns)
    for i, reason in dropped:
        logging.getLogger("ethoflow").warning("left out row %d (failed session): %s", i, reason)
    return kept
