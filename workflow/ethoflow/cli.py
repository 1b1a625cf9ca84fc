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
    args = ap.parse_args(argv)
    if args.cmd == "install-profile":
        print(install_profile(args.name, args.force))
    else:
        print(make_cohort(args.template, args.n, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
