"""Stage 1 of a setup: the model chosen by grouped validation among the candidates.

Time is in seconds and lengths in a rig-independent unit throughout. Every session is
resampled to one model rate (``model_fps``, 10 Hz) and described by the multi-scale window
features of ``window_features``; lengths are in cm when the session's ``px_per_cm`` is known
and every train session has one, else in body sizes (``length_units``). Whatever the model,
its probabilities are interpolated back onto the session's own frames.

Candidates (config ``localizer.candidates``):

- ``gbt``: gradient-boosted trees (scikit-learn's HistGradientBoosting) on the window
  features, trained on samples at ``gbt_phases`` (3) offsets of the model-rate grid (the
  same seconds-based features, three times the samples of a short recording);
- ``cnn``: the two-headed dilated temporal CNN of ``localizer`` (±``context_s`` seconds) on
  the base signals of the window features, trained on augmented copies of the recordings
  (``localizer.augment``: time stretch, scale, rotation, mirroring, keypoint noise/dropout).

Validation: with two or more labelled recordings (train sessions grouped by their pose
file), leave one recording out, up to ``max_folds`` folds; with one, ``time_folds`` (3)
contiguous time blocks of every session, each held out in turn (the fit part keeps a gap of
half the longest feature window from it). Each candidate is scored by macro F1 over the
behaviors on its pooled out-of-fold predictions; a later candidate replaces an earlier one
only when it scores more than ``choice_margin`` (0.02) higher. The winner's out-of-fold
predictions then tune

- per behavior a gap fill and a minimum bout (grids ``gap_grid_s``, ``min_bout_grid_s``),
  applied at inference (``postprocess``);
- per behavior the proposal threshold reaching ``proposals.target_recall`` of its frames at
  the least coverage (``proposals.tune_thresholds``), with the recall-vs-coverage curves;

and the winner is refitted on all the train data. Candidates, scores, the choice, the
post-processing and the thresholds go in the training log and the checkpoint.

The checkpoint (``localizer.pt``) is a pickled dict: ``kind``, ``model`` (the pickled trees or
the CNN's torch archive bytes), ``cfg``, ``units``, ``head``/``tail``, ``postprocess``,
``proposals``. :func:`load` imports torch only for a CNN.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .config import defaults
from .kinematic import fill_nan
from .speed_rule import body_size
from .window_features import n_base, window_features

DEFAULTS = defaults("localizer")


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the behaviors (classes 1..C) present in ``y`` or ``pred``."""
    out = []
    for c in range(1, n_classes):
        t, p = y == c, pred == c
        if t.any() or p.any():
            out.append(2 * np.sum(t & p) / (t.sum() + p.sum()))
    return float(np.mean(out)) if out else float("nan")


def folds(
    groups: list[str], lengths: list[int], cfg: dict, gaps: list[int] | None = None
) -> list[tuple[list, list]]:
    """``(fit, val)`` pairs; each is a list of ``(session, start, end)`` frame ranges.

    Two or more recordings: leave one out (up to ``max_folds``). Otherwise ``time_folds``
    contiguous blocks of every session, block ``k`` of every session validating fold ``k``;
    the fit part leaves ``gaps[i]`` frames on each side of the held-out block."""
    recordings = list(dict.fromkeys(groups))
    pairs = list(zip(groups, lengths, strict=True))
    if len(recordings) >= 2:
        return [
            (
                [(i, 0, n) for i, (g, n) in enumerate(pairs) if g != rec],
                [(i, 0, n) for i, (g, n) in enumerate(pairs) if g == rec],
            )
            for rec in recordings[: int(cfg["max_folds"])]
        ]
    k = int(cfg["time_folds"])
    out = []
    for b in range(k):
        fit, val = [], []
        for i, n in enumerate(lengths):
            gap = gaps[i] if gaps else 0
            lo, hi = round(n * b / k), round(n * (b + 1) / k)
            if hi > lo:
                val.append((i, lo, hi))
            if lo - gap > 0:
                fit.append((i, 0, lo - gap))
            if hi + gap < n:
                fit.append((i, hi + gap, n))
        out.append((fit, val))
    return out


# --- time: the model rate and back --------------------------------------------------------


def model_times(n_frames: int, fps: float, model_fps: float, phase: float = 0.0) -> np.ndarray:
    """Session frame positions (fractional) of the model-rate samples of a session: times
    ``(k + phase) / model_fps`` seconds, ``k = 0, 1, ...``, inside the session."""
    if not n_frames:
        return np.zeros(0)
    n = max(1, int(np.floor(((n_frames - 1) * model_fps / fps) - phase + 1e-9)) + 1)
    return (np.arange(n) + phase) * fps / model_fps


def resample_keypoints(
    keypoints: np.ndarray, fps: float, model_fps: float, phase: float = 0.0
) -> np.ndarray:
    """Keypoints ``[T, ...]`` at the model rate (linear interpolation of filled keypoints)."""
    pos = np.minimum(model_times(len(keypoints), fps, model_fps, phase), max(len(keypoints) - 1, 0))
    kp = fill_nan(np.asarray(keypoints, np.float64))
    flat = kp.reshape(len(kp), -1)
    if not len(pos):
        return flat[:0].reshape(0, *kp.shape[1:])
    lo = np.minimum(np.floor(pos).astype(int), len(kp) - 1)
    hi = np.minimum(lo + 1, len(kp) - 1)
    w = (pos - lo)[:, None]
    out = flat[lo] * (1 - w) + flat[hi] * w
    return out.reshape(len(pos), *kp.shape[1:])


def to_model_rate(pose, model_fps: float):
    """The pose resampled to ``model_fps``."""
    kp = resample_keypoints(pose.keypoints, pose.fps, model_fps).astype(np.float32)
    return dataclasses.replace(
        pose,
        keypoints=kp,
        confidence=np.ones(kp.shape[:3], np.float32),
        fps=float(model_fps),
    )


def to_session_frames(p: np.ndarray, n_frames: int, fps: float, model_fps: float) -> np.ndarray:
    """Model-rate probabilities ``[M, C]`` mapped back onto the session's own frames."""
    pos = model_times(n_frames, fps, model_fps)
    if not len(pos):
        return np.zeros((n_frames, p.shape[1]), np.float32)
    frames = np.arange(n_frames, dtype=np.float64)
    k = np.clip(np.searchsorted(pos, frames, side="right") - 1, 0, len(pos) - 1)
    k1 = np.minimum(k + 1, len(pos) - 1)
    span = np.where(k1 > k, pos[k1] - pos[k], 1.0)
    w = np.clip((frames - pos[k]) / span, 0, 1)[:, None]
    return (p[k] * (1 - w) + p[k1] * w).astype(np.float32)


def labels_at_model_rate(
    y: np.ndarray, fps: float, model_fps: float, phase: float = 0.0
) -> np.ndarray:
    """The label of the nearest session frame of every model-rate sample."""
    pos = model_times(len(y), fps, model_fps, phase)
    return np.asarray(y)[np.minimum(np.round(pos).astype(int), max(len(y) - 1, 0))]


# --- scale -------------------------------------------------------------------------------


def _finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) and x > 0 else None


def length_units(keypoints: list[np.ndarray], px_per_cm: list) -> dict:
    """The setup's length unit: ``{"unit": "cm", "body_cm": ...}`` when every train session
    has a px_per_cm (``body_cm``: the median body size in cm, to convert sessions without
    one), else ``{"unit": "body"}`` (body sizes, ``speed_rule.body_size``)."""
    px = [_finite(v) for v in px_per_cm]
    if px and all(v is not None for v in px):
        sizes = [body_size(k) / v for k, v in zip(keypoints, px, strict=True)]
        return {"unit": "cm", "body_cm": float(np.median(sizes))}
    return {"unit": "body"}


def px_per_unit(keypoints: np.ndarray, px_per_cm, units: dict) -> float:
    """Pixels per length unit of one session (see :func:`length_units`)."""
    if units["unit"] == "cm":
        px = _finite(px_per_cm)
        return px if px is not None else body_size(keypoints) / units["body_cm"]
    return body_size(keypoints)


def session_features(
    pose,
    cfg: dict,
    unit_px: float,
    head: str | None = None,
    tail: str | None = None,
    phase: float = 0.0,
) -> tuple[np.ndarray, int]:
    """Window features of a session at the model rate, and how many are base signals."""
    mf = float(cfg["model_fps"])
    kp = resample_keypoints(pose.keypoints, pose.fps, mf, phase)
    x, names = window_features(
        kp,
        mf,
        pose.keypoint_names,
        pose.animal_ids,
        px_per_unit=unit_px,
        windows_s=tuple(cfg["windows_s"]),
        standardize=bool(cfg["standardize_per_session"]),
        head=head,
        tail=tail,
    )
    return x, n_base(names, cfg["windows_s"])


# --- models ------------------------------------------------------------------------------


class GBT:
    """Gradient-boosted trees on window features; ``p_class`` over all C+1 classes.

    Features are binned here (63 quantile bins per column, unweighted) before the trees
    see them: scikit-learn bins weighted data (``class_weight``) with one weighted
    percentile per bin and feature, which took most of the training time."""

    BINS = 63

    def __init__(self, n_classes: int, cfg: dict, seed: int):
        self.n_classes, self.cfg, self.seed = n_classes, cfg, seed

    def _binned(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, np.float32)
        for j in range(x.shape[1]):
            out[:, j] = np.searchsorted(self.edges_[j], x[:, j], side="left")
        return out

    def fit(self, xs: list[np.ndarray], ys: list[np.ndarray]) -> GBT:
        """Fit on model-rate features and labels of the sessions (label -1: ignored)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        x, y = np.concatenate(xs), np.concatenate(ys)
        keep = y >= 0
        x, y = x[keep], y[keep]
        q = np.linspace(0, 1, self.BINS + 1)[1:-1]
        edges = np.quantile(x, q, axis=0).T if len(x) else np.zeros((x.shape[1], 0))
        self.edges_ = [np.unique(e) for e in edges]
        self.classes_ = np.unique(y)
        self.model = None
        if len(self.classes_) > 1:
            self.model = HistGradientBoostingClassifier(
                max_iter=int(self.cfg["gbt_iterations"]),
                learning_rate=5.0 / int(self.cfg["gbt_iterations"]),
                max_leaf_nodes=15,
                l2_regularization=1.0,
                max_features=float(self.cfg.get("gbt_max_features", 1.0)),
                class_weight="balanced",
                random_state=self.seed,
            ).fit(self._binned(x), y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.zeros((len(x), self.n_classes), np.float32)
        if self.model is None:
            p[:, int(self.classes_[0]) if len(self.classes_) else 0] = 1.0
            return p
        p[:, self.model.classes_] = self.model.predict_proba(self._binned(x))
        return p


def _fit_cnn(xs, ys, n_classes, cfg, seed) -> tuple[bytes, dict, object]:
    """The CNN fitted on model-rate base signals: (torch archive bytes, training log, net)."""
    from . import localizer

    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "cnn.pt"
        res = localizer.train(xs, ys, n_classes, cfg, seed, ck, False, fps=cfg["model_fps"])
        return ck.read_bytes(), res, localizer.load(ck)


def _cnn_predict(net, x_base: np.ndarray) -> np.ndarray:
    from . import localizer

    return localizer.predict_frames(net, x_base)[1]


# --- post-processing: gap fill and minimum bout per behavior -----------------------------


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def fill_gaps(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` with its False runs of at most ``n`` frames between two True runs set."""
    if n <= 0 or not mask.any():
        return mask
    out = mask.copy()
    starts, ends = _runs(mask)
    for e, s in zip(ends[:-1], starts[1:], strict=True):
        if s - e <= n:
            out[e:s] = True
    return out


def drop_short(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` without its True runs shorter than ``n`` frames."""
    if n <= 1 or not mask.any():
        return mask
    out = mask.copy()
    for s, e in zip(*_runs(mask), strict=True):
        if e - s < n:
            out[s:e] = False
    return out


def bout_rule(mask: np.ndarray, fps: float, gap_s: float, min_bout_s: float) -> np.ndarray:
    """Gaps of at most ``gap_s`` filled, then bouts shorter than ``min_bout_s`` dropped."""
    return drop_short(fill_gaps(mask, int(round(gap_s * fps))), int(round(min_bout_s * fps)))


def apply_bout_rules(labels: np.ndarray, fps: float, rules: dict) -> np.ndarray:
    """Per-frame labels after each behavior's rule (``{code: {"gap_s", "min_bout_s"}}``, in
    code order): filled gaps take the behavior, dropped bouts become ``other`` (0)."""
    out = np.asarray(labels).copy()
    for c in sorted(rules, key=int):
        r = rules[c]
        m = out == int(c)
        keep = bout_rule(m, fps, r["gap_s"], r["min_bout_s"])
        out[keep] = int(c)
        out[m & ~keep] = 0
    return out


def relabel(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probabilities whose argmax is ``labels``: on a frame whose label differs from its
    argmax, the probabilities of the two classes are swapped (a distribution still)."""
    p = np.array(p, np.float32, copy=True)
    cur = p.argmax(1)
    idx = np.flatnonzero(cur != labels)
    if len(idx):
        a, b = cur[idx], labels[idx]
        pa, pb = p[idx, a].copy(), p[idx, b].copy()
        p[idx, a], p[idx, b] = pb, pa
    return p


def tune_bout_rules(
    preds: list[np.ndarray], labels: list[np.ndarray], fps: list[float], n_classes: int, cfg
) -> tuple[dict, list]:
    """Per behavior, the gap fill and minimum bout (grids in seconds) of best validation F1
    (the smallest on ties). Returns ``(rules, table rows)``."""
    rules, rows = {}, []
    for c in range(1, n_classes):
        y = np.concatenate([lab == c for lab in labels])
        if not y.any():
            continue
        best = None
        for gap in cfg["gap_grid_s"]:
            for mb in cfg["min_bout_grid_s"]:
                m = np.concatenate(
                    [
                        bout_rule(p == c, f, float(gap), float(mb))
                        for p, f in zip(preds, fps, strict=True)
                    ]
                )
                f1 = float(2 * np.sum(m & y) / max(1, m.sum() + y.sum()))
                rows.append({"class": c, "gap_s": float(gap), "min_bout_s": float(mb), "f1": f1})
                if best is None or f1 > best[0] + 1e-9:
                    best = (f1, float(gap), float(mb))
        raw = np.concatenate([p == c for p in preds])
        rules[c] = {
            "gap_s": best[1],
            "min_bout_s": best[2],
            "val_f1": best[0],
            "val_f1_raw": float(2 * np.sum(raw & y) / max(1, raw.sum() + y.sum())),
        }
    return rules, rows


# --- training ----------------------------------------------------------------------------


def choose(scores: dict[str, float], order: list[str], margin: float) -> str:
    """The candidate chosen: the first in ``order`` unless a later one scores more than
    ``margin`` above the best so far (validation on a few short recordings is noisy, and
    the earlier candidates are the cheaper ones); NaN scores lose."""
    best = None
    for c in order:
        v = scores.get(c, float("nan"))
        v = -1.0 if not np.isfinite(v) else v
        if best is None or v > best[1] + margin:
            best = (c, v)
    return best[0]


def _model_range(i, s, e, fps, mf, n_model, phase=0.0) -> tuple[int, int, int]:
    """A session-frame range as the model-rate samples (of ``phase``) inside it."""
    a = max(0, int(np.ceil(s * mf / fps - phase - 1e-9)))
    b = int(np.ceil(e * mf / fps - phase - 1e-9))
    return i, a, min(b, n_model)


def train(
    poses: list,
    labels: list[np.ndarray],
    n_classes: int,
    cfg: dict,
    out_path: str | os.PathLike,
    px_per_cm=None,
    *,
    head: str | None = None,
    tail: str | None = None,
    proposals_cfg: dict | None = None,
    behaviors: list[str] | None = None,
) -> dict:
    """Choose and fit the setup's stage-1 model; write the checkpoint; return the log.

    ``px_per_cm``: one value per session (None/NaN where unknown) or one for all."""
    from . import localizer
    from . import proposals as props

    cfg = {**DEFAULTS, **cfg}
    pcfg = {**props.DEFAULTS, **(proposals_cfg or {})}
    behaviors = behaviors or [f"class{c}" for c in range(1, n_classes)]
    seed = int(cfg["seed"])
    mf = float(cfg["model_fps"])
    ys = [np.asarray(y, np.int64) for y in labels]
    fps = [float(p.fps) for p in poses]
    if not isinstance(px_per_cm, list | tuple):
        px_per_cm = [px_per_cm] * len(poses)
    units = length_units([p.keypoints for p in poses], list(px_per_cm))
    unit_px = [px_per_unit(p.keypoints, v, units) for p, v in zip(poses, px_per_cm, strict=True)]
    groups = [str(p.source_path) for p in poses]
    gap_s = max(cfg["windows_s"]) / 2
    splits = folds(groups, [len(y) for y in ys], cfg, [round(gap_s * f) for f in fps])
    log = {
        "validation": (
            "leave one recording out"
            if len(set(groups)) > 1
            else f"{int(cfg['time_folds'])} contiguous time blocks"
        ),
        "folds": len(splits),
        "model_fps": mf,
        "units": units,
    }
    feats = [session_features(p, cfg, u, head, tail) for p, u in zip(poses, unit_px, strict=True)]
    wf = [x for x, _ in feats]
    nb = feats[0][1] if feats else 0
    ym = [labels_at_model_rate(y, f, mf) for y, f in zip(ys, fps, strict=True)]
    # gbt training samples at further sub-sample phases of the model-rate grid: the same
    # seconds-based features, more (correlated) samples from short labelled recordings
    phases = [k / int(cfg["gbt_phases"]) for k in range(1, int(cfg["gbt_phases"]))]
    extra = {}
    if "gbt" in cfg["candidates"]:
        for i, (p, u) in enumerate(zip(poses, unit_px, strict=True)):
            for ph in phases:
                xph = session_features(p, cfg, u, head, tail, ph)[0]
                extra[i, ph] = (xph, labels_at_model_rate(ys[i], fps[i], mf, ph))
    validated = sorted({i for _, val in splits for i, _, _ in val})

    def cnn_inputs(ranges, rng):
        """Base signals and labels of the fit ranges, plus augmented copies."""
        xs, yl = [], []
        for i, s, e in ranges:
            _, a, b = _model_range(i, s, e, fps[i], mf, len(ym[i]))
            if b - a < 2:
                continue
            xs.append(wf[i][a:b, :nb])
            yl.append(ym[i][a:b])
            for _ in range(int(cfg["augment_copies"])):
                kp, ya = localizer.augment(poses[i].keypoints[s:e], ys[i][s:e], rng, cfg)
                aug = dataclasses.replace(
                    poses[i], keypoints=kp, confidence=np.ones(kp.shape[:3], np.float32)
                )
                u = px_per_unit(kp, px_per_cm[i], units)
                xs.append(session_features(aug, cfg, u, head, tail)[0][:, :nb])
                yl.append(labels_at_model_rate(ya, fps[i], mf))
        return xs, yl

    def fit(cand, ranges, rng):
        if cand == "gbt":
            xs, yl = [], []
            for i, s, e in ranges:
                _, a, b = _model_range(i, s, e, fps[i], mf, len(ym[i]))
                xs.append(wf[i][a:b])
                yl.append(ym[i][a:b])
                for ph in phases:
                    xph, yph = extra[i, ph]
                    _, a, b = _model_range(i, s, e, fps[i], mf, len(yph), ph)
                    xs.append(xph[a:b])
                    yl.append(yph[a:b])
            return GBT(n_classes, cfg, seed).fit(xs, yl)
        xs, yl = cnn_inputs(ranges, rng)
        return _fit_cnn(xs, yl, n_classes, cfg, seed)

    def predict_model(cand, model, i):
        if cand == "gbt":
            p = model.predict_proba(wf[i])
        else:
            p = _cnn_predict(model[2], wf[i][:, :nb])
        p = to_session_frames(p, len(ys[i]), fps[i], mf)
        return p / np.maximum(p.sum(1, keepdims=True), 1e-9)

    scores, oof_by = {}, {}
    for cand in cfg["candidates"]:
        rng = np.random.default_rng(seed)
        oof = [np.full((len(y), n_classes), np.nan, np.float32) for y in ys]
        fold_f1 = []
        for fit_r, val in splits:
            model = fit(cand, fit_r, rng)
            cache = {}
            yv, pv = [], []
            for i, s, e in val:
                if i not in cache:
                    cache[i] = predict_model(cand, model, i)
                oof[i][s:e] = cache[i][s:e]
                yv.append(ys[i][s:e])
                pv.append(cache[i][s:e].argmax(1))
            fold_f1.append(macro_f1(np.concatenate(yv), np.concatenate(pv), n_classes))
        y_all = np.concatenate([ys[i] for i in validated])
        p_all = np.concatenate([oof[i].argmax(1) for i in validated])
        scores[cand] = {
            "macro_f1": macro_f1(y_all, p_all, n_classes),
            "folds": fold_f1,
            "behaviors": {
                b: macro_f1((y_all == c).astype(int), (p_all == c).astype(int), 2)
                for c, b in enumerate(behaviors, start=1)
            },
        }
        if cand == "cnn":
            scores[cand]["last_fold"] = {k: v for k, v in model[1].items() if k != "history"}
        oof_by[cand] = oof
    choice = choose(
        {c: v["macro_f1"] for c, v in scores.items()}, list(cfg["candidates"]), cfg["choice_margin"]
    )
    log.update({"candidates": {c: s["macro_f1"] for c, s in scores.items()}})
    log.update({"candidate_folds": {c: s["folds"] for c, s in scores.items()}, "choice": choice})
    log["candidate_behaviors"] = {c: s["behaviors"] for c, s in scores.items()}
    if "cnn" in scores:
        log["cnn_last_fold"] = scores["cnn"]["last_fold"]

    oof = [oof_by[choice][i] for i in validated]
    yv = [ys[i] for i in validated]
    fv = [fps[i] for i in validated]
    raw = [p.argmax(1) for p in oof]
    rules = {}
    if cfg["postprocess"]:
        rules, grid = tune_bout_rules(raw, yv, fv, n_classes, cfg)
        post = [apply_bout_rules(r, f, rules) for r, f in zip(raw, fv, strict=True)]
        log["postprocess"] = {
            "rules": {behaviors[c - 1]: r for c, r in rules.items()},
            "grid": [
                {
                    "behavior": behaviors[r["class"] - 1],
                    **{k: v for k, v in r.items() if k != "class"},
                }
                for r in grid
            ],
            "val_macro_f1_raw": scores[choice]["macro_f1"],
            "val_macro_f1": macro_f1(np.concatenate(yv), np.concatenate(post), n_classes),
        }
    tuned = None
    if pcfg.get("target_recall") is not None:
        tuned = props.tune_thresholds(oof, yv, fv, pcfg, behaviors)
        log["proposals"] = tuned

    rng = np.random.default_rng(seed + 1)
    final = fit(choice, [(i, 0, len(y)) for i, y in enumerate(ys)], rng)
    if choice == "gbt":
        blob = pickle.dumps(final)
    else:
        blob, res, _ = final
        log["cnn"] = {k: v for k, v in res.items() if k != "history"}
        log["cnn_history"] = res["history"]
    ckpt = {
        "kind": choice,
        "model": blob,
        "cfg": cfg,
        "units": units,
        "head": head,
        "tail": tail,
        "n_classes": n_classes,
        "behaviors": behaviors,
        "postprocess": {
            int(c): {k: r[k] for k in ("gap_s", "min_bout_s")} for c, r in rules.items()
        },
        "proposals": (
            {"thresholds": tuned["thresholds"], "target_recall": tuned["target_recall"]}
            if tuned
            else None
        ),
        "validation": {"candidates": log["candidates"], "choice": choice},
    }
    with atomic_path(out_path) as tmp:  # a plain pickle: a gbt model predicts without torch
        Path(tmp).write_bytes(pickle.dumps(ckpt, protocol=5))
    return log


# --- inference ---------------------------------------------------------------------------


@dataclasses.dataclass
class Stage1Model:
    kind: str
    net: object
    ckpt: dict


def load(path: str | os.PathLike) -> Stage1Model:
    """The stage-1 model of a checkpoint; torch is imported only for a CNN."""
    with open(path, "rb") as f:
        ckpt = pickle.load(f)
    if ckpt["kind"] == "gbt":
        return Stage1Model("gbt", pickle.loads(ckpt["model"]), ckpt)
    import torch

    net = _load_from_bytes(ckpt["model"], torch)
    return Stage1Model("cnn", net, ckpt)


def _load_from_bytes(data: bytes, torch):
    from .localizer import from_checkpoint

    return from_checkpoint(torch.load(io.BytesIO(data), map_location="cpu", weights_only=False))


def predict_raw(model: Stage1Model, pose, px_per_cm=None) -> np.ndarray:
    """Class probabilities ``[T, C+1]`` of one session at its own frames, before the
    post-processing."""
    ck = model.ckpt
    cfg = ck["cfg"]
    unit = px_per_unit(pose.keypoints, px_per_cm, ck["units"])
    x, nb = session_features(pose, cfg, unit, ck["head"], ck["tail"])
    if model.kind == "gbt":
        p = model.net.predict_proba(x)
    else:
        p = _cnn_predict(model.net, x[:, :nb])
    p = to_session_frames(p, pose.n_frames, pose.fps, float(cfg["model_fps"]))
    return p / np.maximum(p.sum(1, keepdims=True), 1e-9)


def postprocess(model: Stage1Model, p: np.ndarray, fps: float) -> np.ndarray:
    """``p`` relabelled so that its argmax follows the tuned bout rules (``relabel``)."""
    rules = model.ckpt.get("postprocess") or {}
    if not rules:
        return p
    return relabel(p, apply_bout_rules(p.argmax(1), fps, rules))


def predict(model: Stage1Model, pose, px_per_cm=None) -> tuple[np.ndarray, np.ndarray]:
    """``p_action [T]`` (1 - p_other before post-processing) and ``p_class [T, C+1]``
    (post-processed: its argmax is the labelled behavior) of one session."""
    p = predict_raw(model, pose, px_per_cm)
    return (1.0 - p[:, 0]).astype(np.float32), postprocess(model, p, pose.fps)


def proposals(model: Stage1Model, p_raw: np.ndarray, fps: float, cfg: dict):
    """The session's proposals: per-behavior tuned thresholds when the model has them and
    ``cfg["target_recall"]`` is set, else the fixed thresholds on ``p_action``."""
    from . import proposals as props

    tuned = model.ckpt.get("proposals")
    use = tuned["thresholds"] if tuned and cfg.get("target_recall") is not None else None
    return props.propose(p_raw, fps, cfg, use)
