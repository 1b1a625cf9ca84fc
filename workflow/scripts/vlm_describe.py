"""Rule vlm_describe: one job per shard, calling ethoflow.steps.vlm.vlm_describe per session."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_shard  # noqa: E402

run_shard(snakemake, "vlm_describe")  # noqa: F821
