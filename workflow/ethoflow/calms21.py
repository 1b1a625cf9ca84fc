"""Turn downloaded CalMS21 task-1 json files into an ethoflow cohort.

``python -m ethoflow.calms21 calms21_task1_train.json calms21_task1_test.json OUTDIR
[--video-dir DIR]`` writes:

- ``OUTDIR/pose/{split}/{name}.json``: one CalMS21-format json per sequence (same layout, one
  sequence), so every session reads only its own pose and annotations (the full train json is
  hundreds of MB: parsing it once per session would dominate the run);
- ``OUTDIR/sessions.tsv``: one row per sequence: ``subject`` = the sequence name (e.g.
  ``mouse001_task1_annotator1``), ``session`` = the split (``train``/``test``; the two files
  reuse sequence names), ``setup`` = ``calms21``, ``video`` = ``{video_dir}/{name}.mp4`` when
  that file exists, else empty, ``pose`` = ``annotations`` = the per-sequence json,
  ``pose_format`` = ``calms21_json``, ``split`` from the sequence id (``task1/train/...``) or
  the file name, ``group`` = ``calms21``;
- ``OUTDIR/setup.yaml``: the ``setups: calms21:`` config block (fps 30, animals resident and
  intruder, the 7 keypoints, behaviors from the vocabulary without ``other``).

Paths in the sheet are relative to the directory the workflow runs in when OUTDIR is
relative, else absolute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from .atomic import atomic_path
from .errors import InputError
from .formats.calms21 import CALMS21_ANIMALS, CALMS21_FPS, CALMS21_KEYPOINTS, calms21_sequences
from .sheet import COLUMNS

SHEET_COLUMNS = [c for c in COLUMNS if c not in ("start_frame", "end_frame")]


def _split_of(key: str, path: Path) -> str:
    for part in key.split("/") + [path.stem]:
        low = part.lower()
        if low == "train" or low.endswith("_train") or "train" in low.split("_"):
            return "train"
        if low == "test" or low.endswith("_test") or "test" in low.split("_"):
            return "test"
    return "predict"


def _vocab_behaviors(vocab: dict) -> list[str]:
    return [k for k, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if k.lower() != "other"]


def calms21_to_cohort(
    json_path: str | os.PathLike | list,
    out_dir: str | os.PathLike,
    video_dir: str | os.PathLike | None = None,
) -> Path:
    """Write per-sequence pose files, ``sessions.tsv`` and ``setup.yaml``; return the sheet path."""
    paths = [Path(p) for p in (json_path if isinstance(json_path, list | tuple) else [json_path])]
    out = Path(out_dir)
    rows, vocab = [], None
    for path in paths:
        if not path.is_file():
            raise InputError(path, "CalMS21 json not found")
        if path.stat().st_size == 0:
            raise InputError(path, "empty file")
        seqs = calms21_sequences(path)
        for key, seq in seqs.items():
            name = key.rsplit("/", 1)[-1]
            split = _split_of(key, path)
            v = (seq.get("metadata") or {}).get("vocab")
            if v is not None:
                if vocab is not None and v != vocab:
                    raise InputError(path, f"sequence {key!r} has another vocab: {v} vs {vocab}")
                vocab = v
            target = out / "pose" / split / f"{name}.json"
            with atomic_path(target) as tmp:
                tmp.write_text(json.dumps({"annotator-id_0": {key: seq}}))
            video = ""
            if video_dir is not None:
                for cand in (
                    Path(video_dir) / f"{name}.mp4",
                    Path(video_dir) / split / f"{name}.mp4",
                ):
                    if cand.is_file():
                        video = str(cand)
                        break
            has_ann = "annotations" in seq and v is not None
            rows.append(
                {
                    "subject": name,
                    "session": split,
                    "setup": "calms21",
                    "video": video,
                    "pose": str(target),
                    "pose_format": "calms21_json",
                    "annotations": str(target) if has_ann else "",
                    "split": split if has_ann else "predict",
                    "group": "calms21",
                }
            )
    sheet = pd.DataFrame(rows, columns=SHEET_COLUMNS)
    if sheet.duplicated(["subject", "session"]).any():
        dup = sheet[sheet.duplicated(["subject", "session"])].iloc[0]
        raise InputError(paths[0], f"sequence {dup.subject} ({dup.session}) appears twice")
    sheet_path = out / "sessions.tsv"
    with atomic_path(sheet_path) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)
    behaviors = _vocab_behaviors(vocab or {})
    setup = [
        "setups:",
        "  calms21:",
        f"    fps: {CALMS21_FPS:g}",
        f"    animals: {json.dumps(CALMS21_ANIMALS)}",
        f"    skeleton: {json.dumps(CALMS21_KEYPOINTS)}",
        "    head: nose",
        "    tail: tail_base",
        f"    behaviors: {json.dumps(behaviors)}",
        "",
    ]
    with atomic_path(out / "setup.yaml") as tmp:
        tmp.write_text("\n".join(setup))
    return sheet_path


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m ethoflow.calms21 IN.json [IN2.json ...] OUTDIR``."""
    ap = argparse.ArgumentParser(
        prog="python -m ethoflow.calms21", description=__doc__.split("\n")[0]
    )
    ap.add_argument("json", nargs="+", help="CalMS21 task-1 json file(s)")
    ap.add_argument("out_dir", help="output directory for sessions.tsv, setup.yaml, pose/")
    ap.add_argument("--video-dir", default=None, help="folder with {sequence}.mp4 videos")
    args = ap.parse_args(argv)
    try:
        sheet = calms21_to_cohort(args.json, args.out_dir, args.video_dir)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n = len(pd.read_csv(sheet, sep="\t"))
    print(f"{sheet}: {n} sessions; config block in {Path(args.out_dir) / 'setup.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
