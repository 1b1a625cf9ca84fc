"""Config defaults, read from the one place they live: ``workflow/schemas/config.schema.yaml``.

The workflow's ``snakemake.utils.validate(config, schema)`` fills them into ``config``, so rules
index config directly. Domain functions called outside the workflow (tests, notebooks) with a
partial section merge ``defaults(section)`` under it, so both take their defaults from the schema.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from functools import cache
from pathlib import Path

import yaml

from .errors import InputError

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


def _where(path) -> str:
    return ".".join(str(p) for p in path)


def _files(source) -> str | None:
    """The config files as given, once each (Snakemake lists a file by several names)."""
    if source is None or isinstance(source, str):
        return source
    files = dict.fromkeys(Path(f).resolve() for f in source)
    return ", ".join(os.path.relpath(f) if f.is_relative_to(Path.cwd()) else str(f) for f in files)


def check_config(config: dict, schema_path: str | os.PathLike = SCHEMA, source=None) -> None:
    """Raise one InputError listing every problem of ``config`` against the schema at once.

    An unknown key (the schema has ``additionalProperties: false`` wherever the keys are fixed)
    is named with its full path and the nearest valid key, e.g. ``unknown key localizer.epoch
    (did you mean localizer.epochs?)``; missing keys and bad values are named by their path.
    ``source`` (a label, or the config files) heads the message. Run it before
    ``snakemake.utils.validate``, which stops at the first error but fills the defaults.
    """
    import jsonschema

    with open(schema_path) as f:
        validator = jsonschema.Draft202012Validator(yaml.safe_load(f))
    problems: list[str] = []
    for err in validator.iter_errors(config):
        where = _where(err.absolute_path)
        prefix = f"{where}." if where else ""
        if err.validator == "additionalProperties" and err.validator_value is False:
            allowed = list(err.schema.get("properties", {}))
            for key in err.instance:
                if key in allowed:
                    continue
                near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = (
                    f"did you mean {prefix}{near[0]}?"
                    if near
                    else f"valid keys{' of ' + where if where else ''}: {', '.join(allowed)}"
                )
                problems.append(f"unknown key {prefix}{key} ({hint})")
        elif err.validator == "required":
            missing = re.match(r"'(.*)' is a required property", err.message)
            name = missing.group(1) if missing else err.message
            problems.append(f"missing required key {prefix}{name}")
        else:
            problems.append(f"{where or '(top level)'}: {err.message}")
    if problems:
        n, source = len(problems), _files(source)
        head = f"bad config{f' ({source})' if source else ''}, {n} problem{'s' if n > 1 else ''}:"
        raise InputError(None, "\n  ".join([head, *sorted(problems)]))
