"""Glue between Snakemake ``script:`` directives and the step functions of the package.

Cohort rules run one step call per job (:func:`run_step`). Per-session steps run in shard
jobs (:func:`run_shard`): each job of a per-session rule covers one shard of the cohort
(:mod:`ethoflow.shards`) and calls the step once per session of it, so that the DAG of a
10,000-session cohort has a few thousand jobs, not a hundred thousand.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field

from .shards import paths, run_sessions


def _value(v):
    """Snakemake named items: a single path stays a string, lists become lists."""
    if isinstance(v, str | int | float | bool | dict) or v is None:
        return v
    if hasattr(v, "__iter__"):
        return [_value(x) for x in v]
    return v


@dataclass
class StepCall:
    """One call of a step: named inputs, outputs and params, its log, the session it is
    for (``subject/session``; None for a cohort step) and, where a step runs several times
    per session (classify: once per mode), what tells those calls apart."""

    input: dict
    output: dict
    params: dict = field(default_factory=dict)
    log: str | None = None
    session: str | None = None
    tag: str | None = None

    @property
    def key(self) -> str | None:
        """The call's row in a shard manifest."""
        return f"{self.tag}:{self.session}" if self.tag else self.session

    def kwargs(self) -> dict:
        return {**self.input, **self.output, **self.params}


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


def _upstream_failure(call: StepCall) -> str | None:
    """The reason of the first failure record among a per-session call's results inputs."""
    from .results import failed_reason

    for path in paths(call.input):
        if path.startswith("results/") and (reason := failed_reason(path)) is not None:
            return reason
    return None


def _record_failure(call: StepCall, reason: str) -> None:
    from .results import write_failed

    for path in paths(call.output):
        write_failed(path, reason)


def call_step(name: str, call: StepCall, config: dict, threads: int = 1) -> None:
    """Call the step ``name`` (``ethoflow.steps.<module>.<name>``, see ``steps.STEPS``) with
    the call's named inputs, outputs and params, and ``threads`` where the step takes them.
    Only the step's own module is imported, so a job pays only for what its rule needs.

    A per-session call whose input is bad, or whose earlier step failed so, writes a failure
    record in place of each output instead of failing (config ``on_bad_session: skip``, the
    default), so that one bad session never stops the cohort; ``on_bad_session: fail``
    makes it fail the job instead."""
    from .errors import InputError
    from .steps import STEPS

    session = call.session
    skip_bad = session is not None and config.get("on_bad_session", "skip") == "skip"
    if skip_bad and (reason := _upstream_failure(call)) is not None:
        with redirect_to_log(call.log):
            print(f"session {session} failed earlier, passed on: {reason}")
        _record_failure(call, reason)
        return
    func = getattr(importlib.import_module(f"ethoflow.steps.{STEPS[name]}"), name)
    kwargs = call.kwargs()
    wanted = inspect.signature(func).parameters
    if "threads" in wanted:
        kwargs["threads"] = threads
    if "vlm_server" in wanted:  # how the VLM runs, not what it computes: never a rerun trigger
        kwargs["vlm_server"] = config.get("vlm_server")
    try:
        with redirect_to_log(call.log):
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
        _record_failure(call, f"{name}: {err}")
        print(
            f"ethoflow {name}: session {session} left out of the cohort: {err}"
            " (recorded in results/failed_sessions.tsv)",
            file=sys.stderr,
        )
    except Exception as err:
        where = f" (session {session})" if session else ""
        print(f"ethoflow {name} failed{where}: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def run_step(smk, name: str) -> None:
    """A cohort rule's job: one call of its step with the rule's input, output and params.
    Inputs named ``*_shards`` are the shard manifests that make Snakemake run the job when
    a shard changed; the step reads the per-session files its params name instead."""
    call = StepCall(
        input={k: _value(v) for k, v in smk.input.items() if not k.endswith("_shards")},
        output={k: _value(v) for k, v in smk.output.items()},
        params={k: _value(v) for k, v in smk.params.items()},
        log=smk.log[0] if len(smk.log) else None,
    )
    call_step(name, call, smk.config, smk.threads)


def run_shard(smk, name: str) -> None:
    """A per-session rule's job over one shard: the step once for each session of the
    shard whose inputs or settings changed since the shard's manifest recorded it (see
    :func:`ethoflow.shards.run_sessions`), then the manifest. ``params.sessions`` holds one
    ``{session, input, output, params, log}`` per session; the rule's other params are
    shared by every session of the shard."""
    shared = {k: _value(v) for k, v in smk.params.items() if k != "sessions"}
    calls = [
        StepCall(
            input=spec["input"],
            output=spec["output"],
            params={**shared, **spec.get("params", {})},
            log=spec["log"],
            session=spec["session"],
            tag=spec.get("tag"),
        )
        for spec in smk.params.sessions
    ]
    log = smk.log[0] if len(smk.log) else None
    with redirect_to_log(log):
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
        )
        run_sessions(
            name,
            calls,
            smk.output.manifest,
            lambda call: call_step(name, call, smk.config, smk.threads),
        )
