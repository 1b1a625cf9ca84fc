"""Stage 1: a temporal 1D-CNN over pose features (CalMS21 baseline design).

Every frame is classified from a window of ±``context_s`` seconds of pose features. The
model is fully convolutional in time: a 1x1 projection of the features, then residual dilated
convolutions whose receptive field covers ±context frames (``context_s`` times the rate of the
features, ``fps``), and two 1x1 heads:

- action-vs-other (sigmoid): where something happens, turned into proposals;
- behavior (softmax over ``other`` + the vocabulary): the pose-only baseline classifier.

Inference over a whole session is a single pass (chunked for very long sessions), never a
per-frame loop. Training samples random windows of ``window_s`` seconds of the train sessions,
ignores unlabelled frames (label -1), weights rare classes up, and stops early on a
validation split made of contiguous time blocks.

Augmentation (``augment``, applied to keypoints before features are computed, by
``stage1``): time stretch (±``augment_time_stretch``), scale jitter (±``augment_scale``),
rotation, mirroring, Gaussian keypoint noise (``augment_noise`` body sizes) and keypoint
dropout (``augment_dropout`` of the keypoint-frames set missing). Labels follow the time
stretch frame by frame; the geometric parts leave them alone.
"""

from __future__ import annotations

import copy
import logging
import math
import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .atomic import save_torch
from .config import defaults

log = logging.getLogger(__name__)

DEFAULTS = defaults("localizer")  # the config schema's `localizer` defaults


def dilations_for(context: int, layers: int = 0) -> list[int]:
    """Dilations of kernel-3 layers whose receptive field reaches ±context frames."""
    if layers <= 0:
        layers = max(1, math.ceil(math.log2(context + 1)))
    dil = [2**i for i in range(layers)]
    reach = sum(dil)
    if reach < context:  # the last layer stretches to cover the remainder
        dil[-1] += context - reach
    return dil


class TemporalCNN(nn.Module):
    def __init__(self, n_features: int, n_classes: int, channels: int, dilations, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(n_features, channels, 1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(channels, channels, 3, dilation=d, padding=d) for d in dilations
        )
        self.drop = nn.Dropout(dropout)
        self.action = nn.Conv1d(channels, 1, 1)
        self.behavior = nn.Conv1d(channels, n_classes, 1)
        self.receptive = sum(dilations)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, F, T] -> action logits [B, T], class logits [B, C, T]."""
        h = F.relu(self.inp(x))
        for conv in self.blocks:
            h = h + F.relu(conv(self.drop(h)))
        h = self.drop(h)
        return self.action(h)[:, 0], self.behavior(h)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _val_mask(n: int, fraction: float, blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Contiguous validation blocks (autocorrelated frames never straddle the split)."""
    mask = np.zeros(n, dtype=bool)
    if fraction <= 0 or n < 2 * blocks:
        return mask
    edges = np.linspace(0, n, blocks + 1).astype(int)
    k = max(1, round(fraction * blocks))
    for b in rng.choice(blocks, size=k, replace=False):
        mask[edges[b] : edges[b + 1]] = True
    return mask


def _windows(lengths: list[int], window: int, n: int, rng: np.random.Generator):
    """n random (session, start) pairs, sessions drawn in proportion to their length."""
    p = np.asarray(lengths, float) / sum(lengths)
    sess = rng.choice(len(lengths), size=n, p=p)
    starts = [rng.integers(0, max(1, lengths[s] - window + 1)) for s in sess]
    return sess, np.asarray(starts)


def _macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    f1 = []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (y == c))
        denom = np.sum(pred == c) + np.sum(y == c)
        if np.sum(y == c):
            f1.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1)) if f1 else float("nan")


def train(
    features: list[np.ndarray],
    labels: list[np.ndarray],
    n_classes: int,
    cfg: dict,
    seed: int,
    out_path: str | os.PathLike,
    progress: bool = True,
    *,
    fps: float,
) -> dict:
    """Fit the two-headed CNN on features sampled at ``fps``; write the checkpoint
    atomically; return training metrics."""
    from tqdm import tqdm

    cfg = {**DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = _device(cfg["device"])
    xs = [np.nan_to_num(np.asarray(f, np.float32)) for f in features]
    ys = [np.asarray(y, np.int64) for y in labels]
    n_feat = xs[0].shape[1]
    all_x = np.concatenate(xs)
    mean = all_x.mean(0)
    std = all_x.std(0)
    std[std < 1e-4] = 1.0  # constant columns (e.g. no missing data in training) stay put
    xs = [_normalize(x, mean, std) for x in xs]

    # validation blocks: their labels are hidden from training (set to -1) and vice versa
    train_y, val_y = [], []
    for y in ys:
        m = _val_mask(len(y), cfg["val_fraction"], cfg["val_blocks"], rng)
        train_y.append(np.where(m, -1, y))
        val_y.append(np.where(m, y, -1))
    flat = np.concatenate(train_y)
    counts = np.bincount(flat[flat >= 0], minlength=n_classes).astype(float)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    weights = np.clip(weights, 0, 50)
    n_pos = float(np.sum(flat > 0))
    n_neg = float(np.sum(flat == 0))
    pos_weight = torch.tensor(min(50.0, n_neg / n_pos) if n_pos else 1.0, device=device)

    context = max(1, int(round(float(cfg["context_s"]) * fps)))
    dil = dilations_for(context, int(cfg["layers"]))
    model = TemporalCNN(n_feat, n_classes, int(cfg["channels"]), dil, float(cfg["dropout"]))
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    ce = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device), ignore_index=-1
    )
    window = int(min(max(8, round(float(cfg["window_s"]) * fps)), max(len(y) for y in ys)))
    lengths = [len(y) for y in ys]
    steps = max(int(cfg["min_steps"]), int(sum(lengths) / (window * cfg["batch_size"]) * 4))
    xt = [torch.from_numpy(x.T.copy()) for x in xs]
    best = (-float("inf"), None, 0)
    history = []
    bar = tqdm(range(int(cfg["epochs"])), disable=not progress, desc="stage-1 training")
    for epoch in bar:
        model.train()
        total = 0.0
        for _ in range(steps):
            sess, starts = _windows(lengths, window, int(cfg["batch_size"]), rng)
            xb = torch.stack([_crop(xt[s], st, window) for s, st in zip(sess, starts, strict=True)])
            yb = np.stack(
                [_crop_y(train_y[s], st, window) for s, st in zip(sess, starts, strict=True)]
            )
            yb = torch.from_numpy(yb).to(device)
            xb = xb.to(device)
            if cfg["input_noise"] > 0:
                xb = xb + cfg["input_noise"] * torch.randn_like(xb)
            act, cls = model(xb)
            known = yb >= 0
            loss = ce(cls, yb)
            if known.any():
                loss = loss + F.binary_cross_entropy_with_logits(
                    act[known], (yb[known] > 0).float(), pos_weight=pos_weight
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        val_loss, val_f1, act_f1 = _validate(model, xs, val_y, n_classes, ce, pos_weight, device)
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / steps,
                "val_loss": val_loss,
                "val_macro_f1": val_f1,
                "val_action_f1": act_f1,
            }
        )
        bar.set_postfix(loss=f"{total / steps:.3f}", val=f"{val_loss:.3f}", f1=f"{val_f1:.2f}")
        # early stopping on validation macro F1 (loss rewards timid models on rare classes)
        score = val_f1 if np.isfinite(val_f1) else -total / steps
        if score > best[0] + 1e-4:
            best = (score, copy.deepcopy(model.state_dict()), epoch)
        elif epoch - best[2] >= cfg["patience"] and epoch + 1 >= cfg["min_epochs"]:
            break
    if best[1] is not None:
        model.load_state_dict(best[1])
    ckpt = {
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "cfg": cfg,
        "dilations": dil,
        "mean": mean,
        "std": std,
        "n_features": n_feat,
        "n_classes": n_classes,
        "seed": seed,
        "fps": float(fps),
    }
    save_torch(ckpt, out_path)
    last = history[best[2]] if history else {}
    return {
        "epochs_run": len(history),
        "best_epoch": best[2],
        "val_loss": last.get("val_loss"),
        "val_macro_f1": last.get("val_macro_f1"),
        "val_action_f1": last.get("val_action_f1"),
        "class_weights": weights.tolist(),
        "dilations": dil,
        "receptive_field_frames": 2 * sum(dil) + 1,
        "receptive_field_s": (2 * sum(dil) + 1) / fps,
        "history": history,
    }


CLIP = 8.0  # normalised features are clipped to ±CLIP standard deviations


def _normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.clip((x - mean) / std, -CLIP, CLIP).astype(np.float32)


def _crop(x: torch.Tensor, start: int, window: int) -> torch.Tensor:
    out = x[:, start : start + window]
    if out.shape[1] < window:
        out = F.pad(out, (0, window - out.shape[1]))
    return out


def _crop_y(y: np.ndarray, start: int, window: int) -> np.ndarray:
    out = y[start : start + window]
    if len(out) < window:
        out = np.pad(out, (0, window - len(out)), constant_values=-1)
    return out


@torch.no_grad()
def _validate(model, xs, val_y, n_classes, ce, pos_weight, device):
    model.eval()
    losses, ys, preds, acts = [], [], [], []
    for x, y in zip(xs, val_y, strict=True):
        if not (y >= 0).any():
            continue
        act, cls = model(torch.from_numpy(x.T.copy())[None].to(device))
        yt = torch.from_numpy(y)[None].to(device)
        known = yt >= 0
        loss = ce(cls, yt) + F.binary_cross_entropy_with_logits(
            act[known], (yt[known] > 0).float(), pos_weight=pos_weight
        )
        losses.append(float(loss))
        k = y >= 0
        ys.append(y[k])
        preds.append(cls[0].argmax(0).cpu().numpy()[k])
        acts.append((act[0] > 0).cpu().numpy()[k])
    if not losses:
        return float("nan"), float("nan"), float("nan")
    y, p, a = np.concatenate(ys), np.concatenate(preds), np.concatenate(acts)
    return float(np.mean(losses)), _macro_f1(y, p, n_classes), _macro_f1(y > 0, a, 2)


def from_checkpoint(ckpt: dict) -> TemporalCNN:
    """The network (in eval mode) of a checkpoint dict: its shape, weights and the feature
    normalization it was trained with."""
    model = TemporalCNN(
        ckpt["n_features"],
        ckpt["n_classes"],
        int(ckpt["cfg"]["channels"]),
        ckpt["dilations"],
        float(ckpt["cfg"]["dropout"]),
    )
    model.load_state_dict(ckpt["state_dict"])
    model.mean = torch.from_numpy(np.asarray(ckpt["mean"], np.float32))
    model.std = torch.from_numpy(np.asarray(ckpt["std"], np.float32))
    return model.eval()


def load(path: str | os.PathLike, device: str = "cpu") -> TemporalCNN:
    ckpt = torch.load(path, map_location=device, weights_only=False)
    return from_checkpoint(ckpt).to(device)


@torch.no_grad()
def predict_frames(
    model: TemporalCNN, features: np.ndarray, batch_frames: int = 1 << 16
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame p_action [T] and p_class [T, C] for one session, one pass per chunk."""
    x = np.nan_to_num(np.asarray(features, np.float32))
    if x.shape[1] != model.inp.in_channels:
        raise ValueError(
            f"features have {x.shape[1]} columns, the localizer was trained on "
            f"{model.inp.in_channels}"
        )
    x = torch.from_numpy(x)
    x = ((x - model.mean) / model.std).clamp(-CLIP, CLIP).T.contiguous()
    n = x.shape[1]
    margin = model.receptive
    dev = next(model.parameters()).device
    pa = np.empty(n, np.float32)
    pc = np.empty((n, model.behavior.out_channels), np.float32)
    for start in range(0, n, batch_frames):
        lo, hi = max(0, start - margin), min(n, start + batch_frames + margin)
        act, cls = model(x[None, :, lo:hi].to(dev))
        sl = slice(start - lo, start - lo + min(batch_frames, n - start))
        pa[start : start + batch_frames] = torch.sigmoid(act[0, sl]).cpu().numpy()
        pc[start : start + batch_frames] = torch.softmax(cls[0, :, sl], 0).T.cpu().numpy()
    return pa, pc


# --- augmentation (keypoints [T, A, K, 2], pixels; applied before features are computed) ---


def time_stretch(
    keypoints: np.ndarray, labels: np.ndarray, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """The recording played ``factor`` times slower (``factor`` > 1: longer, slower
    movements): ``round(T * factor)`` frames at the same frame rate, keypoints linearly
    interpolated (a missing neighbour gives a missing value), each new frame labelled as the
    nearest original frame."""
    kp = np.asarray(keypoints, np.float64)
    t = len(kp)
    n = max(1, int(round(t * factor)))
    pos = np.minimum(np.arange(n) / factor, t - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).reshape(-1, *([1] * (kp.ndim - 1)))
    out = kp[lo] * (1 - w) + kp[hi] * w
    out = np.where(w == 0, kp[lo], out)  # exact frames keep their value (NaN stays NaN)
    idx = np.minimum(np.round(pos).astype(int), t - 1)
    return out, np.asarray(labels)[idx]


def rotate(keypoints: np.ndarray, angle: float, centre: np.ndarray) -> np.ndarray:
    """Keypoints rotated by ``angle`` radians (counter-clockwise) about ``centre`` [2]."""
    c, s = np.cos(angle), np.sin(angle)
    rel = np.asarray(keypoints, np.float64) - centre
    return np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1]], -1) + (
        centre
    )


def mirror(keypoints: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Keypoints mirrored left-right about the vertical line through ``centre``."""
    out = np.asarray(keypoints, np.float64).copy()
    out[..., 0] = 2 * centre[0] - out[..., 0]
    return out


def scale(keypoints: np.ndarray, factor: float, centre: np.ndarray) -> np.ndarray:
    """Keypoints scaled by ``factor`` about ``centre``."""
    return centre + factor * (np.asarray(keypoints, np.float64) - centre)


def augment(
    keypoints: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cfg: dict
) -> tuple[np.ndarray, np.ndarray]:
    """One random augmentation of a recording (see the module docstring): time stretch,
    rotation about the mean keypoint position, mirroring (half the draws), scale jitter,
    keypoint noise and dropout. Returns new keypoints and the labels of their frames."""
    from .speed_rule import body_size

    cfg = {**DEFAULTS, **cfg}
    ts, sc = float(cfg["augment_time_stretch"]), float(cfg["augment_scale"])
    kp, y = time_stretch(keypoints, labels, rng.uniform(1 - ts, 1 + ts) if ts > 0 else 1.0)
    finite = np.isfinite(kp).all(-1)
    centre = kp[finite].mean(0) if finite.any() else np.zeros(2)
    if cfg["augment_rotate"]:
        kp = rotate(kp, rng.uniform(0, 2 * np.pi), centre)
    if cfg["augment_mirror"] and rng.random() < 0.5:
        kp = mirror(kp, centre)
    if sc > 0:
        kp = scale(kp, rng.uniform(1 - sc, 1 + sc), centre)
    if cfg["augment_noise"] > 0:
        kp = kp + rng.normal(0, float(cfg["augment_noise"]) * body_size(kp), kp.shape)
    if cfg["augment_dropout"] > 0:
        drop = rng.random(kp.shape[:-1]) < float(cfg["augment_dropout"])
        kp[drop] = np.nan
    return kp.astype(np.float32), y
