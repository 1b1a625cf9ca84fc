"""The cohort HTML report: one self-contained file (images embedded)."""

from __future__ import annotations

import base64
import html
import io
import os

import numpy as np
import pandas as pd

from .atomic import atomic_path

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

    vocab = ["other", *behaviors]
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
