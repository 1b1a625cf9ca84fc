"""Rule pose_preprocess: one job per shard, steps.pose.pose_preprocess per session."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_shard  # noqa: E402

run_shard(snakemake, "pose_preprocess")  # noqa: F821
