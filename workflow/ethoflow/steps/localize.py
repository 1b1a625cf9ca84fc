"""Steps of ``rules/localize.smk``: stage 1 (the pose localizer) and its evaluation."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from .. import results
from ..atomic import atomic_path
from ..errors import InputError
from ..proposals import stage1_metrics, threshold_sweep

log = logging.getLogger("ethoflow")


def _px_per_cm(pose_h5: str, fallback) -> float | None:
    """The session's px_per_cm (pose h5 attr, NaN when unknown), else the setup's."""
    value = results.read_pose_attrs(pose_h5).get("px_per_cm")
    for v in (value, fallback):
        try:
            if v is not None and np.isfinite(float(v)) and float(v) > 0:
                return float(v)
        except (TypeError, ValueError):
            continue
    return None


def train_localizer(
    pose: list[str],
    labels: list[str],
    model: str,
    metrics: str,
    behaviors: list[str],
    cfg: dict,
    px_per_cm: float | None = None,
    threads: int = 1,
    proposals: dict | None = None,
    head: str | None = None,
    tail: str | None = None,
) -> None:
    """Choose and train the setup's stage-1 model on its train split."""
    from .. import stage1

    if "cnn" in cfg.get("candidates", ["cnn"]):
        import torch

        torch.set_num_threads(max(1, threads))
    if not pose:
        raise InputError(None, "no annotated train session for this setup: cannot train stage 1")
    loaded = [results.read_pose(p)[0] for p in pose]
    ys = [results.read_labels(p, behaviors) for p in labels]
    for p, y, path in zip(loaded, ys, labels, strict=True):
        if p.n_frames != len(y):
            raise InputError(path, f"{len(y)} labels for {p.n_frames} pose frames")
    result = stage1.train(
        loaded,
        ys,
        len(behaviors) + 1,
        cfg,
        model,
        px_per_cm=[_px_per_cm(p, px_per_cm) for p in pose],
        head=head,
        tail=tail,
        proposals_cfg=proposals,
        behaviors=behaviors,
    )
    log.info(
        "stage 1: %s chosen (%s), validation macro F1 %s",
        result["choice"],
        result["validation"],
        result["candidates"],
    )
    if "postprocess" in result:
        log.info("stage 1 post-processing: %s", result["postprocess"]["rules"])
    if "proposals" in result:
        pr = result["proposals"]
        log.info(
            "proposal thresholds %s: validation recall %.3f at coverage %.3f",
            pr["behaviors"],
            pr["recall"],
            pr["coverage"],
        )
    with atomic_path(metrics) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float))


def localize(
    pose_h5: str,
    model: str,
    stage1: str,
    proposals: str,
    cfg: dict,
    threads: int = 1,
    px_per_cm: float | None = None,
) -> None:
    """Frame probabilities of the stage-1 model and the action proposals of one session,
    at the session's own frames."""
    from .. import stage1 as stage1_model

    fitted = stage1_model.load(model)
    if fitted.kind == "cnn":
        import torch

        torch.set_num_threads(max(1, threads))
    pose = results.read_pose(pose_h5)[0]
    fps = float(pose.fps)
    p_raw = stage1_model.predict_raw(fitted, pose, _px_per_cm(pose_h5, px_per_cm))
    p_action = (1.0 - p_raw[:, 0]).astype(np.float32)
    p_class = stage1_model.postprocess(fitted, p_raw, fps)
    props = stage1_model.proposals(fitted, p_raw, fps, cfg)
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
