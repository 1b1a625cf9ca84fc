"""Snakemake entry point of rule vlm_embed: all logic is in ethoflow.steps.vlm_embed."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "vlm_embed")  # noqa: F821
