"""Pose files in any supported format -> one canonical array, and the canonical pose h5.

Formats (``vocab.READABLE_POSE_FORMATS``), each read by its module in ``ethoflow.formats``
(:data:`FORMATS` maps the names onto them): DeepLabCut inference CSV/h5 (single animal, 3
header rows; multi-animal, 4 header rows with ``individuals``), SLEAP ``.slp`` (via
sleap-io) and analysis h5, CalMS21 task-1 json and NWB (ndx-pose). Every reader returns a
:class:`Pose` with ``keypoints`` ``[T, A, K, 2]`` (NaN = missing) and ``confidence``
``[T, A, K]``.

Missing points: NaN, or exactly ``(0, 0)`` in DLC files (the MABe h5 encodes missing so).
Files without a likelihood get confidence 1 where a point exists and 0 where it is missing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from .errors import InputError
from .formats import calms21, dlc, nwb, sleap
from .skeleton import map_keypoints, map_names
from .vocab import READABLE_POSE_FORMATS

__all__ = [
    "FORMATS",
    "Pose",
    "PoseFormat",
    "PoseHeader",
    "check_length",
    "detect_format",
    "load_pose",
    "map_keypoints",
    "peek_pose",
    "resolve_format",
]

log = logging.getLogger("ethoflow")


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


# ---------------------------------------------------------------- formats
@dataclasses.dataclass(frozen=True)
class PoseFormat:
    """How one format of ``vocab.READABLE_POSE_FORMATS`` is read (functions of its module)."""

    read: Callable[..., tuple]
    """``(path, animals, sequence) -> (keypoints, confidence, names, ids | None, fps | None)``;
    fps: the file's frame rate, None where it carries none."""
    sniff_text: Callable[[bytes], bool] | None = None
    """Text formats: whether the start of the file (leading whitespace stripped) is one."""
    sniff_h5: Callable[[h5py.File], bool] | None = None
    """HDF5 formats: whether the open file is one."""
    header_h5: Callable[[h5py.File], tuple] | None = None
    """``open file -> (keypoint names | None, n_frames | None)`` without reading a frame."""
    header: Callable[[Path], tuple] | None = None
    """``path -> (keypoint names | None, n_frames | None)`` without reading a frame."""
    animals: tuple[str, ...] | None = None
    """Animal ids of a file that names none, when it has as many animals."""


FORMATS: dict[str, PoseFormat] = {  # sniffed in this order
    "calms21_json": PoseFormat(
        read=lambda p, animals, sequence: (
            *calms21.read_calms21(p, sequence),
            calms21.CALMS21_FPS,
        ),
        sniff_text=calms21.sniff,
        animals=tuple(calms21.CALMS21_ANIMALS),
    ),
    "dlc_csv": PoseFormat(
        read=lambda p, animals, sequence: (*dlc.read_dlc_csv(p), None),
        sniff_text=dlc.sniff_csv,
        header=dlc.peek_dlc_csv,
    ),
    "nwb": PoseFormat(read=lambda p, animals, sequence: nwb.read_nwb(p), sniff_h5=nwb.sniff),
    "sleap_h5": PoseFormat(
        read=lambda p, animals, sequence: (*sleap.read_sleap_h5(p, animals), None),
        sniff_h5=sleap.sniff_analysis_h5,
        header_h5=sleap.peek_sleap_h5,
    ),
    "sleap_slp": PoseFormat(
        read=lambda p, animals, sequence: (*sleap.read_slp(p, animals), None),
        sniff_h5=sleap.sniff_slp,
        header=sleap.peek_slp,
    ),
    "dlc_h5": PoseFormat(
        read=lambda p, animals, sequence: (*dlc.read_dlc_h5(p), None),
        sniff_h5=dlc.sniff_h5,
        header_h5=dlc.peek_dlc_h5,
    ),
}
if set(FORMATS) != set(READABLE_POSE_FORMATS):  # the schema's enum is the one vocabulary
    raise RuntimeError(
        f"pose readers {sorted(FORMATS)} != sessions schema formats {READABLE_POSE_FORMATS}"
    )


# ---------------------------------------------------------------- detection
def _sniff_h5_file(f: h5py.File) -> str | None:
    for name, spec in FORMATS.items():
        if spec.sniff_h5 is not None and spec.sniff_h5(f):
            return name
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
    for name, spec in FORMATS.items():
        if spec.sniff_text is not None and spec.sniff_text(head):
            return name
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


def _peek_h5(path: Path, fmt: str | None) -> PoseHeader:
    with _open_h5(path) as f:
        fmt = resolve_format(path, fmt, _h5_format(path, _sniff_h5_file(f)))
        spec = FORMATS[fmt]
        if spec.header_h5 is not None:
            return PoseHeader(fmt, *spec.header_h5(f))
    if spec.header is not None:
        return PoseHeader(fmt, *spec.header(path))
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
        header = FORMATS[fmt].header
        return PoseHeader(fmt, *header(path)) if header is not None else PoseHeader(fmt)
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
    spec = FORMATS[fmt]
    kp, conf, parts, ids, file_fps = spec.read(path, animals, sequence)
    if kp.shape[0] == 0:
        raise InputError(path, "pose file has no frames")
    if ids is None:
        if animals is not None and len(animals) == kp.shape[1]:
            ids = list(animals)
        elif spec.animals is not None and kp.shape[1] == len(spec.animals):
            ids = list(spec.animals)
        else:
            ids = ["mouse"] if kp.shape[1] == 1 else [f"animal{i + 1}" for i in range(kp.shape[1])]
    if animals is not None:
        a_idx = map_names(path, ids, list(animals), "animal")
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
