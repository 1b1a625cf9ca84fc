"""Snakemake entry point of rule train_classifier (logic: ethoflow.steps)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "train_classifier")  # noqa: F821
