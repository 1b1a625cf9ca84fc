"""Stage 1 of a setup: the model chosen by grouped validation among the candidates.

Candidates (config ``localizer.candidates``):

- ``gbt``: gradient-boosted trees (scikit-learn's HistGradientBoosting) on the multi-scale
  window features of ``window_features`` (time in seconds, lengths in body sizes or cm),
  computed after resampling every session to one model rate (``model_fps``, 10 Hz); its
  probabilities are interpolated back onto the session's own frames;
- ``cnn``: the two-headed dilated temporal CNN of ``localizer`` on the ingest features.

Validation: with two or more labelled recordings (train sessions grouped by their pose
file), leave one recording out, up to ``max_folds`` folds; with one, the last
``holdout_fraction`` of every session (one contiguous block) is held out. Each candidate is
scored by macro F1 over the behaviors on the held-out frames. The winner is refitted on all
the train data (gbt) or kept as fitted on the first fold's fit part (cnn, which holds out
its own early-stopping blocks). Candidates, scores and the choice go in the training log.

The checkpoint (``localizer.pt``) is the CNN's torch archive, or for ``gbt`` a pickled dict
(``kind``, the fitted trees, the config); :func:`load` tells them apart by the zip
signature and :func:`predict` serves both.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .config import defaults
from .window_features import window_features

DEFAULTS = defaults("localizer")


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the behaviors (classes 1..C) present in ``y`` or ``pred``."""
    out = []
    for c in range(1, n_classes):
        t, p = y == c, pred == c
        if t.any() or p.any():
            out.append(2 * np.sum(t & p) / (t.sum() + p.sum()))
    return float(np.mean(out)) if out else float("nan")


def folds(groups: list[str], lengths: list[int], cfg: dict) -> list[tuple[list, list]]:
    """``(fit, val)`` pairs; each is a list of ``(session, start, end)`` frame ranges."""
    recordings = list(dict.fromkeys(groups))
    if len(recordings) >= 2:
        out = []
        for rec in recordings[: int(cfg["max_folds"])]:
            fit = [
                (i, 0, n) for i, (g, n) in enumerate(zip(groups, lengths, strict=True)) if g != rec
            ]
            val = [
                (i, 0, n) for i, (g, n) in enumerate(zip(groups, lengths, strict=True)) if g == rec
            ]
            out.append((fit, val))
        return out
    cut = [int(round(n * (1 - cfg["holdout_fraction"]))) for n in lengths]
    return [
        (
            [(i, 0, c) for i, c in enumerate(cut)],
            [(i, c, n) for i, (c, n) in enumerate(zip(cut, lengths, strict=True)) if c < n],
        )
    ]


def _take(arrays: list[np.ndarray], ranges: list) -> list[np.ndarray]:
    return [arrays[i][s:e] for i, s, e in ranges]


class GBT:
    """Gradient-boosted trees on window features; ``p_class`` over all C+1 classes."""

    def __init__(self, n_classes: int, cfg: dict, seed: int):
        self.n_classes, self.cfg, self.seed = n_classes, cfg, seed

    def fit(self, xs: list[np.ndarray], ys: list[np.ndarray]) -> GBT:
        """Fit on model-rate features and labels of the sessions."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        x, y = np.concatenate(xs), np.concatenate(ys)
        self.classes_ = np.unique(y)
        self.model = None
        if len(self.classes_) > 1:
            self.model = HistGradientBoostingClassifier(
                max_iter=int(self.cfg["gbt_iterations"]),
                learning_rate=0.05,
                max_leaf_nodes=15,
                l2_regularization=1.0,
                class_weight="balanced",
                random_state=self.seed,
            ).fit(x, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.zeros((len(x), self.n_classes), np.float32)
        if self.model is None:
            p[:, int(self.classes_[0]) if len(self.classes_) else 0] = 1.0
            return p
        p[:, self.model.classes_] = self.model.predict_proba(x)
        return p


def model_times(n_frames: int, fps: float, model_fps: float) -> np.ndarray:
    """Session frame positions (fractional) of the model-rate samples of a session."""
    n = max(1, int(np.floor((n_frames - 1) * model_fps / fps)) + 1) if n_frames else 0
    return np.arange(n) * fps / model_fps


def to_model_rate(pose, model_fps: float):
    """The pose resampled to ``model_fps`` (linear interpolation of filled keypoints)."""
    import dataclasses

    from .kinematic import fill_nan

    pos = model_times(pose.n_frames, pose.fps, model_fps)
    kp = fill_nan(np.asarray(pose.keypoints, np.float64))
    flat = kp.reshape(len(kp), -1)
    frames = np.arange(len(kp))
    out = np.stack([np.interp(pos, frames, c) for c in flat.T], 1) if len(pos) else flat[:0]
    return dataclasses.replace(
        pose,
        keypoints=out.reshape(len(pos), *kp.shape[1:]).astype(np.float32),
        confidence=np.ones((len(pos), *kp.shape[1:3]), np.float32),
        fps=float(model_fps),
    )


def to_session_frames(p: np.ndarray, n_frames: int, fps: float, model_fps: float) -> np.ndarray:
    """Model-rate probabilities ``[M, C]`` mapped back onto the session's own frames."""
    pos = model_times(n_frames, fps, model_fps)
    frames = np.arange(n_frames)
    if not len(pos):
        return np.zeros((n_frames, p.shape[1]), np.float32)
    return np.stack([np.interp(frames, pos, c) for c in p.T], 1).astype(np.float32)


def gbt_features(pose, cfg: dict, px_per_cm: float | None) -> np.ndarray:
    """Window features of a session at the model rate (``cfg["model_fps"]``)."""
    m = to_model_rate(pose, float(cfg["model_fps"]))
    return window_features(
        m.keypoints,
        m.fps,
        m.keypoint_names,
        m.animal_ids,
        px_per_cm=px_per_cm,
        windows_s=tuple(cfg["windows_s"]),
        standardize=bool(cfg["standardize"]),
    )[0]


def labels_at_model_rate(y: np.ndarray, fps: float, model_fps: float) -> np.ndarray:
    """The label of the nearest session frame of every model-rate sample."""
    pos = model_times(len(y), fps, model_fps)
    return np.asarray(y)[np.minimum(np.round(pos).astype(int), max(len(y) - 1, 0))]


def train(
    poses: list,
    features: list[np.ndarray],
    labels: list[np.ndarray],
    n_classes: int,
    cfg: dict,
    out_path: str | os.PathLike,
    px_per_cm: float | None = None,
) -> dict:
    """Choose and fit the setup's stage-1 model; write the checkpoint; return the log."""
    from . import localizer

    cfg = {**DEFAULTS, **cfg}
    seed = int(cfg["seed"])
    ys = [np.asarray(y, np.int64) for y in labels]
    fps = [float(p.fps) for p in poses]
    groups = [str(p.source_path) for p in poses]
    splits = folds(groups, [len(y) for y in ys], cfg)
    log = {"validation": "leave one recording out" if len(set(groups)) > 1 else "last block"}
    log["folds"] = len(splits)
    scores, cnn_first = {}, None
    wf = None
    mf = float(cfg["model_fps"])
    ym = [labels_at_model_rate(y, f, mf) for y, f in zip(ys, fps, strict=True)]

    def _at_model(ranges):
        """Session-frame ranges as model-rate sample ranges."""
        out = []
        for i, s, e in ranges:
            a = int(np.ceil(s * mf / fps[i] - 1e-9))
            b = int(np.ceil(e * mf / fps[i] - 1e-9))
            out.append((i, a, min(b, len(ym[i]))))
        return out

    for cand in cfg["candidates"]:
        f1s = []
        for k, (fit, val) in enumerate(splits):
            yv = np.concatenate(_take(ys, val))
            if cand == "gbt":
                wf = wf or [gbt_features(p, cfg, px_per_cm) for p in poses]
                mfit = _at_model(fit)
                m = GBT(n_classes, cfg, seed).fit(_take(wf, mfit), _take(ym, mfit))
                pred = np.concatenate(
                    [
                        to_session_frames(m.predict_proba(wf[i][a:b]), e - s, fps[i], mf).argmax(1)
                        for (i, s, e), (_, a, b) in zip(val, _at_model(val), strict=True)
                    ]
                )
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    ck = Path(tmp) / "cnn.pt"
                    res = localizer.train(
                        _take(features, fit), _take(ys, fit), n_classes, cfg, seed, ck, False
                    )
                    net = localizer.load(ck)
                    if k == 0:
                        cnn_first = (ck.read_bytes(), res)
                pred = np.concatenate(
                    [localizer.predict_frames(net, x)[1].argmax(1) for x in _take(features, val)]
                )
            f1s.append(macro_f1(yv, pred, n_classes))
        scores[cand] = float(np.nanmean(f1s)) if np.isfinite(f1s).any() else float("nan")
    ranked = sorted(scores, key=lambda c: -np.nan_to_num(scores[c], nan=-1.0))
    choice = ranked[0]
    log.update({"candidates": scores, "choice": choice})
    if choice == "gbt":
        wf = wf or [gbt_features(p, cfg, px_per_cm) for p in poses]
        m = GBT(n_classes, cfg, seed).fit(wf, ym)
        ckpt = {"kind": "gbt", "model": pickle.dumps(m), "cfg": cfg, "px_per_cm": px_per_cm}
        with atomic_path(out_path) as tmp:  # a plain pickle: predicting needs no torch
            tmp.write_bytes(pickle.dumps(ckpt, protocol=5))
    else:
        data, res = cnn_first
        with atomic_path(out_path) as tmp:
            Path(tmp).write_bytes(data)
        log["cnn"] = {k: v for k, v in res.items() if k != "history"}
        log["cnn_history"] = res["history"]
    return log


def load(path: str | os.PathLike):
    """``("gbt", GBT, ckpt)`` or ``("cnn", TemporalCNN, None)``; torch is imported only for
    a CNN checkpoint (a zip archive), so a gbt job starts without it."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK":
        with open(path, "rb") as f:
            ckpt = pickle.load(f)
        return "gbt", pickle.loads(ckpt["model"]), ckpt
    from . import localizer

    return "cnn", localizer.load(path), None


def predict(model, features: np.ndarray, pose) -> tuple[np.ndarray, np.ndarray]:
    """``p_action [T]``, ``p_class [T, C+1]`` of one session."""
    kind, net, ckpt = model
    if kind == "gbt":
        mf = float(ckpt["cfg"]["model_fps"])
        p = net.predict_proba(gbt_features(pose, ckpt["cfg"], ckpt["px_per_cm"]))
        p = to_session_frames(p, pose.n_frames, pose.fps, mf)
        p /= np.maximum(p.sum(1, keepdims=True), 1e-9)
        return (1.0 - p[:, 0]).astype(np.float32), p
    from . import localizer

    return localizer.predict_frames(net, features)
