"""Run the demo cohort once per test session in a temporary copy of the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from wfhelpers import copy_repo, snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The demo cohort run end to end with the default config."""
    workdir = copy_repo(tmp_path_factory.mktemp("demo"))
    snakemake(workdir)
    return workdir
