"""Clip classifiers (stage 2) and per-frame behavior vectors.

Modes:
- ``pose``: the stage-1 class head per frame (the baseline to beat);
- ``linear``: standardised embeddings -> class-balanced logistic regression;
- ``pose+vlm``: embeddings and clip pose features, each block standardised (embeddings
  PCA-reduced so they do not drown the pose block), -> logistic regression;
- ``knn``: few-shot: ``knn_shots`` labelled clips per class; standardise -> PCA -> LDA (the
  directions that separate the labelled classes) -> cosine k-nearest neighbours. Raw
  high-dimensional embeddings make distances meaningless (most dimensions are noise for
  the task); the reduction is what makes few-shot KNN work;
- ``icl``: no training: the VLM's label log-likelihoods, softmaxed.

Frames inside clips get the mean probabilities of the clips covering them; frames outside
every clip are ``other``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import defaults

MODES = ("pose", "linear", "pose+vlm", "knn", "icl")
DEFAULTS = defaults("classifier")  # the config schema's `classifier` defaults


def clip_labels(labels: np.ndarray, windows: pd.DataFrame, min_fraction: float = 0.5) -> np.ndarray:
    """Majority label of each clip's labelled frames; -1 if under ``min_fraction`` labelled."""
    labels = np.asarray(labels)
    out = np.full(len(windows), -1, np.int64)
    for i, (s, e) in enumerate(zip(windows.start_frame, windows.end_frame, strict=True)):
        y = labels[max(0, int(s)) : int(e)]
        y = y[y >= 0]
        if len(y) and len(y) >= min_fraction * (int(e) - int(s)):
            out[i] = np.bincount(y).argmax()
    return out


def clip_pose_features(features: np.ndarray, windows: pd.DataFrame) -> np.ndarray:
    """Mean and standard deviation of the pose features over each clip: ``[N, 2F]``."""
    f = np.asarray(features, np.float32)
    rows = []
    for s, e in zip(windows.start_frame, windows.end_frame, strict=True):
        seg = f[max(0, int(s)) : max(int(s) + 1, int(e))]
        rows.append(np.r_[seg.mean(0), seg.std(0)])
    return np.asarray(rows, np.float32).reshape(len(windows), 2 * f.shape[1])


class FusionFeatures:
    """Standardise each block, PCA-reduce the embeddings, concatenate."""

    def __init__(self, emb_dim: int = 32):
        self.emb_dim = emb_dim

    def fit(self, emb: np.ndarray, pose: np.ndarray) -> FusionFeatures:
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        self.es = StandardScaler().fit(emb)
        k = max(1, min(self.emb_dim, emb.shape[0] - 1, emb.shape[1]))
        self.pca = PCA(n_components=k, random_state=0).fit(self.es.transform(emb))
        self.ps = StandardScaler().fit(pose)
        return self

    def transform(self, emb: np.ndarray, pose: np.ndarray) -> np.ndarray:
        e = self.pca.transform(self.es.transform(emb))
        e /= np.sqrt(max(1, e.shape[1]))
        p = self.ps.transform(pose) / np.sqrt(max(1, pose.shape[1]))
        return np.hstack([e, p])


def _few_shot(x: np.ndarray, y: np.ndarray, shots: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.extend(rng.choice(idx, size=min(shots, len(idx)), replace=False).tolist())
    return np.sort(np.asarray(keep, int))


def knn_pipeline(n_samples: int, n_classes_seen: int, dim: int, k: int):
    """standardise -> PCA (<= dim) -> LDA (<= classes-1) -> cosine KNN."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler(), PCA(n_components=max(1, min(dim, n_samples - 1)), random_state=0)]
    if n_classes_seen > 2:
        steps.append(LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto"))
    steps.append(KNeighborsClassifier(n_neighbors=min(k, n_samples), metric="cosine"))
    return make_pipeline(*steps)


def _stack(xs: list[dict], key: str) -> np.ndarray:
    return np.concatenate([x[key] for x in xs]) if xs else np.zeros((0, 0))


def train_classifier(
    mode: str, xs: list[dict], ys: list[np.ndarray], n_classes: int, cfg: dict, seed: int = 0
) -> dict:
    """Fit a clip classifier. ``xs``: per session ``{"embeddings": [N,D], "pose": [N,P]}``."""
    # sklearn is imported here, not at module top: the jobs that only need clip_labels or
    # frames_to_events (vlm, export) would pay ~1.5 s of start-up for it
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if mode not in ("linear", "pose+vlm", "knn"):
        raise ValueError(f"mode {mode!r} needs no training or is unknown")
    cfg = {**DEFAULTS, **cfg}
    y = np.concatenate(ys) if ys else np.zeros(0, int)
    keep = y >= 0
    y = y[keep]
    if len(y) == 0:
        raise ValueError("no labelled clip in the train split: cannot train a clip classifier")
    emb = _stack(xs, "embeddings")[keep].astype(np.float64)
    fitted: dict = {"mode": mode, "n_classes": n_classes, "classes": np.unique(y)}
    if len(fitted["classes"]) == 1:  # a single class seen: predict it everywhere
        fitted["constant"] = int(fitted["classes"][0])
        return fitted
    if mode == "linear":
        model = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced", C=0.5)
        )
        model.fit(emb, y)
    elif mode == "pose+vlm":
        pose = _stack(xs, "pose")[keep].astype(np.float64)
        fusion = FusionFeatures(int(cfg["fusion_emb_dim"])).fit(emb, pose)
        lr = LogisticRegression(max_iter=3000, class_weight="balanced", C=0.5)
        lr.fit(fusion.transform(emb, pose), y)
        model = (fusion, lr)
    else:
        idx = _few_shot(emb, y, int(cfg["knn_shots"]), seed)
        fitted["shots"] = idx.size
        model = knn_pipeline(
            idx.size, len(np.unique(y[idx])), int(cfg["knn_dim"]), int(cfg["knn_k"])
        )
        model.fit(emb[idx], y[idx])
    fitted["model"] = model
    return fitted


def predict_clips(fitted: dict, x: dict) -> np.ndarray:
    """Class probabilities ``[N, n_classes]`` (classes unseen in training get 0)."""
    n = len(x["embeddings"])
    out = np.zeros((n, fitted["n_classes"]), np.float64)
    if n == 0:
        return out
    if "constant" in fitted:
        out[:, fitted["constant"]] = 1.0
        return out
    emb = np.asarray(x["embeddings"], np.float64)
    if fitted["mode"] == "pose+vlm":
        fusion, lr = fitted["model"]
        p = lr.predict_proba(fusion.transform(emb, np.asarray(x["pose"], np.float64)))
        classes = lr.classes_
    else:
        p = fitted["model"].predict_proba(emb)
        classes = fitted["model"].classes_
    out[:, classes] = p
    return out


def icl_probs(scores: np.ndarray) -> np.ndarray:
    """Softmax over the label log-likelihoods of each clip."""
    s = np.asarray(scores, np.float64)
    if s.size == 0:
        return s
    s = s - s.max(1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(1, keepdims=True)


def smooth_probs(probs: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average of per-frame probabilities over ``n`` frames."""
    p = np.asarray(probs, np.float64)
    if n <= 1 or len(p) < 2:
        return p
    pad = np.pad(p, ((n // 2, n - 1 - n // 2), (0, 0)), mode="edge")
    c = np.cumsum(np.vstack([np.zeros((1, p.shape[1])), pad]), axis=0)
    out = (c[n:] - c[:-n]) / n
    return out / out.sum(1, keepdims=True)


def clips_to_frames(
    clip_probs: np.ndarray, windows: pd.DataFrame, n_frames: int, smoothing_frames: int = 0
) -> np.ndarray:
    """Per-frame probabilities: mean over the clips covering a frame, ``other`` elsewhere."""
    n_classes = clip_probs.shape[1] if clip_probs.ndim == 2 else 1
    acc = np.zeros((n_frames + 1, n_classes))
    cnt = np.zeros(n_frames + 1)
    for p, s, e in zip(clip_probs, windows.start_frame, windows.end_frame, strict=True):
        s, e = max(0, int(s)), min(n_frames, int(e))
        acc[s] += p
        acc[e] -= p
        cnt[s] += 1
        cnt[e] -= 1
    acc = np.cumsum(acc, 0)[:n_frames]
    cnt = np.cumsum(cnt)[:n_frames]
    out = np.zeros((n_frames, n_classes))
    inside = cnt > 0.5
    out[inside] = acc[inside] / cnt[inside, None]
    out[~inside, 0] = 1.0
    return smooth_probs(out, smoothing_frames)


def frames_to_events(labels: np.ndarray, fps: float, behaviors: list[str]) -> pd.DataFrame:
    """Bouts of each behavior (``other`` excluded): ``behavior, start_s, stop_s``."""
    y = np.asarray(labels)
    rows = []
    if len(y):
        change = np.flatnonzero(np.diff(y)) + 1
        starts = np.r_[0, change]
        ends = np.r_[change, len(y)]
        for s, e in zip(starts, ends, strict=True):
            if y[s] > 0:
                rows.append((behaviors[y[s] - 1], s / fps, e / fps))
    return pd.DataFrame(rows, columns=["behavior", "start_s", "stop_s"])


def clip_inputs(
    mode: str, embeddings: np.ndarray, features: np.ndarray, windows: pd.DataFrame
) -> dict:
    """The inputs of a stage-2 classifier for one session's clips: the VLM embeddings, and
    for ``pose+vlm`` the pose features pooled over each clip window."""
    if mode == "pose+vlm":
        return {"embeddings": embeddings, "pose": clip_pose_features(features, windows)}
    return {"embeddings": embeddings}
