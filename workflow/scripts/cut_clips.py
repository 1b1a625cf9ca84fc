"""Rule cut_clips: one job per shard, calling ethoflow.steps.clips.cut_clips per session."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_shard  # noqa: E402

run_shard(snakemake, "cut_clips")  # noqa: F821
