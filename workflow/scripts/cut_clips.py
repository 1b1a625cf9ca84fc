"""Snakemake entry point of rule cut_clips: all logic is in ethoflow.steps.cut_clips."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "cut_clips")  # noqa: F821
