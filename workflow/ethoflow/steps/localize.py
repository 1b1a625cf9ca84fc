"""Steps of ``rules/localize.smk``: stage 1 (the pose localizer) and its evaluation."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from .. import results
from ..atomic import atomic_path
from ..errors import InputError
from ..proposals import make_proposals, stage1_metrics, threshold_sweep

log = logging.getLogger("ethoflow")


def train_localizer(
    pose: list[str],
    labels: list[str],
    model: str,
    metrics: str,
    behaviors: list[str],
    cfg: dict,
    px_per_cm: float | None = None,
    threads: int = 1,
) -> None:
    """Choose and train the setup's stage-1 model on its train split."""
    import torch

    from .. import stage1

    torch.set_num_threads(max(1, threads))
    pose, labels = results.usable(pose, labels)
    if not pose:
        raise InputError(None, "no annotated train session for this setup: cannot train stage 1")
    loaded = [results.read_pose(p) for p in pose]
    ys = [results.read_labels(p, behaviors) for p in labels]
    for (_, f, _), y, path in zip(loaded, ys, labels, strict=True):
        if len(f) != len(y):
            raise InputError(path, f"{len(y)} labels for {len(f)} pose frames")
    result = stage1.train(
        [p for p, _, _ in loaded],
        [f for _, f, _ in loaded],
        ys,
        len(behaviors) + 1,
        cfg,
        model,
        px_per_cm=px_per_cm,
    )
    log.info("stage 1: %s chosen, validation macro F1 %s", result["choice"], result["candidates"])
    with atomic_path(metrics) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float))


def localize(
    pose_h5: str, model: str, stage1: str, proposals: str, cfg: dict, threads: int = 1
) -> None:
    """Frame probabilities of the stage-1 model and the action proposals of one session."""
    from .. import stage1 as stage1_model

    fitted = stage1_model.load(model)
    if fitted[0] == "cnn":
        import torch

        torch.set_num_threads(max(1, threads))
    pose, feats, _ = results.read_pose(pose_h5)
    p_action, p_class = stage1_model.predict(fitted, feats, pose)
    fps = float(pose.fps)
    props = make_proposals(p_action, fps, cfg)
    results.write_stage1(stage1, p_action, p_class, fps, model)
    results.write_proposals(props, proposals)
    log.info(
        "%d proposals covering %.1f%% of frames",
        len(props),
        100 * (props.end_frame - props.start_frame).sum() / max(1, len(p_action)),
    )


def evaluate_stage1(
    stage1: list[str],
    proposals: list[str],
    labels: list[str],
    metrics: str,
    sweep: str,
    behaviors: list[str],
    cfg: dict,
) -> None:
    """Localization metrics over the evaluated sessions of a setup (concatenated)."""
    stage1, proposals, labels = results.usable(stage1, proposals, labels)
    pa, pc, ys, props, offset, fps = [], [], [], [], 0, None
    for s1, pr, lb in zip(stage1, proposals, labels, strict=True):
        s = results.read_stage1(s1)
        pa.append(s["p_action"])
        pc.append(s["p_class"])
        fps = s["fps"]
        ys.append(results.read_labels(lb, behaviors))
        df = results.read_proposals(pr)
        props.append(
            df.assign(start_frame=df.start_frame + offset, end_frame=df.end_frame + offset)
        )
        offset += len(pa[-1])
    p_action, p_class, y = np.concatenate(pa), np.concatenate(pc), np.concatenate(ys)
    all_props = pd.concat(props, ignore_index=True)
    tables = stage1_metrics(p_action, p_class, y, all_props, behaviors)
    rows = [table.assign(table=name) for name, table in tables.items()]
    results.write_table(pd.concat(rows, ignore_index=True), metrics)
    thresholds = np.round(np.linspace(0.1, 0.9, 9), 2)
    results.write_table(threshold_sweep(p_action, y, fps, cfg, thresholds), sweep)
