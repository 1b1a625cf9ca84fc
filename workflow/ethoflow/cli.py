"""``ethoflow`` command line: small helpers around the Snakemake workflow."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def install_profile(name: str = "slurm", force: bool = False) -> Path:
    """Link ``profiles/<name>`` into ``~/.config/snakemake/<name>`` so that
    ``snakemake --profile <name>`` finds it from anywhere."""
    src = REPO / "profiles" / name
    if not (src / "config.yaml").is_file():
        raise SystemExit(f"{src}: no profile config.yaml")
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "snakemake"
    base.mkdir(parents=True, exist_ok=True)
    dest = base / name
    if dest.is_symlink() or dest.exists():
        if dest.resolve() == src.resolve():
            return dest
        if not force:
            raise SystemExit(f"{dest} exists and is not this profile (use --force)")
        dest.unlink() if dest.is_symlink() or dest.is_file() else None
    dest.symlink_to(src, target_is_directory=True)
    return dest


def make_cohort(template: Path, n_sessions: int, out: Path) -> Path:
    """A sheet of ``n_sessions`` rows cycling through the template's rows (scale tests)."""
    base = pd.read_csv(template, sep="\t", dtype=str, keep_default_na=False)
    rows = []
    for i in range(n_sessions):
        r = base.iloc[i % len(base)].copy()
        r["subject"] = f"s{i // 4:05d}"
        r["session"] = f"{r['session']}_{i % 4}"
        rows.append(r)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, sep="\t", index=False)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ethoflow", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install-profile", help="link profiles/slurm for `--profile slurm`")
    p.add_argument("--name", default="slurm")
    p.add_argument("--force", action="store_true")
    c = sub.add_parser("make-cohort", help="replicate a sheet to N sessions (scale tests)")
    c.add_argument("template", type=Path)
    c.add_argument("n", type=int)
    c.add_argument("out", type=Path)
    s = sub.add_parser("sheet", help="pair the videos and pose files of folders into a sheet")
    s.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    s.add_argument("-o", "--out", type=Path, required=True, help="the sheet to write (.tsv)")
    s.add_argument("--metadata", type=Path, help="CSV: video (stem or path), subject, ...")
    s.add_argument("--setup", default="", help="setup of every row the metadata leaves empty")
    s.add_argument("--split", default="predict", choices=("train", "test", "predict"))
    s.add_argument(
        "--prefer",
        default="",
        help="comma-separated pose kinds that break ties (dlc, dlc_filtered, sleap_predictions, "
        "sleap_analysis, sleap_labels, lightning_pose, nwb)",
    )
    s.add_argument("--no-video-info", action="store_true", help="do not read fps/frame counts")
    s.add_argument("--threads", type=int, default=8, help="threads reading video headers")
    e = sub.add_parser("estimate", help="clips, GPU-hours and SLURM hours of the VLM stage")
    e.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    e.add_argument(
        "--coverage",
        type=float,
        default=0.3,
        help="fraction of a session's duration in clips, for sessions without stage-1 "
        "proposals (default 0.3)",
    )
    e.add_argument("--results", type=Path, default=Path("results"))
    e.add_argument("--from-sheet", action="store_true", help="ignore stage-1 proposals")
    e.add_argument("--model", default=None, help="model of the speed table (default: vlm.model)")
    r = sub.add_parser("review", help="web app to check and correct predicted bouts")
    r.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    r.add_argument("--port", type=int, default=8765)
    r.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost)")
    r.add_argument("--reviewer", default="", help="name saved with corrections (default: $USER)")
    args = ap.parse_args(argv)
    if args.cmd == "install-profile":
        print(install_profile(args.name, args.force))
    elif args.cmd == "sheet":
        return sheet_command(args)
    elif args.cmd == "estimate":
        return estimate_command(args)
    elif args.cmd == "review":
        return review_command(args)
    else:
        print(make_cohort(args.template, args.n, args.out))
    return 0


def sheet_command(args) -> int:
    """``ethoflow sheet``: write the sheet unless a pairing is ambiguous; report the rest."""
    from .errors import InputError
    from .folders import build_sheet, write_sheet

    prefer = tuple(k.strip() for k in args.prefer.split(",") if k.strip())
    try:
        df, rep = build_sheet(
            args.dirs,
            metadata=args.metadata,
            setup=args.setup,
            split=args.split,
            prefer=prefer,
            video_info=not args.no_video_info,
            threads=args.threads,
        )
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in rep.lines():
        print(line, file=sys.stderr)
    if rep.errors:
        print(f"error: {args.out} not written: resolve the ERROR lines above", file=sys.stderr)
        return 1
    write_sheet(df, args.out)
    print(f"{args.out}: {len(df)} sessions", file=sys.stderr)
    return 0


def review_command(args) -> int:
    """``ethoflow review``: serve the review app over the run in the current directory."""
    import getpass

    from .errors import InputError
    from .review.app import serve
    from .review.store import open_run

    try:
        store = open_run(args.config, reviewer=args.reviewer or getpass.getuser())
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    serve(store, host=args.host, port=args.port)
    return 0


def load_config(path: Path) -> dict:
    """A config file checked and completed exactly as the workflow does it: unknown keys and
    bad values are errors, and the schema's defaults are filled in."""
    import yaml
    from snakemake.utils import validate

    from .config import SCHEMA, check_config

    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    check_config(cfg, source=str(path))
    validate(cfg, str(SCHEMA))
    return cfg


def estimate_command(args) -> int:
    """``ethoflow estimate``: the VLM stage's cost per GPU kind, and the budget's trade-off."""
    from . import estimate as est
    from .errors import InputError
    from .sheet import read_sheet

    if not 0 <= args.coverage <= 1:
        print("error: --coverage must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
        sheet = read_sheet(cfg["sessions"])
        sheet.index = sheet["subject"] + "/" + sheet["session"]
        clips = est.cohort_clips(cfg, sheet, args.coverage, args.results, not args.from_sheet)
        table = est.read_throughput()
        model = args.model or est.model_key(cfg["vlm"]["model"], table)
        out = est.estimate(cfg, clips, table=table, model=model)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(est.format_estimate(out, clips, model))
    budget_h = cfg["vlm"]["budget_gpu_hours"]
    if budget_h is not None and len(clips) and (clips["source"] == "proposals").all():
        from .budget import cohort_inputs, tradeoff

        windows, p_action = cohort_inputs(cfg, list(clips.index), args.results)
        cost = est.seconds_per_clip(cfg, table=table)
        t = tradeoff(windows, p_action, cost, budget_h * 3600)
        gpu = est.gpu_kind(cfg, table)
        for name, (covered, hours) in t.items():
            print(
                f"{name.replace('_', ' ')} ({gpu}): {covered:.1%} of the expected action "
                f"frames in clips, {hours:.2f} GPU-h"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
