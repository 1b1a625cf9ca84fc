"""Glue between Snakemake ``script:`` directives and the step functions of the package."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Iterator


def _value(v):
    """Snakemake named items: a single path stays a string, lists become lists."""
    if isinstance(v, str | int | float | bool | dict) or v is None:
        return v
    if hasattr(v, "__iter__"):
        return [_value(x) for x in v]
    return v


def step_kwargs(smk) -> dict:
    kwargs: dict = {}
    for group in (smk.input, smk.output, smk.params):
        for name, value in group.items():
            kwargs[name] = _value(value)
    return kwargs


@contextlib.contextmanager
def redirect_to_log(path: str | None) -> Iterator[None]:
    """Send stdout and stderr (file descriptors too, so C libraries land there) to the log."""
    if not path:
        yield
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_step(smk, name: str) -> None:
    """Call the step ``name`` (``ethoflow.steps.<module>.<name>``, see ``steps.STEPS``) with
    the rule's named input, output and params, and ``threads`` where the step takes them.
    Only the step's own module is imported, so a job pays only for what its rule needs."""
    from .steps import STEPS

    func = getattr(importlib.import_module(f"ethoflow.steps.{STEPS[name]}"), name)
    kwargs = step_kwargs(smk)
    if "threads" in inspect.signature(func).parameters:
        kwargs["threads"] = smk.threads
    log = smk.log[0] if len(smk.log) else None
    try:
        with redirect_to_log(log):
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
            )
            try:
                func(**kwargs)
            except Exception:
                traceback.print_exc()
                raise
    except Exception as err:
        print(f"ethoflow {name} failed: {err}", file=sys.stderr)
        raise SystemExit(1) from None
