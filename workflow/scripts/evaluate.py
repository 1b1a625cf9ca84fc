"""Rule evaluate: calls ethoflow.steps.classify.evaluate."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "evaluate")  # noqa: F821
