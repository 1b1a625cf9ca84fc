"""One function per workflow step: typed paths in, files out.

Each rule's ``script:`` calls the function of the same name with the rule's named input,
output and params (see ``ethoflow.smk.run_step``). The functions only join the modules of
the package together; every algorithm lives in its own module.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .atomic import atomic_path
from .errors import InputError

log = logging.getLogger("ethoflow")
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


def _opt(path) -> str | None:
    """An optional single input: '' or [] mean absent."""
    if isinstance(path, list | tuple):
        return path[0] if path else None
    return path or None


def _write_tsv(df: pd.DataFrame, path: str) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def _read_frame_attrs(pose_h5: str) -> dict:
    with h5py.File(pose_h5, "r") as f:
        return {
            k: (v.item() if isinstance(v, np.generic) or getattr(v, "size", 0) == 1 else v)
            for k, v in f.attrs.items()
        }


# ---------------------------------------------------------------- ingest
def pose_preprocess(
    pose: str,
    video,
    pose_h5: str,
    qc: str,
    fmt: str,
    setup: dict,
    pose_cfg: dict,
    features_cfg: dict,
    frames: dict,
) -> None:
    """Any pose format -> repaired, cropped canonical pose h5 with features, plus a QC table."""
    from . import features, pose_io, repair

    video = _opt(video)
    p = pose_io.load_pose(
        pose, fmt, fps=setup["fps"], skeleton=setup["skeleton"], animals=setup["animals"]
    )
    n_source = p.keypoints.shape[0]
    n_video = None
    feat_cfg = {**features_cfg, "head": setup.get("head"), "tail": setup.get("tail")}
    if video:
        from .video import video_info

        info = video_info(video)
        n_video = info.n_frames
        feat_cfg["frame_size"] = [info.width, info.height]
        pose_io.check_length(n_source, n_video, pose_cfg["length_tolerance_frames"], pose)
        if abs(info.fps - p.fps) > 0.01 * p.fps:
            raise InputError(
                video, f"video runs at {info.fps:.3f} fps but the pose ({pose}) at {p.fps:.3f} fps"
            )
    start = int(frames.get("start") or 0)
    end = frames.get("end")
    end = n_source if end is None else min(int(end), n_source)
    if start >= end:
        raise InputError(pose, f"frame range {start}:{end} is empty (pose has {n_source} frames)")
    p = dataclasses.replace(p, keypoints=p.keypoints[start:end], confidence=p.confidence[start:end])
    p, qc_table = repair.repair_pose(p, pose_cfg["min_confidence"], pose_cfg["max_gap_frames"])
    feats, names = features.compute_features(p, feat_cfg)
    extra = {"frame_offset": start, "n_source_frames": n_source}
    if n_video is not None:
        extra["n_video_frames"] = n_video
    pose_io.write_pose_h5(pose_h5, p, feats, names, extra_attrs=extra)
    _write_tsv(qc_table, qc)
    log.info("%s: %d frames, %d features", pose, end - start, feats.shape[1])


def labels(
    pose_h5: str,
    annotations,
    labels: str,
    rule: str,
    behaviors: list[str],
    setup: dict,
    kinematic: dict,
    frames: dict,
) -> None:
    """Per-frame labels of a session: converted annotations, or the kinematic rule."""
    from . import annotations as ann
    from . import pose_io
    from .demo_labels import kinematic_labels

    pose, _, _ = pose_io.read_pose_h5(pose_h5)
    attrs = _read_frame_attrs(pose_h5)
    n = pose.keypoints.shape[0]
    annotations = _opt(annotations)
    if annotations is None:
        if rule != "rule:kinematic":
            raise InputError(pose_h5, f"unknown label rule {rule!r}")
        y = kinematic_labels(
            pose.keypoints,
            pose.fps,
            pose.keypoint_names,
            behaviors,
            setup.get("head", pose.keypoint_names[0]),
            setup.get("tail", pose.keypoint_names[-1]),
            kinematic,
            source=pose_h5,
        )
    else:
        offset = int(attrs.get("frame_offset", 0))
        total = int(attrs.get("n_source_frames", offset + n))
        y = ann.load_annotations(annotations, total, behaviors, pose.fps)[offset : offset + n]
    ann.write_labels(labels, y, behaviors)


# ---------------------------------------------------------------- stage 1
def _features(pose_h5: str) -> np.ndarray:
    with h5py.File(pose_h5, "r") as f:
        return f["features"][()]


def train_localizer(
    pose: list[str],
    labels: list[str],
    model: str,
    metrics: str,
    behaviors: list[str],
    cfg: dict,
    threads: int = 1,
) -> None:
    """Train the setup's 1D-CNN on its train split."""
    import torch

    from . import annotations as ann
    from . import localizer

    torch.set_num_threads(max(1, threads))
    if not pose:
        raise InputError(None, "no annotated train session for this setup: cannot train stage 1")
    feats = [_features(p) for p in pose]
    ys = [ann.read_labels(p, behaviors) for p in labels]
    for f, y, p in zip(feats, ys, labels, strict=True):
        if len(f) != len(y):
            raise InputError(p, f"{len(y)} labels for {len(f)} pose frames")
    result = localizer.train_localizer(
        feats, ys, len(behaviors) + 1, cfg, int(cfg.get("seed", 0)), model
    )
    with atomic_path(metrics) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=float))


def localize(pose_h5: str, model: str, stage1: str, proposals: str, cfg: dict) -> None:
    """Frame probabilities of the localizer and the action proposals of one session."""
    from . import localizer
    from . import proposals as prop

    m = localizer.load_localizer(model)
    p_action, p_class = localizer.predict_frames(m, _features(pose_h5))
    fps = float(_read_frame_attrs(pose_h5)["fps"])
    props = prop.make_proposals(p_action, fps, cfg)
    with atomic_path(stage1) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("p_action", data=p_action.astype(np.float32))
            f.create_dataset("p_class", data=p_class.astype(np.float32))
            f.attrs["fps"] = fps
            f.attrs["model"] = str(model)
    prop.write_proposals(props, proposals)
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
    from . import annotations as ann
    from . import proposals as prop

    pa, pc, ys, props, offset, fps = [], [], [], [], 0, None
    for s1, pr, lb in zip(stage1, proposals, labels, strict=True):
        with h5py.File(s1, "r") as f:
            pa.append(f["p_action"][()])
            pc.append(f["p_class"][()])
            fps = float(f.attrs["fps"])
        ys.append(ann.read_labels(lb, behaviors))
        df = prop.read_proposals(pr)
        props.append(
            df.assign(start_frame=df.start_frame + offset, end_frame=df.end_frame + offset)
        )
        offset += len(pa[-1])
    p_action, p_class, y = np.concatenate(pa), np.concatenate(pc), np.concatenate(ys)
    all_props = pd.concat(props, ignore_index=True)
    tables = prop.evaluate_stage1(p_action, p_class, y, all_props, behaviors)
    rows = []
    for name, table in tables.items():
        rows.append(table.assign(table=name))
    _write_tsv(pd.concat(rows, ignore_index=True), metrics)
    thresholds = np.round(np.linspace(0.1, 0.9, 9), 2)
    _write_tsv(prop.threshold_sweep(p_action, y, fps, cfg, thresholds), sweep)


# ---------------------------------------------------------------- clips and VLM
def _session_windows(clips: str, pose_h5: str) -> pd.DataFrame:
    """Clip windows in session frames: clips and embeddings h5 store video frames."""
    offset = int(_read_frame_attrs(pose_h5).get("frame_offset", 0))
    with h5py.File(clips, "r") as f:
        start = f["start_frame"][()] - offset
        end = f["end_frame"][()] - offset
    return pd.DataFrame({"start_frame": start, "end_frame": end})


def cut_clips(
    video: str,
    proposals: str,
    pose_h5: str,
    clips: str,
    cfg: dict,
    clip_seconds: float,
    threads: int = 1,
) -> None:
    """Sampled frames of every clip of a session, one h5."""
    from . import clips as clipmod
    from . import proposals as prop

    attrs = _read_frame_attrs(pose_h5)
    with h5py.File(pose_h5, "r") as f:
        n_frames = f["keypoints"].shape[0]
    fps = float(attrs["fps"])
    windows = prop.clip_windows(prop.read_proposals(proposals), n_frames, fps, clip_seconds)
    offset = int(attrs.get("frame_offset", 0))
    windows = windows.assign(
        start_frame=windows.start_frame + offset, end_frame=windows.end_frame + offset
    )
    clipmod.cut_clips(
        video,
        windows,
        clips,
        fps_out=cfg["fps"],
        frames_per_clip=cfg["frames_per_clip"],
        size=cfg["size"],
        pose_fps=fps,
        fps_tolerance=cfg.get("fps_tolerance", 0.01),
    )


def build_demo_vlm(model: str) -> None:
    """The tiny random-weight Qwen2.5-VL of the demo, built offline."""
    from .tiny import build_tiny_qwen25vl

    with atomic_path(model) as tmp:
        build_tiny_qwen25vl(tmp)


def _load(model, revision, dtype, attn):
    from .vlm import load_vlm

    return load_vlm(model, revision=revision or None, dtype=dtype, attn=attn)


def vlm_embed(
    clips: str,
    model_dir,
    embeddings: str,
    model: str,
    revision: str,
    prompt: str,
    pooling: str,
    layer: int,
    batch_size: int,
    dtype: str,
    attn: str,
) -> None:
    """One pooled VLM hidden-state vector per clip."""
    from .vlm import embed_sessions

    vlm = _load(model, revision, dtype, attn)
    embed_sessions(
        vlm,
        [clips],
        [embeddings],
        prompt=prompt,
        pooling=pooling,
        layer=layer,
        batch_size=batch_size,
    )


def vlm_describe(
    clips: str,
    model_dir,
    descriptions: str,
    model: str,
    revision: str,
    prompt: str,
    max_new_tokens: int,
    batch_size: int,
    dtype: str,
    attn: str,
) -> None:
    """The VLM's free-text answer for every clip (JSON lines)."""
    from .clips import read_clips

    vlm = _load(model, revision, dtype, attn)
    data = read_clips(clips)
    answers = (
        vlm.describe(data["frames"], prompt, max_new_tokens, batch_size)
        if len(data["frames"])
        else []
    )
    with atomic_path(descriptions) as tmp, open(tmp, "w") as f:
        for i, a in enumerate(answers):
            rec = {
                "clip": i,
                "start_frame": int(data["start_frame"][i]),
                "end_frame": int(data["end_frame"][i]),
                "model": model,
                "prompt": prompt,
                **a,
            }
            f.write(json.dumps(rec) + "\n")


def icl_exemplars(
    clips: list[str],
    labels: list[str],
    pose: list[str],
    exemplars: str,
    behaviors: list[str],
    per_class: int,
    seed: int,
) -> None:
    """Labelled exemplar clips for in-context classification, drawn from the train split."""
    from . import annotations as ann
    from . import icl
    from .classify import clip_labels

    clip_y = []
    for c, lb, ph in zip(clips, labels, pose, strict=True):
        clip_y.append(clip_labels(ann.read_labels(lb, behaviors), _session_windows(c, ph)))
    chosen = icl.choose_exemplars(clip_y, per_class, len(behaviors) + 1, seed)
    vocab = ["other", *behaviors]
    frames = []
    for s, i in chosen:
        with h5py.File(clips[s], "r") as f:
            frames.append(f["frames"][i])
    with atomic_path(exemplars) as tmp, h5py.File(tmp, "w") as f:
        data = np.stack(frames) if frames else np.zeros((0, 2, 1, 1, 3), np.uint8)
        f.create_dataset("frames", data=data)
        names = [vocab[clip_y[s][i]] for s, i in chosen]
        f.create_dataset("label", data=np.array(names, dtype=h5py.string_dtype()))
        f.attrs["source"] = json.dumps([[clips[s], int(i)] for s, i in chosen])


def vlm_icl(
    clips: str,
    exemplars: str,
    model_dir,
    scores: str,
    model: str,
    revision: str,
    behaviors: list[str],
    definitions: dict,
    batch_size: int,
    dtype: str,
    attn: str,
) -> None:
    """Label log-likelihoods of every clip under an in-context prompt (no training)."""
    from . import icl
    from .clips import read_clips

    vlm = _load(model, revision, dtype, attn)
    data = read_clips(clips)
    with h5py.File(exemplars, "r") as f:
        ex_frames = f["frames"][()]
        ex_labels = [s.decode() if isinstance(s, bytes) else s for s in f["label"][()]]
    prompt = icl.build_prompt(behaviors, definitions)
    candidates = ["other", *behaviors]
    t0 = time.perf_counter()
    if len(data["frames"]):
        s = vlm.score_labels(
            data["frames"],
            prompt,
            candidates,
            exemplars=list(zip(ex_frames, ex_labels, strict=True)),
            batch_size=batch_size,
        )
    else:
        s = np.zeros((0, len(candidates)), np.float32)
    with atomic_path(scores) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("scores", data=np.asarray(s, np.float32))
        f.attrs.update(vlm.meta)
        f.attrs["prompt"] = prompt
        f.attrs["candidates"] = json.dumps(candidates)
        f.attrs["n_exemplars"] = len(ex_labels)
        f.attrs["seconds"] = time.perf_counter() - t0


# ---------------------------------------------------------------- classification
def _embeddings(path: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["embeddings"][()].astype(np.float32)


def _stage1(path: str) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        return f["p_action"][()], f["p_class"][()]


def _clip_inputs(mode, clips, embeddings, pose_h5):
    from .classify import clip_pose_features

    windows = _session_windows(clips, pose_h5)
    x = _embeddings(embeddings)
    if mode == "pose+vlm":
        return {"embeddings": x, "pose": clip_pose_features(_features(pose_h5), windows)}, windows
    return {"embeddings": x}, windows


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
    import joblib

    from . import annotations as ann
    from . import classify as cls

    xs, ys = [], []
    for ph, c, e, lb in zip(pose, clips, embeddings, labels, strict=True):
        x, windows = _clip_inputs(mode, c, e, ph)
        xs.append(x)
        ys.append(cls.clip_labels(ann.read_labels(lb, behaviors), windows))
    fitted = cls.train_classifier(mode, xs, ys, len(behaviors) + 1, cfg, int(cfg.get("seed", 0)))
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
    from . import classify as cls
    from . import export

    fps = float(_read_frame_attrs(pose_h5)["fps"])
    _, p_class = _stage1(stage1)
    n_frames = len(p_class)
    if mode == "pose":
        probs = cls.smooth_probs(p_class, smoothing_frames)
    else:
        windows = _session_windows(clips, pose_h5)
        if mode == "icl":
            with h5py.File(icl, "r") as f:
                clip_probs = cls.icl_probs(f["scores"][()])
        else:
            import joblib

            fitted = joblib.load(model)
            x, windows = _clip_inputs(mode, clips, embeddings, pose_h5)
            clip_probs = cls.predict_clips(fitted, x)
        probs = cls.clips_to_frames(clip_probs, windows, n_frames, smoothing_frames)
    cls.write_behavior_csv(behavior, probs, fps, behaviors)
    y = probs.argmax(axis=1)
    ev = cls.frames_to_events(y, fps, behaviors)
    _write_tsv_csv(ev, events)
    export.write_nwb(nwb, y, fps, behaviors, subject=subject, session=session, probs=probs)


def _write_tsv_csv(df: pd.DataFrame, path: str) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")


def _read_behavior(path: str, behaviors: list[str]) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(path)
    cols = ["p_other"] + [f"p_{b}" for b in behaviors]
    vocab = ["other", *behaviors]
    y = df["label"].map({b: i for i, b in enumerate(vocab)}).to_numpy()
    return y, df[cols].to_numpy()


def evaluate(
    behavior: list[str],
    labels: list[str],
    metrics: str,
    confusion: str,
    behaviors: list[str],
    split: str,
) -> None:
    """Per-class precision, recall, F1 and AP of one mode against the labels."""
    from . import annotations as ann
    from . import metrics as met

    yt, yp, pr = [], [], []
    for b, lb in zip(behavior, labels, strict=True):
        y_pred, probs = _read_behavior(b, behaviors)
        yt.append(ann.read_labels(lb, behaviors))
        yp.append(y_pred)
        pr.append(probs)
    y_true, y_pred, probs = np.concatenate(yt), np.concatenate(yp), np.concatenate(pr)
    table = met.per_class_metrics(y_true, y_pred, probs, behaviors).assign(
        evaluated_on=split, n_sessions=len(behavior)
    )
    _write_tsv(table, metrics)
    cm = met.confusion(y_true, y_pred, len(behaviors) + 1)
    met.plot_confusion(cm, ["other", *behaviors], confusion)


def compare(metrics: list[str], stage1: list[str], table: str, pairs: list) -> None:
    """One row per setup x mode: the seed experiment's comparison table."""
    from . import metrics as met

    by_setup: dict[str, dict] = {}
    for (setup, mode), path in zip(pairs, metrics, strict=True):
        by_setup.setdefault(setup, {})[mode] = pd.read_csv(path, sep="\t")
    rows = []
    for setup, tables in by_setup.items():
        rows.append(met.comparison_table(tables).assign(setup=setup))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    for path in stage1:  # stage-1 localization: action vs other, and proposal cost
        s1 = pd.read_csv(path, sep="\t")
        loc = s1[s1["table"] == "localization"].iloc[0]
        row = {
            "mode": "stage1 localization",
            "setup": Path(path).parent.name,
            "macro_f1": loc["f1"],
            "mAP": loc["ap"],
            "proposal_recall": loc["proposal_recall"],
            "coverage": loc["coverage"],
        }
        out = pd.concat([out, pd.DataFrame([row])], ignore_index=True)
    first = ["setup", "mode", "macro_f1", "mAP"]
    out = out[first + [c for c in out.columns if c not in first]]
    _write_tsv(out, table)


# ---------------------------------------------------------------- cohort
def _sheet_rows(sheet: list[dict]) -> dict[str, dict]:
    return {f"{r['subject']}/{r['session']}": r for r in sheet}


def summarize(
    behavior: list[str],
    table: str,
    plot: str,
    session_keys: list[str],
    sheet: list[dict],
    behaviors: dict,
) -> None:
    """Time budget, bouts and latency per subject x session x behavior."""
    from . import summary

    rows = _sheet_rows(sheet)
    parts = []
    for k, path in zip(session_keys, behavior, strict=True):
        r = rows[k]
        vocab = behaviors[r["setup"]]
        y, _ = _read_behavior(path, vocab)
        df = pd.read_csv(path, usecols=["time_s"])
        fps = 1.0 / np.median(np.diff(df["time_s"])) if len(df) > 1 else 1.0
        parts.append(
            summary.behavior_summary(y, fps, vocab).assign(
                subject=r["subject"], session=r["session"], setup=r["setup"], group=r["group"]
            )
        )
    out = pd.concat(parts, ignore_index=True)
    first = ["subject", "session", "setup", "group"]
    out = out[first + [c for c in out.columns if c not in first]]
    _write_tsv(out, table)
    summary.plot_group_comparison(out, plot)


def discover(
    embeddings: list[str],
    descriptions: list[str],
    pose: list[str],
    labels: list[str],
    clusters: str,
    usage: str,
    novel: str,
    stats: str,
    plot: str,
    session_keys: list[str],
    sheet: list[dict],
    labelled: list[bool],
    behaviors: dict,
    cfg: dict,
) -> None:
    """Cluster all clips of the cohort, name clusters, flag candidate new behaviors."""
    from . import annotations as ann
    from . import discover as disc
    from .classify import clip_labels

    rows = _sheet_rows(sheet)
    emb, recs, y_clip = [], [], []
    label_iter = iter(labels)
    items = zip(session_keys, embeddings, descriptions, pose, labelled, strict=True)
    for k, e, d, pose_h5, has in items:
        r = rows[k]
        x = _embeddings(e)
        texts = [json.loads(line) for line in Path(d).read_text().splitlines() if line.strip()]
        with h5py.File(e, "r") as f:
            starts, ends = f["start_frame"][()], f["end_frame"][()]
        if has:
            lb = next(label_iter)
            win = _session_windows(e, pose_h5)
            y = clip_labels(ann.read_labels(lb, behaviors[r["setup"]]), win)
        else:
            y = np.full(len(x), -2)
        for i in range(len(x)):
            recs.append(
                {
                    "subject": r["subject"],
                    "session": r["session"],
                    "setup": r["setup"],
                    "group": r["group"],
                    "clip": i,
                    "start_frame": int(starts[i]),
                    "end_frame": int(ends[i]),
                    "description": texts[i]["text"] if i < len(texts) else "",
                }
            )
        emb.append(x)
        y_clip.append(y)
    # clusters are cohort-wide: embeddings are not standardised per session, which would
    # erase real differences between sessions and groups (setups with different prompts
    # tend to fall into different clusters, which the report shows)
    x = np.concatenate(emb) if emb else np.zeros((0, 1))
    df = pd.DataFrame(recs)
    cl = disc.cluster_embeddings(
        x,
        seed=int(cfg.get("seed", 0)),
        n_components=int(cfg.get("n_components", 8)),
        min_cluster_size=int(cfg.get("min_cluster_size", 5)),
    )
    df["cluster"] = cl
    names = disc.name_clusters(cl, df["description"].tolist() if len(df) else [])
    df["cluster_name"] = [names.get(c, "noise") for c in cl]
    y_all = np.concatenate(y_clip) if y_clip else np.zeros(0, int)
    df["clip_label"] = y_all
    _write_tsv(df, clusters)
    cand = disc.flag_novel(cl, y_all, float(cfg.get("max_labelled_fraction", 0.2)))
    cand["name"] = cand["cluster"].map(names)
    _write_tsv(cand, novel)
    use = (
        disc.cluster_usage(df[df.cluster >= 0])
        if (df.get("cluster", pd.Series()) >= 0).any()
        else (pd.DataFrame(columns=["subject", "session", "group", "cluster", "n", "fraction"]))
    )
    _write_tsv(use, usage)
    _write_tsv(disc.compare_groups(use) if len(use) else pd.DataFrame(columns=["cluster"]), stats)
    disc.plot_usage(use, names, plot)
    log.info(
        "%d clips, %d clusters, %d candidates",
        len(df),
        len(names),
        int(cand["candidate_new_behavior"].sum()) if len(cand) else 0,
    )


def report(
    behavior: list[str],
    qc: list[str],
    summary: str,
    group_plot: str,
    html: str,
    session_keys: list[str],
    sheet: list[dict],
    behaviors: dict,
    demo_model: bool,
    model: str,
    comparison: str | None = None,
    metrics: list[str] | None = None,
    confusion: list[str] | None = None,
    clusters: str | None = None,
    novel: str | None = None,
    usage_plot: str | None = None,
    clips: list[str] | None = None,
    pose: list[str] | None = None,
) -> None:
    """The self-contained HTML report of the cohort."""
    import base64

    from . import report as rep

    rows = _sheet_rows(sheet)
    banners = []
    if demo_model:
        banners.append(
            f"<b>Random demo model.</b> Stage 2 used <code>{model}</code>, a tiny "
            "random-weight Qwen2.5-VL built offline: its embeddings, descriptions and "
            "in-context answers carry no meaning. Set <code>vlm.model</code> to a real "
            "checkpoint for real results."
        )
    rule_based = [k for k, r in rows.items() if r["annotations"].startswith("rule:")]
    if rule_based:
        banners.append(
            "<b>Rule-based labels.</b> Sessions " + ", ".join(rule_based) + " are labelled "
            "by a kinematic rule on pose (see config/README.md), not by people: their "
            "metrics measure agreement with that rule, not with ground truth."
        )
    sections = []
    sheet_df = pd.DataFrame(sheet)
    sheet_df["labels"] = [
        "rule-based" if a.startswith("rule:") else ("human" if a else "none")
        for a in sheet_df["annotations"]
    ]
    sections.append(("Cohort", rep.table_html(sheet_df.drop(columns=["annotations"]))))

    etho = []
    by_key = dict(zip(session_keys, behavior, strict=True))
    for setup in dict.fromkeys(r["setup"] for r in rows.values()):
        keys = [k for k in session_keys if rows[k]["setup"] == setup]
        tracks, fps = {}, 1.0
        for k in keys:
            df = pd.read_csv(by_key[k])
            vocab = ["other", *behaviors[setup]]
            tracks[k] = df["label"].map({b: i for i, b in enumerate(vocab)}).to_numpy(float)
            if len(df) > 1:
                fps = 1.0 / float(df["time_s"].iloc[1] - df["time_s"].iloc[0])
        png = rep.plot_ethogram(tracks, fps, behaviors[setup])
        etho.append(f"<h3>{setup}</h3>" + rep._img(png, f"ethogram {setup}"))
    sections.append(("Ethograms (primary classifier)", "\n".join(etho)))

    qc_rows = []
    for k, path in zip(session_keys, qc, strict=True):
        t = pd.read_csv(path, sep="\t")
        qc_rows.append(
            {
                "session": k,
                "mean missing": t["missing_fraction"].mean(),
                "max missing": t["missing_fraction"].max(),
                "repaired": t["repaired_fraction"].mean(),
                "longest gap (frames)": int(t["longest_gap"].max()),
                "suspected swap frames": int(t["swap_frames"].max()),
            }
        )
    sections.append(("Pose quality", rep.table_html(pd.DataFrame(qc_rows))))

    if comparison:
        body = rep.table_html(pd.read_csv(comparison, sep="\t"))
        for m, c in zip(metrics or [], confusion or [], strict=True):
            name = f"{Path(m).parent.name} / {Path(m).stem}"
            body += f"<h3>{name}</h3>" + rep.table_html(pd.read_csv(m, sep="\t"))
            body += rep._img(Path(c).read_bytes(), f"confusion {name}")
        sections.append(("Evaluation", body))

    budget = pd.read_csv(summary, sep="\t")
    sections.append(
        (
            "Time budgets",
            rep.table_html(budget, 200) + rep._img(Path(group_plot).read_bytes(), "groups"),
        )
    )

    if clips:
        ex = []
        video_keys = [k for k in session_keys if rows[k]["video"]]
        for k, c, pose_h5 in zip(video_keys, clips, pose, strict=True):
            lab = pd.read_csv(by_key[k])["label"].to_numpy()
            win = _session_windows(c, pose_h5)
            starts, ends = win.start_frame.to_numpy(), win.end_frame.to_numpy()
            with h5py.File(c, "r") as f:
                for b in behaviors[rows[k]["setup"]]:
                    hit = [
                        i
                        for i in range(len(starts))
                        if (lab[max(0, starts[i]) : ends[i]] == b).mean() > 0.5
                    ]
                    if hit:
                        thumbs = rep.thumbnails(f["frames"][hit[0]])
                        imgs = "".join(
                            f'<img src="data:image/png;base64,{base64.b64encode(t).decode()}">'
                            for t in thumbs
                        )
                        ex.append(
                            f"<p><b>{b}</b> — {k}, clip {hit[0]}</p>"
                            f'<div class="thumbs">{imgs}</div>'
                        )
        sections.append(("Example clips per behavior", "\n".join(ex) or "<p>none</p>"))

    if clusters:
        cl = pd.read_csv(clusters, sep="\t")
        body = rep.table_html(
            cl.groupby(["cluster", "cluster_name"]).size().rename("clips").reset_index()
        )
        body += "<h3>Candidate new behaviors</h3>" + rep.table_html(pd.read_csv(novel, sep="\t"))
        cols = ["subject", "session", "clip", "cluster", "description"]
        body += "<h3>Clip descriptions</h3>" + rep.table_html(cl[cols], 40)
        body += rep._img(Path(usage_plot).read_bytes(), "cluster usage")
        sections.append(("Discovery: clusters of clip embeddings", body))

    rep.render_html(html, "ethoflow report", sections, banners)
