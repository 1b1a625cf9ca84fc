"""Rule clip_budget: calls ethoflow.steps.clips.clip_budget."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "clip_budget")  # noqa: F821
