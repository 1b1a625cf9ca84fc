"""Snakemake entry point of rule evaluate: all logic is in ethoflow.steps.evaluate."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "evaluate")  # noqa: F821
