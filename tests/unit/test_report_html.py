"""Ethogram PNG, thumbnails and the self-contained HTML report."""

import base64
import io
import re

import numpy as np
import pandas as pd
from PIL import Image

from ethoflow.report_html import (
    build_report,
    example_clips,
    plot_ethogram,
    qc_table,
    render_html,
    table_html,
    thumbnails,
)

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


def test_build_report_sections_from_a_cohort(tmp_path):
    sheet = pd.DataFrame(
        {
            "subject": ["m1", "m2"],
            "session": ["s1", "s1"],
            "setup": ["rig", "rig"],
            "group": ["a", "b"],
            "annotations": ["rule:kinematic", ""],
            "video": ["v.mp4", ""],
        }
    )
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    qc = pd.DataFrame(
        {
            "missing_fraction": [0.1, 0.3],
            "repaired_fraction": [0.05, 0.1],
            "longest_gap": [4, 9],
            "swap_frames": [0, 2],
        }
    )
    png = plot_ethogram({"x": y}, 30.0, BEHAVIORS)
    out = tmp_path / "r.html"
    build_report(
        out,
        sheet=sheet,
        ethograms={"rig": ({"m1/s1": y, "m2/s1": y}, 30.0, BEHAVIORS)},
        qc={"m1/s1": qc, "m2/s1": qc},
        budget=pd.DataFrame({"subject": ["m1"], "seconds": [1.0]}),
        group_plot=png,
        demo_model=True,
        model="demo:tiny",
    )
    text = out.read_text()
    assert "Random demo model" in text and "Rule-based labels" in text and "m1/s1" in text
    for heading in ("Cohort", "Ethograms", "Pose quality", "Time budgets"):
        assert f"<h2>{heading}" in text
    assert "Evaluation" not in text and "Discovery" not in text  # not given, not shown
    t = qc_table({"m1/s1": qc})
    assert t.loc[0, "max missing"] == 0.3 and t.loc[0, "longest gap (frames)"] == 9
    assert np.isclose(t.loc[0, "mean missing"], 0.2)


def test_example_clips_pick_the_first_mostly_labelled_window():
    labels = np.array(["other"] * 10 + ["attack"] * 10 + ["freeze"] * 10)
    windows = pd.DataFrame({"start_frame": [0, 8, 20], "end_frame": [10, 20, 30]})
    frames = np.zeros((3, 4, 8, 8, 3), np.uint8)
    found = example_clips(labels, windows, BEHAVIORS, lambda i: frames[i])
    assert [(b, i) for b, i, _ in found] == [("attack", 1), ("freeze", 2)]
