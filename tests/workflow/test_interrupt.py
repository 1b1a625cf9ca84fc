"""A run killed with SIGKILL (the whole process group, job processes included) during
``cut_clips`` and again during a VLM job, then resumed as the README says (``snakemake
--unlock``, then the same command), ends with exactly the results of a run that was never
interrupted: every table, array and model file equal, and no temporary file left over.

Two copies of a tiny cohort (one open-field video session to train on, one pose-only test
session) run the same config: one straight through, one interrupted twice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from wfhelpers import copy_repo, snakemake

pytestmark = pytest.mark.workflow

DATA = "tests/data/dlc_openfield"
HEADER = "subject\tsession\tsetup\tvideo\tpose\tpose_format\tannotations\tsplit\tgroup"
HEADER += "\tstart_frame\tend_frame\n"
SHEET = HEADER + "".join(
    "\t".join(cells) + "\n"
    for cells in (
        # the video session: stage 1, clips and every VLM rule run on it. Frames 600-1200:
        # where the file's H.264 decode errors made multi-threaded decoding differ run to run
        ["of1", "part1", "openfield", f"{DATA}/m3v1mp4.mp4"]
        + [f"{DATA}/openfield_dlc_inference_example_missingdata.csv", "dlc_csv"]
        + ["rule:kinematic", "train", "A", "600", "1200"],
        # a pose-only session to evaluate stage 1 and the pose classifier on
        ["of1", "part2", "openfield", "", f"{DATA}/openfield_dlc_inference_example.csv"]
        + ["dlc_csv", "rule:kinematic", "test", "A", "1200", "1800"],
    )
)
# both stage-1 candidates (the CNN's training is seeded too) with few epochs; the modes that
# need vlm_embed (linear) and vlm_icl (icl) besides the pose classifier; descriptions on
CONFIG = """\
localizer: {epochs: 2, min_epochs: 1, patience: 1, augment_copies: 1}
classifier: {modes: [pose, linear, icl], primary: pose}
discover: {enabled: false}
"""
ARGS = ("--configfile", "config/config.yaml", "small.yaml")
VLM_RULES = ("vlm_embed", "vlm_describe", "vlm_icl")

# Attributes that hold wall-clock measurements of the run, not results: the VLM steps record
# how long the model took (``seconds``, ``clips_per_second`` on embeddings and ICL scores).
TIMING_ATTRS = {"seconds", "clips_per_second"}
# NWB files: ``object_id`` is a random UUID that hdmf gives every object, and
# ``file_create_date`` the time the file was written (both required by the NWB schema).
NWB_STAMP_ATTRS = {"object_id"}
NWB_STAMP_DATASETS = {"file_create_date"}
# Descriptions (jsonl): ``seconds`` is the model's time per clip.
TIMING_KEYS = {"seconds"}


def _cohort(dest: Path) -> Path:
    work = copy_repo(dest)
    (work / "config/sessions.tsv").write_text(SHEET)
    (work / "small.yaml").write_text(CONFIG)
    return work


def _start(work: Path, out) -> subprocess.Popen:
    """``snakemake --cores 2`` in a process group of its own (its jobs inherit it)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *ARGS]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _processes_in(work: Path) -> list[int]:
    """Process ids whose working directory is inside ``work`` (jobs of a run there)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == str(work) or cwd.startswith(f"{work}/"):
                pids.append(int(entry.name))
    return pids


def _kill_during(work: Path, rules: tuple[str, ...], attempt: str, timeout: float = 600) -> Path:
    """Run the workflow until a job of one of ``rules`` has started (its log file exists:
    ``logs/<rule>/<shard>.log``), then SIGKILL the whole process group at once. Returns the
    killed job's log."""
    logs = work / "logs"
    with open(work / f"{attempt}.out", "w") as out:
        proc = _start(work, out)
        deadline = time.monotonic() + timeout
        found: list[Path] = []
        try:
            while True:
                found = sorted(p for r in rules for p in (logs / r).glob("*.log"))
                if found:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                if proc.poll() is not None:
                    text = (work / f"{attempt}.out").read_text()[-4000:]
                    raise AssertionError(f"the run ended before any {rules} job:\n{text}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {rules} job within {timeout} s")
                time.sleep(0.02)
        finally:
            if proc.poll() is None and not found:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the kill left the working directory locked, as after a crash
    assert list((work / ".snakemake/locks").iterdir()), "a killed run leaves its lock"
    # processes that outlive the group (a detached VLM model server may; the rerun must
    # still give the same results): reported, and killed at the end of the test
    survivors = _processes_in(work)
    print(f"{attempt}: killed during {found[0].relative_to(work)}; outlived: {survivors}")
    return found[0]


def _ran(proc, rule: str, log: Path, work: Path) -> bool:
    """Whether a run's output shows it (re)ran the job that wrote ``log``."""
    wanted = f"log: {log.relative_to(work)}"
    blocks = (proc.stdout + proc.stderr).split("rule ")
    return any(b.startswith(f"{rule}:") and wanted in b for b in blocks)


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _equal_values(a, b, files=None) -> bool:
    """Equal dtype, shape and values (NaN equal to NaN); object references of HDF5 files are
    equal when they point at objects of the same name in ``files``."""
    if isinstance(a, h5py.Reference) or isinstance(b, h5py.Reference):
        return (
            isinstance(a, h5py.Reference)
            and isinstance(b, h5py.Reference)
            and files is not None
            and bool(a) == bool(b)
            and (not a or files[0][a].name == files[1][b].name)
        )
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.kind == "O":  # variable-length strings, byte arrays (JPEG frames), references
        pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
        return all(
            _equal_values(x, y, files)
            if isinstance(x, np.ndarray | h5py.Reference)
            else type(x) is type(y) and x == y
            for x, y in pairs
        )
    if a.dtype.names:  # compound rows (NWB tables), each field compared
        return all(_equal_values(a[n], b[n], files) for n in a.dtype.names)
    return bool(np.array_equal(a, b))


def _h5_differences(a: Path, b: Path, nwb: bool) -> list[str]:
    """Every dataset, group and attribute of two HDF5 files compared; what differs."""
    skip_attrs = TIMING_ATTRS | (NWB_STAMP_ATTRS if nwb else set())
    skip_sets = NWB_STAMP_DATASETS if nwb else set()
    diffs: list[str] = []

    def items(f: h5py.File) -> dict[str, h5py.HLObject]:
        out = {"/": f}
        f.visititems(lambda name, obj: out.setdefault(name, obj) and None)
        return out

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        ia, ib = items(fa), items(fb)
        if set(ia) != set(ib):
            return [f"objects differ: {sorted(set(ia) ^ set(ib))}"]
        for name, oa in ia.items():
            ob = ib[name]
            if type(oa) is not type(ob):
                diffs.append(f"{name}: {type(oa).__name__} vs {type(ob).__name__}")
                continue
            attrs_a = {k: v for k, v in oa.attrs.items() if k not in skip_attrs}
            attrs_b = {k: v for k, v in ob.attrs.items() if k not in skip_attrs}
            if set(attrs_a) != set(attrs_b):
                diffs.append(f"{name}: attrs {sorted(set(attrs_a) ^ set(attrs_b))}")
            for k in sorted(set(attrs_a) & set(attrs_b)):
                if not _equal_values(attrs_a[k], attrs_b[k], (fa, fb)):
                    diffs.append(f"{name}: attr {k} {attrs_a[k]!r} vs {attrs_b[k]!r}")
            if isinstance(oa, h5py.Dataset) and name.rsplit("/", 1)[-1] not in skip_sets:
                if not _equal_values(oa[()], ob[()], (fa, fb)):
                    diffs.append(f"{name}: values differ")
    return diffs


def _drop_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


def _manifest_status(path: Path) -> dict[str, str]:
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert rows[0] == ["key", "stamp", "status", "seconds"], rows[0]
    return {r[0]: r[2] for r in rows[1:]}


def compare_runs(ref: Path, other: Path) -> list[str]:
    """Differences between the results (and the built demo model) of two runs.

    Tables (tsv, csv), JSON, pickled and torch model files, plots and the model's files are
    compared byte for byte; jsonl records parsed, less their timing keys; HDF5 and NWB files
    dataset by dataset and attribute by attribute, less the timing and NWB stamp attrs;
    shard manifests by their sessions and status."""
    diffs: list[str] = []
    for top in ("results", "resources"):
        fa, fb = _files(ref / top), _files(other / top)
        if set(fa) != set(fb):
            diffs.append(f"{top}/ files differ: {sorted(set(fa) ^ set(fb))}")
        for rel in sorted(set(fa) & set(fb)):
            a, b, name = fa[rel], fb[rel], f"{top}/{rel}"
            if a.suffix in (".h5", ".nwb"):
                diffs += [f"{name}: {d}" for d in _h5_differences(a, b, a.suffix == ".nwb")]
            elif a.suffix == ".jsonl":
                ra = [_drop_timing(json.loads(x)) for x in a.read_text().splitlines()]
                rb = [_drop_timing(json.loads(x)) for x in b.read_text().splitlines()]
                if ra != rb:
                    diffs.append(f"{name}: records differ")
            elif a.suffix == ".html":
                continue  # the report, rendered from the tables compared here
            elif rel.startswith("shards/"):
                # a shard's manifest: the same sessions, each finished or failed alike
                # (stamps hold file times, and seconds the time each session took)
                if _manifest_status(a) != _manifest_status(b):
                    diffs.append(f"{name}: sessions or their status differ")
            elif a.read_bytes() != b.read_bytes():
                diffs.append(f"{name}: bytes differ")
    return diffs


def test_killed_twice_and_resumed_equals_an_uninterrupted_run(tmp_path):
    ref = _cohort(tmp_path / "reference")
    work = _cohort(tmp_path / "interrupted")
    try:
        snakemake(ref, *ARGS)

        # 1. killed while cutting the clips: stage 1 is done, the clips file is not
        _kill_during(work, ("cut_clips",), "kill1")
        assert (work / "results/proposals/of1/part1.tsv").is_file()
        assert not (work / "results/clips/of1/part1.h5").exists()

        # 2. unlocked and rerun, killed again while a VLM job runs
        snakemake(work, *ARGS, "--unlock")
        vlm_log = _kill_during(work, VLM_RULES, "kill2")
        assert (work / "results/clips/of1/part1.h5").is_file(), "the rerun cut the clips"
        vlm_rule = vlm_log.relative_to(work / "logs").parts[0]
        vlm_out = {
            "vlm_embed": "embeddings/of1/part1.h5",
            "vlm_describe": "descriptions/of1/part1.jsonl",
            "vlm_icl": "icl/of1/part1.h5",
        }[vlm_rule]
        assert not (work / "results" / vlm_out).exists(), f"{vlm_rule} was killed mid-job"

        # 3. unlocked and run to the end: the killed VLM job runs again
        snakemake(work, *ARGS, "--unlock")
        proc = snakemake(work, *ARGS)
        assert _ran(proc, vlm_rule, vlm_log, work), proc.stdout[-3000:]
        assert "Nothing to be done" in snakemake(work, *ARGS, "--dry-run").stdout

        diffs = compare_runs(ref, work)
        assert diffs == [], "\n".join(diffs)
        leftovers = [
            str(p.relative_to(work))
            for p in (work / "results").rglob("*")
            if p.name.endswith(".part") or p.name.startswith((".", "tmp"))
        ]
        assert leftovers == [], leftovers
    finally:
        # what outlived the kills or the runs (the VLM model servers, idle for
        # vlm_server.idle_s before they exit): this test's processes, ended by their ids
        for pid in _processes_in(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
