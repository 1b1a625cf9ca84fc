"""Rule summarize: calls ethoflow.steps.cohort.summarize."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "summarize")  # noqa: F821
