"""CalMS21 task-1 json: ``{annotator group: {sequence id: {keypoints [T, mice, 2, K],
scores [T, mice, K], annotations [T], metadata: {vocab}}}}``; 30 fps, two mice (resident,
intruder), 7 keypoints. ``ethoflow.calms21`` turns such files into a cohort.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError

CALMS21_KEYPOINTS = ["nose", "left_ear", "right_ear", "neck", "left_hip", "right_hip", "tail_base"]
CALMS21_ANIMALS = ["resident", "intruder"]
CALMS21_FPS = 30.0


def sniff(head: bytes) -> bool:
    """Whether the start of a text file (leading whitespace stripped) is a json object."""
    return head.startswith(b"{")


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


def read_calms21(path: Path, sequence: str | None) -> tuple:
    """Keypoints, confidence, keypoint names and None (the mice are unnamed) of a sequence."""
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
