"""Rule pose_preprocess: calls ethoflow.steps.pose.pose_preprocess."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "pose_preprocess")  # noqa: F821
