"""Steps of ``rules/cohort.smk``: comparison table, time budgets, discovery, the report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .. import results
from ..classifiers import clip_labels
from ..clustering import discover as discover_clusters
from ..clustering import plot_usage
from ..metrics import cohort_comparison
from ..report_html import build_report, example_clips
from ..summary import bouts_table, cohort_summary, plot_group_comparison
from ..vocab import classes

log = logging.getLogger("ethoflow")


def _rows(sheet: list[dict]) -> dict[str, dict]:
    return {f"{r['subject']}/{r['session']}": r for r in sheet}


def compare(metrics: list[str], stage1: list[str], table: str, pairs: list) -> None:
    """One row per setup x mode: the seed experiment's comparison table."""
    mode_tables = {
        tuple(pair): results.read_table(path) for pair, path in zip(pairs, metrics, strict=True)
    }
    stage1_tables = {Path(p).parent.name: results.read_table(p) for p in stage1}
    results.write_table(cohort_comparison(mode_tables, stage1_tables), table)


def summarize(
    behavior: list[str],
    events: list[str],
    table: str,
    plot: str,
    bouts: str,
    session_keys: list[str],
    event_keys: list,
    sheet: list[dict],
    behaviors: dict,
) -> None:
    """Time budget, bouts and latency per subject x session x behavior (primary mode), and
    the tidy table of every bout of every mode."""
    rows = _rows(sheet)
    session_keys, behavior = results.usable(session_keys, behavior)
    event_keys, events = results.usable(event_keys, events)
    sessions = []
    for k, path in zip(session_keys, behavior, strict=True):
        r = rows[k]
        vocab = behaviors[r["setup"]]
        b = results.read_behavior(path, vocab)
        sessions.append({**r, "labels": b["labels"], "fps": b["fps"], "behaviors": vocab})
    out = cohort_summary(sessions)
    results.write_table(out, table)
    plot_group_comparison(out, plot)
    every = [
        {**rows[k], "mode": m, "events": results.read_events(path)}
        for (k, m), path in zip(event_keys, events, strict=True)
    ]
    results.write_table(bouts_table(every), bouts)


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
    rows = _rows(sheet)
    label_iter = iter(labels)
    label_of = [next(label_iter) if has else None for has in labelled]
    columns = results.usable(session_keys, embeddings, descriptions, pose, label_of)
    sessions = []
    for k, e, d, pose_h5, label_path in zip(*columns, strict=True):
        r = rows[k]
        emb = results.read_embeddings(e)
        n = len(emb["embeddings"])
        if label_path is not None:
            y = results.read_labels(label_path, behaviors[r["setup"]])
            clip_y = clip_labels(y, results.read_clip_windows(e, pose_h5))
        else:
            clip_y = np.full(n, -2)
        sessions.append(
            {
                **r,
                "embeddings": emb["embeddings"],
                "start_frame": emb["start_frame"],
                "end_frame": emb["end_frame"],
                "descriptions": [t["text"] for t in results.read_descriptions(d)],
                "clip_labels": clip_y,
            }
        )
    out = discover_clusters(sessions, cfg)
    results.write_table(out["clusters"], clusters)
    results.write_table(out["candidates"], novel)
    results.write_table(out["usage"], usage)
    results.write_table(out["group_tests"], stats)
    plot_usage(out["usage"], out["names"], plot)
    cand = out["candidates"]
    log.info(
        "%d clips, %d clusters, %d candidates",
        len(out["clusters"]),
        len(out["names"]),
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
    failed: str | None = None,
    stage1_logs: list[str] | None = None,
    comparison: str | None = None,
    metrics: list[str] | None = None,
    confusion: list[str] | None = None,
    clusters: str | None = None,
    novel: str | None = None,
    usage_plot: str | None = None,
    clips: list[str] | None = None,
    pose: list[str] | None = None,
    budget_tradeoff: str | None = None,
) -> None:
    """The self-contained HTML report of the cohort."""
    rows = _rows(sheet)
    session_keys, behavior, qc = results.usable(session_keys, behavior, qc)
    by_key = dict(zip(session_keys, behavior, strict=True))
    labels = {}  # label codes of every session's primary behavior table, read once
    ethograms = {}
    for setup in dict.fromkeys(r["setup"] for r in rows.values()):
        tracks, fps = {}, 1.0
        for k in (k for k in session_keys if rows[k]["setup"] == setup):
            b = results.read_behavior(by_key[k], behaviors[setup])
            labels[k], fps = b["labels"], b["fps"]
            tracks[k] = labels[k].astype(float)
        if tracks:  # else every session of the setup failed
            ethograms[setup] = (tracks, fps, behaviors[setup])
    examples = None
    if clips:
        examples = []
        video_keys = [k for k in rows if rows[k]["video"]]
        for k, c, pose_h5 in zip(*results.usable(video_keys, clips, pose), strict=True):
            if k not in labels:  # its primary mode failed
                continue
            vocab = classes(behaviors[rows[k]["setup"]])
            names = np.asarray(vocab)[labels[k]]
            found = example_clips(
                names,
                results.read_clip_windows(c, pose_h5),
                vocab[1:],
                lambda i, c=c: results.read_clip_frames(c, [i])[0],
            )
            examples += [(k, b, i, thumbs) for b, i, thumbs in found]
    build_report(
        html,
        sheet=pd.DataFrame(sheet),
        ethograms=ethograms,
        qc={k: results.read_table(p) for k, p in zip(session_keys, qc, strict=True)},
        budget=results.read_table(summary),
        group_plot=Path(group_plot).read_bytes(),
        demo_model=demo_model,
        model=model,
        comparison=results.read_table(comparison) if comparison else None,
        metrics=[
            (f"{Path(m).parent.name} / {Path(m).stem}", results.read_table(m), Path(c).read_bytes())
            for m, c in zip(metrics or [], confusion or [], strict=True)
        ],
        examples=examples,
        clusters=results.read_table(clusters) if clusters else None,
        candidates=results.read_table(novel) if novel else None,
        usage_plot=Path(usage_plot).read_bytes() if usage_plot else None,
        failed=results.read_table(failed) if failed else None,
        stage1_logs={
            Path(p).parent.name: json.loads(Path(p).read_text()) for p in stage1_logs or []
        },
        budget_tradeoff=results.read_table(budget_tradeoff) if budget_tradeoff else None,
    )


def failed_sessions(
    outputs: list[str], table: str, output_keys: list[str], sheet: list[dict], excluded: dict
) -> None:
    """``results/failed_sessions.tsv``: every session left out of the cohort, at the sheet
    check (``excluded``: key -> reason) or by a failure record among its final outputs."""
    rows = _rows(sheet)
    found: dict[tuple[str, str], list[str]] = {}
    for k, path in zip(output_keys, outputs, strict=True):
        reason = results.failed_reason(path)
        if reason is not None:
            found.setdefault((k, reason), []).append(Path(path).name)
    records = [
        {"key": k, "step": "sheet check", "reason": reason, "outputs_affected": "all"}
        for k, reason in excluded.items()
    ]
    for (k, reason), names in found.items():
        step = reason.split(":", 1)[0]
        records.append({"key": k, "step": step, "reason": reason, "outputs_affected": len(names)})
    table_rows = []
    for rec in records:
        subject, session = rec.pop("key").split("/", 1)
        setup = rows.get(f"{subject}/{session}", {}).get("setup", "")
        table_rows.append({"subject": subject, "session": session, "setup": setup, **rec})
    columns = ["subject", "session", "setup", "step", "reason", "outputs_affected"]
    results.write_table(pd.DataFrame(table_rows, columns=columns), table)
    for r in table_rows:
        log.warning(
            "failed session %s/%s (%s): %s", r["subject"], r["session"], r["step"], r["reason"]
        )
