"""The cohort HTML report: one self-contained file (images embedded)."""

from __future__ import annotations

import base64
import html
import io
import os

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .vocab import classes

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2}.banner{background:#fff3cd;border:1px solid #e0c36b;padding:.7em 1em;
margin:1em 0}img{max-width:100%}.thumbs img{height:90px;margin:2px}
"""


def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def plot_ethogram(
    tracks: dict[str, np.ndarray], fps: float, behaviors: list[str], path=None
) -> bytes:
    """One row per track (session or mode), one colour per behavior, time in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    vocab = classes(behaviors)
    colours = ["#eeeeee", *plt.get_cmap("tab10").colors[: len(behaviors)]]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(tracks) + 1.2))
    n = max(len(v) for v in tracks.values())
    grid = np.full((len(tracks), n), np.nan)
    for i, y in enumerate(tracks.values()):
        grid[i, : len(y)] = y
    ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(colours),
        vmin=-0.5,
        vmax=len(vocab) - 0.5,
        extent=(0, n / fps, len(tracks) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(tracks)), list(tracks))
    ax.set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours]
    ax.legend(
        handles,
        vocab,
        ncol=len(vocab),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    png = _fig_png(fig)
    plt.close(fig)
    if path is not None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)
    return png


def thumbnails(frames: np.ndarray, n: int = 4) -> list[bytes]:
    """PNG thumbnails of ``n`` frames spread over one clip ``[F,H,W,3]``."""
    from PIL import Image

    out = []
    for i in np.linspace(0, len(frames) - 1, min(n, len(frames))).astype(int):
        buf = io.BytesIO()
        Image.fromarray(frames[i]).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def table_html(df: pd.DataFrame, max_rows: int = 60) -> str:
    return df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0)


def render_html(
    out_path: str | os.PathLike, title: str, sections: list[tuple[str, str]], banners: list[str]
) -> None:
    """Write the report from (heading, html body) sections and warning banners."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f'<div class="banner">{b}</div>' for b in banners]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{body}")
    parts.append("</body></html>")
    with atomic_path(out_path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")


def _banners(sheet: pd.DataFrame, demo_model: bool, model: str) -> list[str]:
    out = []
    if demo_model:
        out.append(
            f"<b>Random demo model.</b> Stage 2 used <code>{html.escape(model)}</code>, a tiny "
            "random-weight Qwen2.5-VL built offline: its embeddings, descriptions and "
            "in-context answers carry no meaning. Set <code>vlm.model</code> to a real "
            "checkpoint for real results."
        )
    keys = sheet["subject"] + "/" + sheet["session"]
    rule_based = keys[sheet["annotations"].str.startswith("rule:")].tolist()
    if rule_based:
        out.append(
            "<b>Rule-based labels.</b> Sessions " + ", ".join(rule_based) + " are labelled "
            "by a kinematic rule on pose (see config/README.md), not by people: their "
            "metrics measure agreement with that rule, not with ground truth."
        )
    return out


def qc_table(qc: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per session of the per-keypoint QC tables."""
    rows = []
    for k, t in qc.items():
        rows.append(
            {
                "session": k,
                "mean missing": t["missing_fraction"].mean(),
                "max missing": t["missing_fraction"].max(),
                "repaired": t["repaired_fraction"].mean(),
                "longest gap (frames)": int(t["longest_gap"].max()),
                "suspected swap frames": int(t["swap_frames"].max()),
            }
        )
    return pd.DataFrame(rows)


def example_clips(
    labels: np.ndarray, windows: pd.DataFrame, behaviors: list[str], frames_of
) -> list[tuple[str, int, list[bytes]]]:
    """For each behavior, the first clip whose window is mostly that label (per-frame
    label names ``labels``): ``(behavior, clip, thumbnails)``; ``frames_of(i)`` reads one
    clip's frames."""
    starts, ends = windows.start_frame.to_numpy(), windows.end_frame.to_numpy()
    out = []
    for b in behaviors:
        hit = [
            i for i in range(len(starts)) if (labels[max(0, starts[i]) : ends[i]] == b).mean() > 0.5
        ]
        if hit:
            out.append((b, hit[0], thumbnails(frames_of(hit[0]))))
    return out


def stage1_section(logs: dict[str, dict]) -> str:
    """Per setup: the stage-1 candidates with their validation scores and the choice, the
    tuned post-processing, the proposal thresholds, and recall against the share of video
    sent to the GPU (validation predictions; ``logs``: setup -> training log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    body = []
    for setup, lg in logs.items():
        cands = pd.DataFrame(
            [
                {"candidate": c, "validation macro F1": f, "chosen": c == lg.get("choice")}
                | {f"F1 {b}": v for b, v in lg.get("candidate_behaviors", {}).get(c, {}).items()}
                for c, f in lg.get("candidates", {}).items()
            ]
        )
        part = (
            f"<h3>{html.escape(setup)}</h3><p>validation: {html.escape(lg.get('validation', ''))}"
        )
        part += f", {lg.get('folds', '')} folds</p>" + table_html(cands)
        post = lg.get("postprocess", {}).get("rules")
        if post:
            part += "<p>post-processing (tuned on validation)</p>"
            part += table_html(pd.DataFrame([{"behavior": b, **r} for b, r in post.items()]))
        pr = lg.get("proposals")
        if pr:
            part += f"<p>proposal thresholds for validation recall {pr['target_recall']:g}: "
            part += f"recall {pr['recall']:.3f} of action frames, {pr['coverage']:.1%} of the "
            part += f"video in proposals, {pr['clip_coverage']:.1%} in clips</p>"
            part += table_html(
                pd.DataFrame([{"behavior": b, **v} for b, v in pr["behaviors"].items()])
            )
            fig, ax = plt.subplots(figsize=(5, 3.2))
            for b, c in pr["curves"].items():
                ax.plot(c["coverage"], c["recall"], ".-", ms=3, label=b)
            cv = pr["curve"]
            ax.plot(cv["clip_coverage"], cv["recall"], "k--", label="all (clips)")
            ax.plot([pr["clip_coverage"]], [pr["recall"]], "ko")
            ax.set(xlabel="share of video sent to the GPU", ylabel="recall", xlim=(0, 1))
            ax.set(ylim=(0, 1.02), title=f"{setup}: stage-1 validation")
            ax.legend(fontsize=7)
            fig.tight_layout()
            part += _img(_fig_png(fig), f"recall vs coverage {setup}")
            plt.close(fig)
        body.append(part)
    return "\n".join(body)


def budget_section(tradeoff: pd.DataFrame) -> str:
    """The GPU budget (``results/budget/tradeoff.tsv``, ``budget.tradeoff_table``): hours
    budgeted against the hours of every proposed clip, clips kept of all, and the expected
    recall (share of the stage-1 action mass inside the clips sent) given up for the hours
    saved; then the table, with the other budgets it lists."""
    rows = tradeoff.set_index("budget")
    if "none" not in rows.index or "chosen" not in rows.index:
        return "<p>no trade-off table</p>"
    every, chosen = rows.loc["none"], rows.loc["chosen"]
    body = (
        f"<p>Budget <b>{chosen.budget_gpu_hours:.3g} GPU-h</b> against "
        f"<b>{every.gpu_hours:.3g} GPU-h</b> for every proposed clip: "
        f"<b>{int(chosen.clips)} of {int(every.clips)}</b> clips sent to the VLM "
        f"({chosen.gpu_hours:.3g} GPU-h). Expected recall (stage-1 action probability mass "
        f"inside the clips sent, of the cohort's total): <b>{chosen.recall:.1%}</b> against "
        f"{every.recall:.1%} without a budget, i.e. <b>{chosen.recall_given_up:.1%}</b> "
        f"given up for <b>{chosen.hours_saved:.3g} GPU-h</b> saved. Clips are chosen by an "
        "integer program (PuLP/CBC) over the whole cohort; GPU hours use the configured "
        "seconds per clip (the speed table's figures are estimates).</p>"
    )
    return body + table_html(tradeoff)


def build_report(
    out_path: str | os.PathLike,
    *,
    sheet: pd.DataFrame,
    ethograms: dict[str, tuple[dict[str, np.ndarray], float, list[str]]],
    qc: dict[str, pd.DataFrame],
    budget: pd.DataFrame,
    group_plot: bytes,
    demo_model: bool,
    model: str,
    comparison: pd.DataFrame | None = None,
    metrics: list[tuple[str, pd.DataFrame, bytes]] = (),
    examples: list[tuple[str, str, int, list[bytes]]] | None = None,
    clusters: pd.DataFrame | None = None,
    candidates: pd.DataFrame | None = None,
    usage_plot: bytes | None = None,
    failed: pd.DataFrame | None = None,
    stage1_logs: dict[str, dict] | None = None,
    budget_tradeoff: pd.DataFrame | None = None,
) -> None:
    """The self-contained HTML report of a cohort.

    ``sheet`` has the sheet's ``subject, session, setup, group, annotations, video``;
    ``ethograms`` maps a setup to ``(tracks {session: label codes}, fps, behaviors)``;
    ``metrics`` holds ``(name, table, confusion png)``; ``examples`` holds
    ``(session, behavior, clip, thumbnails)``.
    """
    sections = []
    shown = sheet.copy()
    shown["labels"] = [
        "rule-based" if a.startswith("rule:") else ("human" if a else "none")
        for a in shown["annotations"]
    ]
    sections.append(("Cohort", table_html(shown.drop(columns=["annotations"]))))
    if failed is not None and len(failed):
        body = (
            f"<p><b>{failed[['subject', 'session']].drop_duplicates().shape[0]} session(s)"
            " failed</b> and are left out of every table below (from "
            "<code>results/failed_sessions.tsv</code>). Fix the file named in the reason and "
            "rerun: only that session and the cohort tables run again.</p>"
        )
        sections.append(("Failed sessions", body + table_html(failed)))
    etho = [
        f"<h3>{setup}</h3>" + _img(plot_ethogram(tracks, fps, behaviors), f"ethogram {setup}")
        for setup, (tracks, fps, behaviors) in ethograms.items()
    ]
    sections.append(("Ethograms (primary classifier)", "\n".join(etho)))
    sections.append(("Pose quality", table_html(qc_table(qc))))
    if comparison is not None:
        body = (
            "<p>Mode <b>kinematic</b> is the baseline: the speed rule labs use today "
            "(smoothed keypoint speed under or over a threshold for a minimum bout, tuned on "
            "the train split). A learned mode pays where it beats that row.</p>"
        )
        body += table_html(comparison)
        for name, table, png in metrics:
            body += f"<h3>{name}</h3>" + table_html(table) + _img(png, f"confusion {name}")
        sections.append(("Evaluation", body))
    if stage1_logs:
        sections.append(("Stage 1: model choice and proposals", stage1_section(stage1_logs)))
    if budget_tradeoff is not None:
        sections.append(("GPU budget", budget_section(budget_tradeoff)))
    sections.append(("Time budgets", table_html(budget, 200) + _img(group_plot, "groups")))
    if examples is not None:
        ex = []
        for k, b, clip, thumbs in examples:
            imgs = "".join(
                f'<img src="data:image/png;base64,{base64.b64encode(t).decode()}">' for t in thumbs
            )
            ex.append(f'<p><b>{b}</b> — {k}, clip {clip}</p><div class="thumbs">{imgs}</div>')
        sections.append(("Example clips per behavior", "\n".join(ex) or "<p>none</p>"))
    if clusters is not None:
        body = table_html(
            clusters.groupby(["cluster", "cluster_name"]).size().rename("clips").reset_index()
        )
        body += "<h3>Candidate new behaviors</h3>" + table_html(candidates)
        cols = ["subject", "session", "clip", "cluster", "description"]
        body += "<h3>Clip descriptions</h3>" + table_html(clusters[cols], 40)
        body += _img(usage_plot, "cluster usage")
        sections.append(("Discovery: clusters of clip embeddings", body))
    render_html(out_path, "ethoflow report", sections, _banners(sheet, demo_model, model))
