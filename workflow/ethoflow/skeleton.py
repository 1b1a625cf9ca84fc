"""Keypoint and animal names of a pose file -> the configured skeleton and animals.

Names match exactly, else up to case and separators (spaces, ``_ - .``), else (keypoints
only) by the setup's ``keypoint_aliases``. Used by ``pose_io.load_pose`` for every format
and by the sheet check.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError


def norm_name(name: str) -> str:
    """Case- and separator-insensitive form: ``Mid-Back`` = ``mid_back`` = ``midback``."""
    return re.sub(r"[\s_\-.]+", "", str(name).lower())


def _alias_table(want: list[str], aliases: dict | None) -> dict[str, set[str]]:
    """Normalized names that stand for each wanted name: itself and its aliases."""
    aliases = aliases or {}
    by_norm = {norm_name(k): v for k, v in aliases.items()}
    table = {}
    for w in want:
        extra = aliases.get(w, by_norm.get(norm_name(w), []))
        if isinstance(extra, str):
            extra = [extra]
        table[w] = {norm_name(w), *(norm_name(a) for a in extra)}
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
        hits = [i for i, h in enumerate(have) if norm_name(h) in table[w]]
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


def map_names(path: Path, have: list[str], want: list[str], what: str) -> list[int]:
    """Indices into ``have`` in the order of ``want``; exact, else case/space-insensitive."""
    idx, missing = [], []
    normed = {}
    for i, h in enumerate(have):
        normed.setdefault(norm_name(h), i)
    for w in want:
        if w in have:
            idx.append(have.index(w))
        elif norm_name(w) in normed:
            idx.append(normed[norm_name(w)])
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
