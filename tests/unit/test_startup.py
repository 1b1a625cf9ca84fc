"""A job imports only its own steps module: torch, transformers and sklearn stay out of the
jobs that do not need them (each costs a second or more of start-up per job)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parents[2] / "workflow"
HEAVY = ("torch", "transformers", "sklearn")


def loaded_after(module: str) -> set[str]:
    """The HEAVY libraries in ``sys.modules`` after a fresh interpreter imports ``module``."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(WORKFLOW)!r}); import {module}; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["pose", "localize", "clips", "vlm", "classify", "cohort"])
def test_steps_module_imports_no_heavy_library(module):
    # localize: torch only inside the steps that run the CNN;
    # vlm: the model (transformers, torch) is loaded inside the steps that run it;
    # classify: sklearn comes with the fitted model (joblib) or inside train_classifier
    assert loaded_after(f"ethoflow.steps.{module}") == set()


def test_the_probe_sees_torch():
    # the probe itself works: the CNN module needs torch at import (localize and
    # train_localizer import it inside the step; evaluate_stage1 does not need it)
    assert "torch" in loaded_after("ethoflow.localizer")
