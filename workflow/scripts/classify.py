"""Rule classify: one job per shard, calling ethoflow.steps.classify.classify per session."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_shard  # noqa: E402

run_shard(snakemake, "classify")  # noqa: F821
