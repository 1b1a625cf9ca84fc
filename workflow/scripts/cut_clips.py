"""Rule cut_clips: calls ethoflow.steps.clips.cut_clips."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "cut_clips")  # noqa: F821
