"""Steps of ``rules/classify.smk``: stage-2 classifiers, per-frame behavior, evaluation."""

from __future__ import annotations

import json

import joblib
import numpy as np

from .. import classifiers, results, speed_rule
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


def _speed(pose, px_per_cm: float | None, smooth_s: float) -> tuple[np.ndarray, float]:
    return speed_rule.keypoint_speed(pose.keypoints, pose.fps, px_per_cm, smooth_s), pose.fps


def train_kinematic(
    pose: list[str],
    labels: list[str],
    model: str,
    behaviors: list[str],
    px_per_cm: float | None,
    cfg: dict,
) -> None:
    """Tune the speed rule of the kinematic mode on the setup's train split."""
    pose, labels = results.usable(pose, labels)
    speeds, fps = zip(
        *(_speed(results.read_pose(p)[0], px_per_cm, cfg["smooth_s"]) for p in pose), strict=True
    )
    ys = [results.read_labels(lb, behaviors) for lb in labels]
    fitted = speed_rule.fit(list(speeds), ys, list(fps), behaviors, cfg)
    fitted["px_per_cm"] = px_per_cm
    with atomic_path(model) as tmp:
        tmp.write_text(json.dumps(fitted, indent=2))


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
    pose, clips, embeddings, labels = results.usable(pose, clips, embeddings, labels)
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
    behavior: str,
    events: str,
    boris: str,
    nwb: str,
    mode: str,
    behaviors: list[str],
    smoothing_frames: int,
    subject: str,
    session: str,
    video: str = "",
    stage1: str | None = None,
    clips: str | None = None,
    embeddings: str | None = None,
    model: str | None = None,
    icl: str | None = None,
) -> None:
    """Per-frame behavior vector of one session in one classification mode."""
    pose = results.read_pose(pose_h5)[0]  # read once: the kinematic rule and the NWB use it
    fps = float(pose.fps)
    if mode == "kinematic":
        with open(model) as f:
            fitted = json.load(f)
        speed, _ = _speed(pose, fitted["px_per_cm"], fitted["smooth_s"])
        probs = speed_rule.predict(speed, fps, fitted, behaviors)
    elif mode == "pose":
        probs = classifiers.smooth_probs(results.read_stage1(stage1)["p_class"], smoothing_frames)
    else:
        n_frames = pose.n_frames
        if mode == "icl":
            windows = results.read_clip_windows(clips, pose_h5)
            clip_probs = classifiers.icl_probs(results.read_icl_scores(icl))
        else:
            x, windows = _clip_inputs(mode, clips, embeddings, pose_h5)
            clip_probs = classifiers.predict_clips(joblib.load(model), x)
        probs = classifiers.clips_to_frames(clip_probs, windows, n_frames, smoothing_frames)
    results.write_behavior(behavior, probs, fps, behaviors)
    y = probs.argmax(axis=1)
    bouts = classifiers.frames_to_events(y, fps, behaviors)
    results.write_events(bouts, events)
    observation = {"observation": f"{subject}_{session}", "subject": subject, "media": video}
    results.write_boris(bouts, boris, **observation, fps=fps, total_length=len(y) / fps)
    write_nwb(nwb, y, fps, behaviors, subject=subject, session=session, probs=probs, pose=pose)


def evaluate(
    behavior: list[str],
    labels: list[str],
    metrics: str,
    confusion_plot: str,
    behaviors: list[str],
    split: str,
) -> None:
    """Per-class precision, recall, F1 and AP of one mode against the labels."""
    behavior, labels = results.usable(behavior, labels)
    yt, yp, pr = [], [], []
    for b, lb in zip(behavior, labels, strict=True):
        pred = results.read_behavior(b, behaviors)
        yt.append(results.read_labels(lb, behaviors))
        yp.append(pred["labels"])
        pr.append(pred["probs"])
    if not behavior:  # every evaluated session failed: an empty table, the cohort goes on
        yt, yp, pr = [np.zeros(0, int)], [np.zeros(0, int)], [np.zeros((0, len(behaviors) + 1))]
    y_true, y_pred, probs = np.concatenate(yt), np.concatenate(yp), np.concatenate(pr)
    table = per_class_metrics(y_true, y_pred, probs, behaviors).assign(
        evaluated_on=split, n_sessions=len(behavior)
    )
    results.write_table(table, metrics)
    cm = confusion(y_true, y_pred, len(behaviors) + 1)
    plot_confusion(cm, classes(behaviors), confusion_plot)
