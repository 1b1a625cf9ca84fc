"""Rule train_localizer: calls ethoflow.steps.localize.train_localizer."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "train_localizer")  # noqa: F821
