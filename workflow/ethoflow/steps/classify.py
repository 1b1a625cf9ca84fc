"""Steps of ``rules/classify.smk``: stage-2 classifiers, per-frame behavior, evaluation."""

from __future__ import annotations

import joblib
import numpy as np

from .. import classifiers, results
from ..atomic import atomic_path
from ..export import write_nwb
from ..metrics import confusion, per_class_metrics, plot_confusion
from ..vocab import classes


def _clip_inputs(mode: str, clips: str, embeddings: str, pose_h5: str):
    windows = results.read_clip_windows(clips, pose_h5)
    x = classifiers.clip_inputs(
        mode,
        results.read_embeddings(embeddings)["embeddings"],
        results.read_features(pose_h5) if mode == "pose+vlm" else None,
        windows,
    )
    return x, windows


def train_classifier(
    pose: list[str],
    clips: list[str],
    embeddings: list[str],
    labels: list[str],
    model: str,
    mode: str,
    behaviors: list[str],
    cfg: dict,
) -> None:
    """Fit a stage-2 clip classifier on the setup's train split."""
    xs, ys = [], []
    for ph, c, e, lb in zip(pose, clips, embeddings, labels, strict=True):
        x, windows = _clip_inputs(mode, c, e, ph)
        xs.append(x)
        ys.append(classifiers.clip_labels(results.read_labels(lb, behaviors), windows))
    fitted = classifiers.train_classifier(mode, xs, ys, len(behaviors) + 1, cfg, int(cfg["seed"]))
    with atomic_path(model) as tmp:
        joblib.dump(fitted, tmp)


def classify(
    pose_h5: str,
    stage1: str,
    behavior: str,
    events: str,
    nwb: str,
    mode: str,
    behaviors: list[str],
    smoothing_frames: int,
    subject: str,
    session: str,
    clips: str | None = None,
    embeddings: str | None = None,
    model: str | None = None,
    icl: str | None = None,
) -> None:
    """Per-frame behavior vector of one session in one classification mode."""
    fps = float(results.read_pose_attrs(pose_h5)["fps"])
    p_class = results.read_stage1(stage1)["p_class"]
    if mode == "pose":
        probs = classifiers.smooth_probs(p_class, smoothing_frames)
    else:
        if mode == "icl":
            windows = results.read_clip_windows(clips, pose_h5)
            clip_probs = classifiers.icl_probs(results.read_icl_scores(icl))
        else:
            x, windows = _clip_inputs(mode, clips, embeddings, pose_h5)
            clip_probs = classifiers.predict_clips(joblib.load(model), x)
        probs = classifiers.clips_to_frames(clip_probs, windows, len(p_class), smoothing_frames)
    results.write_behavior(behavior, probs, fps, behaviors)
    y = probs.argmax(axis=1)
    results.write_events(classifiers.frames_to_events(y, fps, behaviors), events)
    write_nwb(nwb, y, fps, behaviors, subject=subject, session=session, probs=probs)


def evaluate(
    behavior: list[str],
    labels: list[str],
    metrics: str,
    confusion_plot: str,
    behaviors: list[str],
    split: str,
) -> None:
    """Per-class precision, recall, F1 and AP of one mode against the labels."""
    yt, yp, pr = [], [], []
    for b, lb in zip(behavior, labels, strict=True):
        pred = results.read_behavior(b, behaviors)
        yt.append(results.read_labels(lb, behaviors))
        yp.append(pred["labels"])
        pr.append(pred["probs"])
    y_true, y_pred, probs = np.concatenate(yt), np.concatenate(yp), np.concatenate(pr)
    table = per_class_metrics(y_true, y_pred, probs, behaviors).assign(
        evaluated_on=split, n_sessions=len(behavior)
    )
    results.write_table(table, metrics)
    cm = confusion(y_true, y_pred, len(behaviors) + 1)
    plot_confusion(cm, classes(behaviors), confusion_plot)
