"""A working copy of the workflow for the benchmarks that run it end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ITEMS = ("Snakefile", "workflow", "config", "profiles", "envs", "tests/data")


def copy_workflow(dest: Path) -> Path:
    """Copy what a run needs (the workflow, config, profiles and the demo data) to ``dest``."""
    for item in ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    return dest
