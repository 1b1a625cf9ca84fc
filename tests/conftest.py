"""Shared fixtures: the tiny offline Qwen2.5-VL, built once per test session; the SLURM
profile installed as the README's set-up step does it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory):
    from ethoflow.tiny import build_tiny_qwen25vl

    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny-qwen2.5-vl"))


@pytest.fixture(scope="session")
def tiny_vlm(tiny_vlm_dir):
    import torch

    from ethoflow.vlm import load_vlm

    torch.manual_seed(0)
    return load_vlm(str(tiny_vlm_dir))


@pytest.fixture
def profile_env(tmp_path):
    """Environment of a user who ran `ethoflow install-profile` (into a temporary
    XDG_CONFIG_HOME) and exported SBATCH_ACCOUNT=<account>."""

    def make(account: str) -> dict:
        xdg = tmp_path / "xdg"
        env = dict(os.environ, XDG_CONFIG_HOME=str(xdg), SBATCH_ACCOUNT=account)
        env.pop("SLURM_ACCOUNT", None)
        inst = subprocess.run(
            [sys.executable, "-m", "ethoflow.cli", "install-profile"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert inst.returncode == 0, inst.stderr
        assert (xdg / "snakemake" / "slurm" / "config.yaml").is_file()
        return env

    return make


@pytest.fixture(scope="session")
def freezing_recording():
    """The real BehaviorDEPOT freezing recording, repaired as ingest does it: ``(pose, labels)``
    with labels 1 = freezing, 0 = other, 6,000 frames at 50 fps."""
    from pathlib import Path

    import numpy as np
    import pandas as pd
    import yaml

    from ethoflow import pose_io, repair

    repo = Path(__file__).resolve().parents[1]
    data = repo / "tests/data/behaviordepot_freezing"
    setup = yaml.safe_load((repo / "config/config.yaml").read_text())["setups"]["fearcond"]
    p = pose_io.load_pose(
        data / "demo1_tracking.csv", fps=50, skeleton=setup["skeleton"], animals=setup["animals"]
    )
    p, _ = repair.repair_pose(p, 0.4, 15)
    y = (pd.read_csv(data / "demo1_freezing_labels.csv").behavior == "freezing").to_numpy()
    return p, y.astype(np.int64)
