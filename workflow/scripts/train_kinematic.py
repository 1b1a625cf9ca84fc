"""Rule train_kinematic: calls ethoflow.steps.classify.train_kinematic."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "train_kinematic")  # noqa: F821
