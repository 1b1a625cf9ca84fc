"""Ethogram PNG, thumbnails and the self-contained HTML report."""

import base64
import io
import re

import numpy as np
import pandas as pd
from PIL import Image

from ethoflow.report import plot_ethogram, render_html, table_html, thumbnails

BEHAVIORS = ["attack", "freeze"]


def test_ethogram_colours_follow_labels(tmp_path):
    y = np.r_[np.zeros(100), np.ones(100), np.full(100, 2)].astype(int)
    png = plot_ethogram({"m1/s1": y, "m2/s1": y[::-1]}, 30.0, BEHAVIORS, tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes() == png
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    # the first track's row changes colour twice from left to right: three distinct colours
    h = img.shape[0]
    rows = img[int(h * 0.15) : int(h * 0.6)]
    colours = {tuple(c) for c in rows.reshape(-1, 3)[::7]}
    assert len(colours) >= 4  # background, other, two behaviors (plus text)


def test_report_is_self_contained_and_banners(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    thumbs = thumbnails(frames, n=3)
    assert len(thumbs) == 3
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(thumbs[-1]))), frames[-1])
    img = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(t).decode()}">' for t in thumbs
    )
    table = table_html(pd.DataFrame({"mode": ["pose", "linear"], "macro_f1": [0.5, 0.75]}))
    out = tmp_path / "r.html"
    banner = "Labels are rule-based, not ground truth"
    render_html(out, "ethoflow <demo>", [("Comparison", table), ("Clips", img)], [banner])
    text = out.read_text()
    assert "ethoflow &lt;demo&gt;" in text and banner in text
    assert text.index(banner) < text.index("Comparison")
    assert "<td>linear</td>" in text and "0.75" in text
    srcs = re.findall(r'src="([^"]+)"', text)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
