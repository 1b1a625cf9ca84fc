"""The workflow's fixed vocabularies, each with one source.

Pose formats and classifier modes are the ``enum`` lists of the JSON schemas in
``workflow/schemas/`` (which also validate the sheet and the config); the background label
is defined here. Every other module and rule takes them from this module.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"

BACKGROUND = "other"
"""Label code 0 of every setup: frames that show none of the setup's behaviors."""


@cache
def _schema(name: str) -> dict:
    return yaml.safe_load((SCHEMAS / name).read_text())


def _enum(name: str, *path: str) -> tuple[str, ...]:
    node = _schema(name)
    for key in path:
        node = node[key]
    return tuple(node["enum"])


POSE_FORMATS: tuple[str, ...] = _enum("sessions.schema.yaml", "properties", "pose_format")
"""Sheet ``pose_format`` values; ``auto`` detects the format from the file."""
READABLE_POSE_FORMATS: tuple[str, ...] = tuple(f for f in POSE_FORMATS if f != "auto")
SPLITS: tuple[str, ...] = _enum("sessions.schema.yaml", "properties", "split")
MODES: tuple[str, ...] = _enum("config.schema.yaml", "definitions", "mode")
"""Classification modes; ``pose`` and ``kinematic`` need no video, the others use the VLM."""
POSE_MODES: tuple[str, ...] = tuple(m for m in MODES if m in ("pose", "kinematic"))
STAGE2_MODES: tuple[str, ...] = tuple(m for m in MODES if m not in POSE_MODES)
TRAINED_MODES: tuple[str, ...] = tuple(m for m in STAGE2_MODES if m != "icl")


def classes(behaviors: list[str]) -> list[str]:
    """The label names of a setup by code: the background, then its behaviors."""
    return [BACKGROUND, *behaviors]
