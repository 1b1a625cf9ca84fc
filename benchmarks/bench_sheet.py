"""`ethoflow sheet` on a lab archive of 10,000 files: walk + pair, with and without video headers.

Generates ``--files`` files (default 10,000) laid out as a lab keeps them: ``cohort*/day*/``
folders of videos (links to the real demo mp4, so header reads parse a real container), each
with its tracking file in one of the conventions (DLC h5 + csv, DLC multi-animal filtered,
SLEAP ``.predictions.slp`` / ``.analysis.h5``, LightningPose ``video_preds/<key>.csv``, NWB),
DLC labelled videos and pickles, and a few unpaired files. Then times ``build_sheet`` with
``video_info=False`` (walk + pair only: the floor is 10,000 files in under 10 s) and with
headers read (PyAV, ``--threads``). Cold-cache figures need ``echo 3 > /proc/sys/vm/drop_caches``
between runs (root); the figures printed are warm-cache.
Usage: ``PYTHONPATH=workflow python benchmarks/bench_sheet.py [--files 10000] [--threads 8]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ethoflow.folders import build_sheet

DEMO_MP4 = Path(__file__).resolve().parents[1] / "tests/data/dlc_openfield/m3v1mp4.mp4"
SCORER = "DLC_resnet50_openfieldOct30shuffle1_200000"


def make_archive(root: Path, n_files: int) -> int:
    """Files of about ``n_files``; returns the number of videos."""
    made = videos = i = 0
    while made < n_files:
        cohort, day = f"cohort{i // 2000}", f"day{(i // 100) % 20:02d}"
        folder = root / cohort / day
        folder.mkdir(parents=True, exist_ok=True)
        key = f"m{i:05d}"
        video = folder / f"{key}.mp4"
        video.symlink_to(DEMO_MP4)
        files = []
        kind = i % 6
        if kind == 0:  # DLC h5 + csv of one analysis, its labelled video and meta pickle
            files = [f"{key}{SCORER}.h5", f"{key}{SCORER}.csv", f"{key}{SCORER}_labeled.mp4"]
            files.append(f"{key}{SCORER}_meta.pickle")
        elif kind == 1:
            files = [f"{key}{SCORER}_el_filtered.h5"]
        elif kind == 2:
            files = [f"{key}.mp4.predictions.slp"]
        elif kind == 3:
            files = [f"{key}.analysis.h5"]
        elif kind == 4:
            preds = folder / "video_preds"
            preds.mkdir(exist_ok=True)
            (preds / f"{key}.csv").touch()
            (preds / f"{key}_temporal_norm.csv").touch()
            made += 2
        else:
            files = [f"{key}.nwb"]
        for f in files:
            (folder / f).touch()
        made += 1 + len(files)
        videos += 1
        i += 1
    return videos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "archive"
        t = time.perf_counter()
        n_videos = make_archive(root, args.files)
        n_files = sum(1 for p in root.rglob("*") if not p.is_dir())
        print(f"generated {n_files} files ({n_videos} videos) in {time.perf_counter() - t:.1f} s")
        for info in (False, True):
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                df, rep = build_sheet([root], setup="lab", video_info=info, threads=args.threads)
                best = min(best, time.perf_counter() - t)
            assert len(df) == n_videos and not rep.errors, rep.lines()[:5]
            what = f"with video headers ({args.threads} threads)" if info else "walk + pair only"
            print(
                f"{what}: {best:.2f} s for {n_files} files, {len(df)} sessions "
                f"({1e3 * best / n_files:.3f} ms/file)"
            )


if __name__ == "__main__":
    main()
