"""A real single-node SLURM cluster (partitions `standard` and `gpu`) for the profile tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slurm_cluster() -> Path:
    """Start the cluster with .ci/slurm_cluster.sh; skip (reason printed) where it cannot run."""
    if os.geteuid() != 0:
        pytest.skip("SLURM test cluster needs root (installs slurm-wlm + munge with apt)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM test cluster needs slurm-wlm installed or apt-get to install it")
    r = subprocess.run(
        [str(REPO / ".ci" / "slurm_cluster.sh")], capture_output=True, text=True, timeout=300
    )
    if r.returncode != 0:
        pytest.skip(f"could not start the SLURM test cluster: {r.stderr.strip()[-500:]}")
    return REPO / "profiles" / "slurm"
