"""Rule build_demo_vlm: calls ethoflow.steps.vlm.build_demo_vlm."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: F821  (the ethoflow package)
from ethoflow.smk import run_step  # noqa: E402

run_step(snakemake, "build_demo_vlm")  # noqa: F821
