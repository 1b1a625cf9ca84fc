"""Snakemake entry point of rule pose_preprocess: all logic is in ethoflow.steps.pose_preprocess."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "pose_preprocess")  # noqa: F821
