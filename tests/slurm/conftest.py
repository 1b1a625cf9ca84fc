"""A real single-node SLURM cluster (partitions `standard` and `gpu`) for the profile tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "slurm_cluster.sh"


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start the cluster with .ci/slurm_cluster.sh (skip, with the reason, where it cannot run);
    stop it at the end of the module only if this fixture started it."""
    if os.geteuid() != 0:
        pytest.skip("SLURM test cluster needs root (installs slurm-wlm + munge, starts daemons)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("SLURM test cluster needs apt-get (or slurm-wlm already installed)")
    was_running = (
        subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True).returncode == 0
    )
    r = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.skip(f"could not start the SLURM test cluster: {(r.stdout + r.stderr)[-800:]}")
    print(r.stdout)
    yield REPO / "profiles" / "slurm"
    if not was_running:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)
