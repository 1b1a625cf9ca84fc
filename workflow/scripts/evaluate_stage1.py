"""Rule evaluate_stage1: calls ethoflow.steps.localize.evaluate_stage1."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "evaluate_stage1")  # noqa: F821
