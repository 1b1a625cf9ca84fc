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


def _session(smk) -> str | None:
    wc = smk.wildcards
    if "subject" in wc.keys() and "session" in wc.keys():
        return f"{wc.subject}/{wc.session}"
    return None


def _upstream_failure(smk) -> str | None:
    """The reason of the first failure record among a per-session job's results inputs."""
    from .results import failed_reason

    for path in smk.input:
        if str(path).startswith("results/") and (reason := failed_reason(path)) is not None:
            return reason
    return None


def _record_failure(smk, reason: str) -> None:
    from .results import write_failed

    for path in smk.output:
        write_failed(path, reason)


def run_step(smk, name: str) -> None:
    """Call the step ``name`` (``ethoflow.steps.<module>.<name>``, see ``steps.STEPS``) with
    the rule's named input, output and params, and ``threads`` where the step takes them.
    Only the step's own module is imported, so a job pays only for what its rule needs.

    A per-session job (wildcards subject and session) whose input is bad, or whose earlier
    step failed so, writes a failure record in place of each output instead of failing
    (config ``on_bad_session: skip``, the default), so that one bad session never stops the
    cohort; ``on_bad_session: fail`` makes it fail the job instead."""
    from .errors import InputError
    from .steps import STEPS

    session = _session(smk)
    skip_bad = session is not None and smk.config.get("on_bad_session", "skip") == "skip"
    log = smk.log[0] if len(smk.log) else None
    if skip_bad and (reason := _upstream_failure(smk)) is not None:
        with redirect_to_log(log):
            print(f"session {session} failed earlier, passed on: {reason}")
        _record_failure(smk, reason)
        return
    func = getattr(importlib.import_module(f"ethoflow.steps.{STEPS[name]}"), name)
    kwargs = step_kwargs(smk)
    wanted = inspect.signature(func).parameters
    if "threads" in wanted:
        kwargs["threads"] = smk.threads
    if "vlm_server" in wanted:  # how the VLM runs, not what it computes: never a rerun trigger
        kwargs["vlm_server"] = smk.config.get("vlm_server")
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
    except InputError as err:
        if not skip_bad:
            print(f"ethoflow {name} failed: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        _record_failure(smk, f"{name}: {err}")
        print(
            f"ethoflow {name}: session {session} left out of the cohort: {err}"
            " (recorded in results/failed_sessions.tsv)",
            file=sys.stderr,
        )
    except Exception as err:
        print(f"ethoflow {name} failed: {err}", file=sys.stderr)
        raise SystemExit(1) from None
