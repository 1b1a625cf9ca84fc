"""Snakemake entry point of rule vlm_icl: all logic is in ethoflow.steps.vlm_icl."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "vlm_icl")  # noqa: F821
