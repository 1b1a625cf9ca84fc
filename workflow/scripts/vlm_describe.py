"""Snakemake entry point of rule vlm_describe: all logic is in ethoflow.steps.vlm_describe."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "vlm_describe")  # noqa: F821
