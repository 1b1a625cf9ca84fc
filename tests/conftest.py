"""Shared fixtures: the tiny offline Qwen2.5-VL, built once per test session."""

from __future__ import annotations

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
