"""Snakemake entry point of rule labels: all logic is in ethoflow.steps.labels."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "labels")  # noqa: F821
