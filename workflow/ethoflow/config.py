"""Config defaults, read from the one place they live: ``workflow/schemas/config.schema.yaml``.

The workflow's ``snakemake.utils.validate(config, schema)`` fills them into ``config``, so rules
index config directly. Domain functions called outside the workflow (tests, notebooks) with a
partial section merge ``defaults(section)`` under it, so both take their defaults from the schema.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


@cache
def schema() -> dict:
    """The config schema (parsed once; callers get a shared dict, do not modify it)."""
    with open(SCHEMA) as f:
        return yaml.safe_load(f)


def _resolve(sub: dict) -> dict:
    """Follow a local ``$ref`` (``#/definitions/...``) of a property schema."""
    ref = sub.get("$ref")
    if not ref:
        return sub
    node = schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return {**node, **{k: v for k, v in sub.items() if k != "$ref"}}


def defaults(section: str) -> dict:
    """Defaults of the keys of a top-level config section, e.g. ``defaults("localizer")``.

    ``defaults("setups")`` gives those of one setup entry. Keys without a default are absent.
    Returns a fresh copy each call.
    """
    node = schema()["properties"][section]
    if section == "setups":
        node = node["additionalProperties"]
    props = _resolve(node).get("properties", {})
    return {
        k: copy.deepcopy(_resolve(v)["default"])
        for k, v in props.items()
        if "default" in _resolve(v)
    }
