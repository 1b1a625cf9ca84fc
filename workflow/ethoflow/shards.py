"""Shards: the unit of work of the per-session rules.

Snakemake spends a few milliseconds on every job it plans, so a cohort planned as one job
per session and step (ten per session) takes minutes to plan at 10,000 sessions. Instead,
the sessions of each setup and split are spread over ``shards`` buckets by a hash of
``subject/session``, and each per-session rule runs one job per shard, calling its step
once per session of the shard.

- A session's shard never changes while ``shards`` stays the same: adding sessions to the
  sheet touches only their own shards. Train, test and predict sessions never share a
  shard, so adding predict sessions never retrains a model.
- A small cohort gets about one shard per session, so it runs as before.
- A shard job keeps per session a stamp of what its step saw (every input file's size and
  modification time, every setting, the output paths) in the shard's manifest
  (``results/shards/<rule>/<shard>.tsv``, an ``update()`` output that Snakemake keeps).
  When the job runs again (a changed file or a new session in the shard) only the sessions
  whose stamp changed, or whose outputs are gone, are computed again: a fixed file reruns
  only its own session, and GPU time is never spent twice on the same clips.
- The manifest is rewritten after every session, so a job killed half way resumes where
  it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterable

log = logging.getLogger("ethoflow")


def bucket(key: str, n_shards: int) -> int:
    """The bucket of a session key: stable across runs, machines and Python versions."""
    return zlib.crc32(key.encode()) % n_shards


def shard_name(setup: str, split: str, b: int) -> str:
    return f"{setup}.{split}.{b:03d}"


def assign(rows: Iterable[tuple[str, str, str]], n_shards: int) -> dict[str, list[str]]:
    """``{shard: [key, ...]}`` for ``(key, setup, split)`` rows, keys in sheet order."""
    out: dict[str, list[str]] = {}
    for key, setup, split in rows:
        out.setdefault(shard_name(setup, split, bucket(key, n_shards)), []).append(key)
    return dict(sorted(out.items()))


def paths(group: dict) -> list[str]:
    """Every path of a ``{name: path or [paths]}`` group, flattened."""
    out: list[str] = []
    for v in group.values():
        out.extend([v] if isinstance(v, str) else (v or []))
    return [str(p) for p in out]


def _identity(path: str) -> list:
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def stamp(name: str, call) -> str:
    """What a step call depends on: the step, its settings and paths, and the size and
    modification time of every input file (a step rewrites its outputs only when it runs,
    so a later step sees a new time exactly when the session was computed again)."""
    doc = {
        "step": name,
        "input": call.input,
        "output": call.output,
        "params": call.params,
        "files": [_identity(p) for p in paths(call.input)],
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def run_sessions(name: str, calls: list, manifest: str, run: Callable) -> dict[str, dict]:
    """Run ``run(call)`` for every call whose stamp differs from the manifest's, or whose
    outputs are missing; rewrite the manifest after each session. Returns its rows."""
    from .results import failed_reason, read_manifest, write_manifest

    old = read_manifest(manifest)
    rows: dict[str, dict] = {}
    done = reused = 0
    for call in calls:
        key = call.key
        st = stamp(name, call)
        prev = old.get(key)
        outputs = paths(call.output)
        if prev and prev["stamp"] == st and all(os.path.exists(p) for p in outputs):
            rows[key] = prev
            reused += 1
            continue
        t0 = time.perf_counter()
        run(call)
        failed = any(failed_reason(p) is not None for p in outputs)
        rows[key] = {
            "key": key,
            "stamp": st,
            "status": "failed" if failed else "ok",
            "seconds": f"{time.perf_counter() - t0:.2f}",
        }
        done += 1
        # progress survives a kill: the finished sessions are not computed again
        write_manifest(manifest, {**{k: v for k, v in old.items() if k not in rows}, **rows})
    write_manifest(manifest, rows)
    log.info("%s: %d sessions computed, %d unchanged (kept)", name, done, reused)
    return rows
